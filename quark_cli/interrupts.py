"""Ctrl-C and SIGTERM end a command with our message and exit 130 / 143, whatever library is running.

myQLM's simulator replaces the SIGINT handler while it computes (``qat.comm.override_signals``): a
Ctrl-C there printed "Interrupted by user" and ended the process with exit 2, skipping our own
cleanup. So SIGINT is blocked in every thread of a quark command and waited for by one thread of
ours (``sigwait``), which then interrupts the main thread with a signal myQLM leaves alone: the
main thread raises ``KeyboardInterrupt`` as soon as it runs Python again (at once when it sleeps),
never inside native code. A second Ctrl-C ends the process at once (exit 130): every write is atomic,
so the run directory is as consistent as after a kill. SIGTERM raises ``Terminated`` in the main
thread (exit 143), and SIGHUP too (exit 129); myQLM touches neither.

Processes started by quark inherit the blocked SIGINT; quark's own workers unblock it at start. Only
``quark_cli.cli.main`` installs this: the library used from Python is untouched.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

#: The signal the waiting thread sends the main thread for a Ctrl-C (one myQLM does not replace).
RELAY = signal.SIGRTMIN + 1 if hasattr(signal, "SIGRTMIN") else signal.SIGUSR1
_installed = False


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a closed terminal, a dropped ssh session): stop like Ctrl-C does, then exit
    128 + the signal's number (143, 129)."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = signum


def install() -> None:
    """Route SIGINT and SIGTERM as described above; call once, first thing, from the main thread."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    signal.signal(RELAY, _interrupt)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    threading.Thread(target=_wait_for_sigint, args=(threading.main_thread().ident,), daemon=True).start()
    _installed = True


def _wait_for_sigint(main: int) -> None:
    signal.sigwait({signal.SIGINT})
    signal.pthread_kill(main, RELAY)
    signal.sigwait({signal.SIGINT})
    os.write(2, b"interrupted again: stopping at once; the run directory is consistent\n")
    os._exit(130)


#: How many blocks on the main thread's stack turn an interrupt into the command's own line and exit
#: code (``caught``). Outside them (typer parsing the arguments, a command between its steps) typer
#: would turn it into exit 130 and no word, SIGTERM included; there an interrupt ends the process at once.
_catching = 0


@contextmanager
def caught() -> Iterator[None]:
    """Mark a block whose caller handles ``KeyboardInterrupt`` and ``Terminated`` (``cli_guard.shown``)."""
    global _catching
    _catching += 1
    try:
        yield
    finally:
        _catching -= 1


#: The signals turned into exceptions so far (SIGINT, SIGTERM, SIGHUP), in order; main thread only.
_raised: list[int] = []


def raised_count() -> int:
    """How many signals this process has turned into exceptions so far: a mark for ``reraise_signal``."""
    return len(_raised)


def reraise_signal(mark: int, error: BaseException) -> None:
    """Raise the exception of the first signal since ``mark`` (``raised_count``), from ``error``; return
    if none came.

    For code that catches what it calls raise: a library that caught our ``KeyboardInterrupt`` or
    ``Terminated`` and raised its own error instead (myQLM's plugins raise a ``PluginException``
    saying "Terminated: 15") must not turn a Ctrl-C into a failed stack and a command that goes on.
    Only in the main thread: the others never see a signal's exception, so theirs are their own.
    """
    if len(_raised) > mark and threading.current_thread() is threading.main_thread():  # where signals raise
        signum = _raised[mark]
        raise (KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)) from error


#: True while the main thread runs a ``deferred`` block; the first signal that came meanwhile.
_deferring = False
_deferred: int | None = None


@contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP while the block runs in the main thread, then act on the first
    that came: for a batch of file system calls that must not stop half way (a few milliseconds).
    A second Ctrl-C still ends the process at once. Other threads never see a signal: for them,
    and inside another such block, this does nothing."""
    global _deferring, _deferred
    if _deferring or threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
        signum, _deferred = _deferred, None
        if signum is not None:
            _deliver(signum)


def _interrupt(signum: int, frame: Any) -> None:
    _deliver(signal.SIGINT)


def _terminate(signum: int, frame: Any) -> None:
    _deliver(signum)


def _deliver(signum: int) -> None:
    """Stop the command for ``signum``: at once outside its work, else by raising ``KeyboardInterrupt``
    (SIGINT) or ``Terminated`` in the main thread; later, in a ``deferred`` block."""
    global _deferred
    if _deferring:
        _deferred = _deferred or signum
        return
    if not _catching:
        _stop_now(signum)
    _raised.append(signum)
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)


def _stop_now(signum: int) -> None:
    """End the process with the line and exit code (128 + the signal) the command would give: called
    outside its work, where nothing is half written (every write of run state is in a ``caught`` block)."""
    what = "interrupted" if signum == signal.SIGINT else f"terminated ({signal.Signals(signum).name})"
    with suppress(OSError):  # stderr closed (``2>&-``): the exit code still says it
        os.write(2, f"{what}; between the command's steps: nothing was left half done\n".encode())
    os._exit(128 + signum)
