"""What every command runs inside: module output kept off stdout, any exception one line and its
exit code, the log on stderr with ``-v`` and the progress display."""

from __future__ import annotations

import os
import signal
import sys
import traceback
from contextlib import contextmanager, redirect_stdout
from typing import TYPE_CHECKING, Any

import typer

from quark_cli.cli_output import (
    OutputClosed,
    OutputFailed,
    err,
    json_document,
    silence_stdout,
    write_out,
)
from quark_cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OS_ERROR,
    EXIT_OUTPUT_CLOSED,
    EXIT_PENDING,
    QuarkError,
    describe_os_error,
    describe_path_error,
)
from quark_cli.interrupts import Terminated, caught

if TYPE_CHECKING:
    from quark_cli.progress import Progress

#: Set by ``quark``'s own options before any command: ``debug`` prints tracebacks.
options = {"debug": False}


def show_log(ctx: typer.Context, level: int) -> None:
    """Copy the quark_cli log to stderr for this command (above a live progress display)."""
    import logging

    from rich.logging import RichHandler

    logger = logging.getLogger("quark_cli")
    handler = RichHandler(console=err.console, level=level, show_path=False, markup=False, log_time_format="[%X]")
    previous = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    ctx.call_on_close(restore)


def progress_display(quiet: bool, title: str) -> Progress:
    """The progress display of a long command: live on a terminal, lines otherwise, none if quiet."""
    from quark_cli.progress import OFF, Progress, mode_for

    if quiet:  # nothing to draw: rich is not even loaded
        return Progress(None, OFF, title)
    return Progress(err.console, mode_for(err.console, quiet), title)


def combine_exit_codes(codes: list[int]) -> int:
    """One exit code for many runs, the worst: a bug, an OS error, bad input, a failure, a lock, pending."""
    for code in (EXIT_INTERNAL, EXIT_OS_ERROR, EXIT_BAD_INPUT, 1, EXIT_LOCKED, EXIT_PENDING):
        if code in codes:
            return code
    return 0


def explain(error: BaseException) -> tuple[str, int]:
    """The one place that turns an exception into a one-line message and an exit code."""
    if options["debug"]:
        traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, QuarkError):
        return f"error: {error}", error.exit_code
    if isinstance(error, OutputFailed):
        reason = error.strerror or f"errno {error.errno}"
        reason = reason[:1].lower() + reason[1:]
        return f"error: {error.filename}: {reason}: the output is lost, not the work", EXIT_OS_ERROR
    described = describe_os_error(error)
    if described:
        return f"error: {described}", EXIT_OS_ERROR
    described = describe_path_error(error)
    if described:
        return f"error: {described}", EXIT_BAD_INPUT
    return f"internal error: {type(error).__name__}: {error} (run with --debug for the traceback)", EXIT_INTERNAL


def fail(error: BaseException) -> None:
    message, code = explain(error)
    err.print(message, markup=False)  # as far as stderr can be written: the exit code still tells
    raise typer.Exit(code)


def stopped(error: KeyboardInterrupt) -> None:
    """Ctrl-C (exit 130) or SIGTERM (exit 143): one line; every write before it is complete."""
    if isinstance(error, Terminated):
        what, code = f"terminated ({signal.Signals(error.signum).name})", 128 + error.signum
    else:
        what, code = "interrupted", EXIT_INTERRUPTED
    err.print(f"{what}; the run directory is consistent, 'quark collect' continues it", markup=False)
    raise typer.Exit(code) from None


@contextmanager
def module_output_to_stderr():
    """While modules and job managers run, what they print goes to stderr (Python's ``print`` and
    native code's alike): stdout carries quark's own results and ``--json`` documents only."""
    if sys.stdout is not None:  # None: started with stdout closed (``>&-``)
        sys.stdout.flush()
    try:
        real = sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError):  # not a file (a test runner's buffer)
        real = False
    saved = os.dup(1) if real else None
    if saved is not None:
        os.dup2(2, 1)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def guarded(function, *args: Any, **kwargs: Any) -> Any:
    """Run a command's work: what modules print goes to stderr; any exception is one line and its code."""
    with module_output_to_stderr():
        return shown(function, *args, **kwargs)


def shown(function, *args: Any, **kwargs: Any) -> Any:
    """``function(...)`` with any exception turned into one line and its exit code (no traceback)."""
    try:
        with caught():
            return function(*args, **kwargs)
    except typer.Exit:
        raise
    except KeyboardInterrupt as error:
        stopped(error)
    except (OutputClosed, BrokenPipeError):
        silence_stdout()
        raise typer.Exit(EXIT_OUTPUT_CLOSED) from None
    except BaseException as error:  # SystemExit from a module's import, say: still one line
        fail(error)


#: Options of ``quark`` itself, also accepted after the command (``quark status RUN -v``).
GLOBAL_FLAGS = {"-v", "--verbose", "--debug"}


def hoist_global_flags(arguments: list[str]) -> list[str]:
    """``arguments`` with the global flags that follow the command moved before it.

    ``["status", "RUN", "-v"]`` becomes ``["-v", "status", "RUN"]``; nothing after ``--`` moves.
    """
    command = next((i for i, argument in enumerate(arguments) if not argument.startswith("-")), None)
    if command is None:
        return list(arguments)
    end = arguments.index("--") if "--" in arguments else len(arguments)
    moved = [argument for argument in arguments[command:end] if argument in GLOBAL_FLAGS]
    rest = [argument for argument in arguments[command:end] if argument not in GLOBAL_FLAGS]
    return arguments[:command] + moved + rest + arguments[end:]


def print_json(document: Any) -> None:
    """Print a ``--json`` document on stdout; a reader that went away is exit 141, not a traceback."""
    shown(write_out, json_document(document) + "\n")
