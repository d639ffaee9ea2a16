"""The ``quark`` command: parses arguments, calls ``quark_cli.runs``, prints through ``quark_cli.cli_output``.

Exit codes: 0 all finished, 1 some stack failed, 2 bad input, 3 still pending, 75 run locked by
another process, 70 internal error (a bug: please report it with the ``--debug`` traceback).
"""

from __future__ import annotations

import gc
import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

import typer

from quark_cli import __version__, cli_guard, interrupts
from quark_cli.cli_collect import collect_each
from quark_cli.cli_guard import (
    explain,
    fail,
    guarded,
    hoist_global_flags,
    print_json,
    progress_display,
    show_log,
    shown,
)
from quark_cli.cli_output import (
    OutputClosed,
    OutputFailed,
    err,
    out,
    print_report,
    print_status,
    print_warnings,
    print_wide,
    run_line,
    silence_stdout,
)
from quark_cli.defaults import POLL_WORKERS, SUBMIT_WORKERS
from quark_cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_OUTPUT_CLOSED,
    EXIT_PENDING,
    QuarkError,
)
from quark_cli.help_screens import HelpCommand, HelpGroup

app = typer.Typer(
    name="quark",
    cls=HelpGroup,
    add_completion=True,
    rich_markup_mode="markdown",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        out.print(f"quark-cli {__version__}", markup=False)
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    verbose: bool = typer.Option(
        False, "-v", "--verbose", help="Also print the log (what goes to the run's logging.log) on stderr."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors, and debug lines of the log."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Run QUARK-style quantum benchmarks; submit now, collect the queued jobs later.

    Exit codes: 0 all finished, 1 some failed, 2 bad input, 3 still pending, 70 internal error, 75 locked.

    Colours are off with NO_COLOR=1 or when the output is not a terminal.

    Example: quark --verbose collect ~/quark-runs/ghz-async-20261125-101500 --wait
    """
    import logging  # here, not at the top: help and completion never load it

    cli_guard.options["debug"] = debug
    # Our log goes to the run's logging.log (and stderr with -v), never through handlers that module
    # code put on the root logger (a bare logging.info() call installs one that prints to stderr).
    # This callback runs before every command, and no module code runs before it.
    logging.getLogger("quark_cli").propagate = False
    if verbose or debug:
        show_log(ctx, logging.DEBUG if debug else logging.INFO)


_MODULES_HELP = "A QUARK 2 module file (JSON list of entries, or .settings/module_db.json) that config names use."


@app.command(cls=HelpCommand)
def run(
    config: Path = typer.Argument(..., readable=False, help="A QUARK 2 style config.yml."),
    output: Path = typer.Option(
        None, "-o", "--output", readable=False, help="Run directory to create (default ~/quark-runs/...)."
    ),
    modules_file: Path = typer.Option(None, "-m", "--modules", readable=False, help=_MODULES_HELP),
    timeout: float = typer.Option(
        3600.0, "--timeout", min=0, help="Seconds to wait for each asynchronous job (0: do not wait)."
    ),
    failfast: bool = typer.Option(False, "--failfast", help="Stop at the first stack that fails (exit 1)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress display."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Run every benchmark stack to the end, waiting for asynchronous jobs; show progress, then the results.

    Example: quark run configs/maxcut.yml -o runs/maxcut
    """
    from quark_cli import runs

    with progress_display(quiet, f"run {config.name}") as progress:
        outcome = guarded(
            runs.start,
            config,
            output,
            sequential=True,
            wait_timeout=timeout,
            progress=progress,
            modules_file=modules_file,
            failfast=failfast,
        )
    print_warnings(outcome.warnings)
    shown(_print_for_run, outcome, print_results, outcome, as_json)
    stopped = outcome.summary.stopped_at
    if stopped:
        left = int(outcome.run.read_run().get("stacks", 0)) - len(outcome.summary.stacks)
        rest = f"; {left} stacks not started ('quark collect {outcome.run.path}' runs them)" if left > 0 else ""
        err.print(f"stopped at the first failed stack, {stopped} (--failfast){rest}", markup=False)
    raise typer.Exit(outcome.exit_code)


@app.command(cls=HelpCommand)
def submit(
    config: Path = typer.Argument(..., readable=False, help="A QUARK 2 style config.yml."),
    output: Path = typer.Option(
        None, "-o", "--output", readable=False, help="Run directory to create (default ~/quark-runs/...)."
    ),
    modules_file: Path = typer.Option(None, "-m", "--modules", readable=False, help=_MODULES_HELP),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress display (there is none when piped)."),
    submit_workers: int = typer.Option(
        SUBMIT_WORKERS, "--submit-workers", min=1, help="Stacks walked at once, each waiting for its submission."
    ),
) -> None:
    """Run every stack up to its asynchronous jobs, submit them and return; print the run directory.

    On a terminal a progress display shows the stacks as they are walked and their jobs submitted.

    Example: quark submit configs/ghz-async.yml -o runs/ghz && quark collect runs/ghz
    """
    from quark_cli import runs

    with progress_display(quiet or not err.is_terminal, f"submit {config.name}") as progress:
        outcome = guarded(
            runs.start,
            config,
            output,
            sequential=False,
            modules_file=modules_file,
            progress=progress,
            submit_workers=submit_workers,
        )
    print_warnings(outcome.warnings)
    summary = outcome.summary
    _print_for_run(outcome, out.print, str(outcome.run.path))
    err.print(
        f"{len(summary.stacks)} stacks: {summary.count('FINISHED')} finished, "
        f"{summary.count('INTERRUPTED')} waiting for jobs, {summary.count('FAILED')} failed"
    )
    for key, message in summary.errors.items():
        err.print(f"  {key}: {message}", markup=False)
    raise typer.Exit(outcome.exit_code)


@app.command(cls=HelpCommand)
def collect(
    run_dirs: list[Path] = typer.Argument(None, readable=False, help="Run directories to collect."),
    all_root: Path = typer.Option(
        None, "--all", readable=False, help="Collect every run directory under this folder (for cron)."
    ),
    wait: bool = typer.Option(False, "--wait", help="Keep collecting until no job is pending."),
    timeout: float = typer.Option(
        None, "--timeout", min=0, help="With --wait: give up after this many seconds (0: poll once)."
    ),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Submit failed jobs again."),
    resubmit_uncertain: bool = typer.Option(
        False, "--resubmit-uncertain", help="Submit again jobs whose submission was interrupted."
    ),
    wait_lock: float = typer.Option(0.0, "--wait-lock", help="Seconds to wait for another quark on the same run."),
    poll_workers: int = typer.Option(
        POLL_WORKERS, "--poll-workers", min=1, help="Jobs polled at once (one service call each)."
    ),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Print only what changed or failed (for cron)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Poll pending jobs and continue every stack whose jobs are done; with --wait, until none is pending.

    With --wait a progress display shows finished / pending / failed stacks (lines when piped, none with
    --quiet).

    Example (cron, every ten minutes): quark collect --all ~/quark-runs --quiet
    """
    from quark_cli import run_views

    paths = list(run_dirs or [])
    if all_root is not None:
        paths.extend(guarded(run_views.find_runs, all_root))
    elif not paths:
        err.print("error: give one or more run directories, or --all ROOT")
        raise typer.Exit(EXIT_BAD_INPUT)
    code = collect_each(
        paths,
        sweep=all_root is not None or len(paths) > 1,
        quiet=quiet,
        as_json=as_json,
        wait=wait,
        timeout=timeout,
        retry_failed=retry_failed,
        resubmit_uncertain=resubmit_uncertain,
        wait_lock=wait_lock,
        poll_workers=poll_workers,
    )
    raise typer.Exit(code)


@app.command(cls=HelpCommand)
def status(
    run_dir: Path = typer.Argument(..., readable=False, help="A run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON (schema in the README)."),
    show_all: bool = typer.Option(False, "--all", help="List done jobs too (by default only the others)."),
) -> None:
    """Show what is pending, done and failed in a run, from disk (no service is asked).

    Example: quark status ~/quark-runs/ghz-async-20261125-101500 --json
    """
    from quark_cli import run_views

    report = guarded(run_views.status, run_dir)
    if as_json:
        print_json(report)
    else:
        shown(print_status, report, show_all)
    totals = report["stack_totals"]
    if totals["FAILED"]:
        raise typer.Exit(1)
    if totals["INTERRUPTED"] or totals["NOT_STARTED"]:
        raise typer.Exit(EXIT_PENDING)


@app.command(cls=HelpCommand)
def report(
    run_dirs: list[Path] = typer.Argument(
        ..., readable=False, help="A run directory; several side by side (table, markdown, html)."
    ),
    output_format: str = typer.Option(
        "table",
        "-f",
        "--format",
        help="table (terminal), markdown (or md), csv, json, or html (one self-contained file).",
        case_sensitive=False,
    ),
    aggregated: bool = typer.Option(
        False, "--aggregated", help="Only the mean ± std per backlog item (CSV: one row per item)."
    ),
    plots: bool = typer.Option(False, "--plots", help="Also write PNG figures to RUN_DIR/plots/."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write the report to this file, not stdout (html: default RUN_DIR/report.html)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json (schema in the README)."),
) -> None:
    """Report a run's results: one row per backlog item and repetition, then mean ± std per item.

    Parameters, metrics (approximation ratio, GHZ population, ...), compute time, and each job's id,
    queue wait and run time. Reads the run directory only. --plots draws approximation ratio vs QAOA
    depth, GHZ population vs qubits, the jobs' queue and run times, and where the time goes; markdown
    then links them. html is one file with the tables, the run's metadata and the figures embedded,
    to mail or attach to a paper (several runs side by side).

    Example: quark report runs/maxcut --format markdown --plots > report.md
    """
    from quark_cli.report import FORMATS, build_report, format_named

    chosen = "json" if as_json else format_named(output_format)
    if chosen is None:
        err.print(f"error: --format: {output_format!r} is not a format; choose from {', '.join(FORMATS)}")
        raise typer.Exit(EXIT_BAD_INPUT)
    if len(run_dirs) > 1 and chosen in ("csv", "json"):
        err.print(f"error: --format {chosen} reports one run; give one RUN_DIR (table, markdown and html take several)")
        raise typer.Exit(EXIT_BAD_INPUT)
    reports = []
    for run_dir in run_dirs:
        data = guarded(build_report, run_dir)
        if plots or chosen == "html":  # the html file embeds the figures
            from quark_cli.plots import write_plots

            not_drawn: list[tuple[str, str]] = []
            written = guarded(write_plots, data, run_dir, not_drawn)
            data["plots"] = [{"path": str(path), "shows": shows} for path, shows in written]
            for name, why in not_drawn:
                err.print(
                    f"warning: {run_dir}: {name} not drawn: its values are beyond what a figure can show ({why})",
                    markup=False,
                )
        reports.append(data)
    target = output if output is not None or chosen != "html" else run_dirs[0] / "report.html"
    shown(print_report, reports, chosen, aggregated, target)
    if plots and chosen != "json":
        for data in reports:
            for entry in data["plots"]:
                err.print(f"wrote {entry['path']}: {entry['shows']}", markup=False)
            if not data["plots"]:
                reason = "the run has no finished stack or job with data to draw yet"
                err.print(f"no plots of {data['run_dir']}: {reason}", markup=False)
    if target is not None:
        err.print(f"wrote {target}", markup=False)


@app.command(cls=HelpCommand)
def cancel(
    run_dir: Path = typer.Argument(..., readable=False, help="A run directory."),
    keys: list[str] = typer.Argument(None, help="Job keys or stack keys (quark status lists them); default: all."),
    wait_lock: float = typer.Option(0.0, "--wait-lock", help="Seconds to wait for another quark on the same run."),
    forget: bool = typer.Option(
        False, "--forget", help="Abandon the named jobs here without asking their service (it may still run them)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was cancelled as JSON."),
) -> None:
    """Cancel pending jobs on their service and record them CANCELLED; their stacks become FAILED.

    'quark collect --retry-failed' submits them again later. Exit 0 when every job asked for was
    cancelled (or had already ended), 1 when a service could not cancel one, 2 when a backend
    cannot cancel at all: then 'quark cancel --forget KEY' abandons the job here.

    Example: quark cancel runs/ghz-async 002-r1
    """
    from quark_cli import runs

    outcome = guarded(runs.cancel, run_dir, keys or None, wait_lock, forget)
    result = outcome.result
    if as_json:
        summary = result.summary
        document = {
            "schema_version": 1,
            "run_dir": str(outcome.run.path),
            "cancelled": result.cancelled,
            "ended": result.ended,
            "skipped": result.skipped,
            "errors": {key: f"{type(error).__name__}: {error}" for key, error in result.errors.items()},
            "failed_stacks": sorted(key for key in set(summary.changed) if summary.stacks.get(key) == "FAILED"),
            "exit_code": outcome.exit_code,
        }
        print_json(document)
        raise typer.Exit(outcome.exit_code)
    for key in result.cancelled:
        out.print(f"{'abandoned' if forget else 'cancelled'} {key}", markup=False)
    for key, status_name in result.ended.items():
        out.print(f"left {key}: it had already ended ({status_name}); 'quark collect' takes it from here", markup=False)
    for key, why in result.skipped.items():
        if keys:
            out.print(f"left {key}: {why}", markup=False)
    for key, error in result.errors.items():
        err.print(f"error: {key}: not cancelled: {error}", markup=False)
    if not (result.cancelled or result.ended or result.errors or (keys and result.skipped)):
        out.print(f"{outcome.run.path}: no pending job to cancel", markup=False)
    raise typer.Exit(outcome.exit_code)


@app.command("runs", cls=HelpCommand)
def runs_command(
    root: Path = typer.Argument(
        None, readable=False, help="Folder holding run directories (default $QUARK_RUNS_DIR or ~/quark-runs)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON (schema in the README)."),
) -> None:
    """List the run directories under ROOT, oldest first: created, config, finished / pending / failed.

    Example: quark runs ~/quark-runs
    """
    from quark_cli import run_views, runs

    folder = root if root is not None else runs.default_runs_root()
    if root is None and not folder.exists():  # a fresh install: nothing submitted yet
        listed = []
    else:
        listed = guarded(run_views.list_runs, folder)
    if as_json:
        print_json({"schema_version": 1, "root": str(folder), "runs": listed})
        return
    if not listed:
        missing = "" if folder.exists() else " (the folder does not exist yet: 'quark submit' creates it)"
        out.print(f"{folder}: no run directories{missing}", markup=False)
    for entry in listed:
        out.print(run_line(entry), markup=False)


@app.command(cls=HelpCommand)
def validate(
    config: Path = typer.Argument(..., readable=False, help="A QUARK 2 style config.yml."),
    modules_file: Path = typer.Option(None, "-m", "--modules", readable=False, help=_MODULES_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the backlog summary (or the error) as JSON."),
) -> None:
    """Check a config without running anything: modules, parameters, values; describe its backlog.

    Exit 0 when it is valid, 2 (with the file, field and fix) when it is not.

    Example: quark validate configs/maxcut.yml
    """
    from quark_cli import runs

    try:
        summary = runs.validate(config, modules_file)
    except QuarkError as error:
        if not as_json:
            fail(error)
        print_json({"schema_version": 1, "config": str(config), "valid": False, "error": str(error)})
        raise typer.Exit(error.exit_code) from None
    except Exception as error:
        fail(error)
    if as_json:
        print_json(summary)
        return
    out.print(f"{config}: valid", markup=False)
    for branch in summary["branches"]:
        varying = {name: values for name, values in branch["parameters"].items() if len(values) > 1}
        detail = "; ".join(f"{name}: {', '.join(map(str, values))}" for name, values in varying.items())
        out.print(
            f"  {' → '.join(branch['modules'])}: {branch['backlog_items']} backlog item(s)"
            + (f" ({detail})" if detail else ""),
            markup=False,
        )
    out.print(
        f"  {summary['repetitions']} repetition(s): {summary['stacks']} stacks; "
        f"config hash {summary['config_hash'][:12]}",
        markup=False,
    )
    for branch in summary["branches"]:
        for path, folder in branch["job_folders"].items():
            out.print(f"  note: jobs of {path} are kept in folders named {folder} (the full name is too long)")
    print_warnings(summary["warnings"])


@app.command(cls=HelpCommand)
def modules(
    names: list[str] = typer.Argument(
        None, help="Modules to show: built-in names, 'package.module:Class' paths or module-file entries."
    ),
    modules_file: Path = typer.Option(None, "-m", "--modules", readable=False, help=_MODULES_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List modules, the submodules they accept and their parameters: the built-in ones, or those named.

    Examples: quark modules --json; quark modules mypkg.coins:Coins; quark modules -m module_db.json
    """
    from rich.text import Text

    from quark_cli.catalog import describe
    from quark_cli.parameters import range_text

    described = guarded(describe, list(names or []), modules_file)
    if as_json:
        print_json(described)
        return
    for entry in described:
        out.print(Text(entry["name"], style="bold"), f" ({entry['class']})")
        if entry["submodules"]:
            out.print(f"  submodules: {', '.join(entry['submodules'])}", markup=False)
        for name, option in entry["parameters"].items():
            values = option.get("values")
            custom = " or any" if option.get("custom_input") else ""
            bounds = f"; {range_text(option)}" if range_text(option) else ""
            text = f"  {name}: default {option.get('default')!r}; values {values}{custom}{bounds}."
            out.print(f"{text} {option.get('description', '')}", markup=False)


def _print_for_run(outcome, function, *args: Any) -> None:
    """``function(*args)``, printing what ``run`` or ``submit`` made: a failed write to stdout ends
    the command with its line saying where the run is (its output is all that was lost)."""
    try:
        function(*args)
    except OutputFailed as error:
        message, code = explain(error)
        err.print(f"{message}; the run is {outcome.run.path}", markup=False)
        raise typer.Exit(code) from None


def print_results(outcome, as_json: bool) -> None:
    if as_json:
        records = outcome.run.rebuild_results()
        print_json(records)
        return
    from quark_cli.report import build_report, text_blocks

    out.print(f"results in {outcome.run.path} ('quark report' prints them again, --plots draws them)", markup=False)
    print_wide(text_blocks(build_report(outcome.run.path)))


#: Allocations between two collections of the youngest generation (Python's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def _fill_closed_standard_streams() -> None:
    """Put /dev/null on stdin, stdout or stderr if the command was started with it closed (``>&-``).

    Else the first file the command opens gets that descriptor, and what a module's native code
    writes to its stdout (or ``module_output_to_stderr`` copies there) lands in a run's file.
    ``sys.stdout`` and ``sys.stderr`` stay None: what quark prints there goes nowhere.
    """
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one


def main() -> None:
    """Console-script entry point."""
    # A command holds up to millions of parsed JSON values at once (100,000 stacks) and frees few
    # cycles: collected every 700 allocations, the young generation took a fifth of a large collect.
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)
    _fill_closed_standard_streams()
    interrupts.install()
    for stream in (sys.stdout, sys.stderr):  # a service's lone surrogate is printed escaped, not exit 70
        with suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    try:
        app(args=hoist_global_flags(sys.argv[1:]))
    except OutputClosed:  # printed outside a command's guard (``quark modules | head -1``)
        silence_stdout()
        sys.exit(EXIT_OUTPUT_CLOSED)
    except OutputFailed as error:  # stdout on a full disk (``> out.txt``): one line, exit 74
        message, code = explain(error)
        err.print(message, markup=False)
        sys.exit(code)


if __name__ == "__main__":
    main()
