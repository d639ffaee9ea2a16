"""``quark collect`` over several runs (``--all`` from cron): each run collected in turn, one run's
fault reported and the others collected all the same; the exit code is the worst of theirs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from quark_cli import interrupts
from quark_cli.cli_guard import (
    combine_exit_codes,
    explain,
    module_output_to_stderr,
    print_json,
    progress_display,
    shown,
    stopped,
)
from quark_cli.cli_output import OutputClosed, OutputFailed, collect_report, err, print_collect, silence_stdout
from quark_cli.errors import EXIT_LOCKED, EXIT_OUTPUT_CLOSED, EXIT_PENDING, QuarkError


def collect_each(paths: list[Path], sweep: bool, quiet: bool, as_json: bool, wait: bool, **options: Any) -> int:
    """Collect each run of ``paths`` (``options`` as ``runs.collect`` takes them); the exit code of all.

    With ``sweep`` (several runs, or ``--all``) a run locked by another quark is skipped with a line,
    counted as pending: the next cron pass collects it. Prints each run's summary, or with
    ``as_json`` one list of them; a stdout lost on the way stops the printing, not the collecting.
    """
    from quark_cli import runs

    codes = []
    reports = []
    output_lost: int | None = None
    for path in paths:
        try:
            with interrupts.caught(), progress_display(quiet or not wait, f"collect {Path(path).name}") as progress:
                with module_output_to_stderr():
                    outcome = runs.collect(path, wait=wait, progress=progress if wait else None, **options)
        except KeyboardInterrupt as error:
            stopped(error)
        except BaseException as error:  # one run's fault never stops the others (collect --all from cron)
            message, code = explain(error)
            skipped = code == EXIT_LOCKED and sweep
            if skipped:
                code = EXIT_PENDING
                if not quiet:
                    err.print(f"skipped: {message.removeprefix('error: ')}", markup=False)
            else:
                prefix, _, described = message.partition(": ")
                named = isinstance(error, QuarkError | OutputFailed)  # its run, or no file of it
                if not named and not described.startswith((f"{path}{os.sep}", f"{path}:")):
                    message = f"{prefix}: {path}: {described}"  # which run, of several
                err.print(message, markup=False)
            codes.append(code)
            reports.append(
                {"schema_version": 1, "run_dir": str(path), "skipped": skipped, "error": message, "exit_code": code}
            )
            continue
        codes.append(outcome.exit_code)
        reports.append(collect_report(outcome))
        if not as_json and output_lost is None:
            output_lost = _printed(outcome, quiet)
    if as_json:
        print_json(reports)
    if output_lost == EXIT_OUTPUT_CLOSED:
        return output_lost
    return combine_exit_codes(codes if output_lost is None else [*codes, output_lost])


def _printed(outcome: Any, quiet: bool) -> int | None:
    """Print one run's collect (``print_collect``, any other fault one line as ``shown`` makes it);
    None, or the exit code of stdout lost on the way (141 its reader went away, 74 a failed write,
    said on stderr): the next runs are collected all the same, and not printed."""
    lost: list[int] = []

    def attempt() -> None:
        try:
            print_collect(outcome, quiet)
        except (OutputClosed, BrokenPipeError):
            silence_stdout()
            lost.append(EXIT_OUTPUT_CLOSED)
        except OutputFailed as error:
            message, code = explain(error)
            err.print(message, markup=False)
            lost.append(code)

    shown(attempt)
    return lost[0] if lost else None
