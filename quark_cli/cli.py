"""The ``quark`` command: parses arguments, calls ``quark_cli.runs``, prints with rich.

Exit codes: 0 all finished, 1 some stack failed, 2 bad input, 3 still pending, 75 run locked by
another process, 70 internal error (a bug: please report it with the ``--debug`` traceback).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from quark_cli import __version__
from quark_cli.errors import EXIT_BAD_INPUT, EXIT_LOCKED, EXIT_PENDING, QuarkError

EXIT_INTERNAL = 70

app = typer.Typer(
    name="quark",
    help="Run QUARK-style quantum benchmarks; submit now, collect the queued jobs later.",
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_options = {"debug": False}
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        print(f"quark-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Run QUARK-style quantum benchmarks; submit now, collect the queued jobs later.

    Exit codes: 0 all finished, 1 some failed, 2 bad input, 3 still pending, 75 run locked.
    """
    _options["debug"] = debug


def _fail(error: BaseException) -> None:
    """The one place that turns an exception into a message and an exit code."""
    if _options["debug"]:
        traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, QuarkError):
        err.print(f"error: {error}", markup=False)
        raise typer.Exit(error.exit_code)
    err.print(f"internal error: {type(error).__name__}: {error} (run with --debug for the traceback)", markup=False)
    raise typer.Exit(EXIT_INTERNAL)


def _guarded(function, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        err.print("interrupted; the run directory is consistent, 'quark collect' continues it")
        raise typer.Exit(130) from None
    except Exception as error:
        _fail(error)


@app.command()
def run(
    config: Path = typer.Argument(..., help="A QUARK 2 style config.yml."),
    output: Path = typer.Option(None, "-o", "--output", help="Run directory to create (default ~/quark-runs/...)."),
    timeout: float = typer.Option(3600.0, "--timeout", help="Seconds to wait for each asynchronous job."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Run every benchmark stack to the end, waiting for asynchronous jobs.

    Example: quark run configs/maxcut.yml -o runs/maxcut
    """
    from quark_cli import runs

    outcome = _guarded(runs.start, config, output, sequential=True, wait_timeout=timeout)
    _print_results(outcome, as_json)
    raise typer.Exit(outcome.exit_code)


@app.command()
def submit(
    config: Path = typer.Argument(..., help="A QUARK 2 style config.yml."),
    output: Path = typer.Option(None, "-o", "--output", help="Run directory to create (default ~/quark-runs/...)."),
) -> None:
    """Run every stack up to its asynchronous jobs, submit them and return; print the run directory.

    Example: quark submit configs/ghz-async.yml -o runs/ghz && quark collect runs/ghz
    """
    from quark_cli import runs

    outcome = _guarded(runs.start, config, output, sequential=False)
    summary = outcome.summary
    out.print(str(outcome.run.path))
    err.print(
        f"{len(summary.stacks)} stacks: {summary.count('FINISHED')} finished, "
        f"{summary.count('INTERRUPTED')} waiting for jobs, {summary.count('FAILED')} failed"
    )
    for key, message in summary.errors.items():
        err.print(f"  {key}: {message}", markup=False)
    raise typer.Exit(outcome.exit_code)


@app.command()
def collect(
    run_dirs: list[Path] = typer.Argument(None, help="Run directories to collect."),
    all_root: Path = typer.Option(None, "--all", help="Collect every run directory under this folder (for cron)."),
    wait: bool = typer.Option(False, "--wait", help="Keep collecting until no job is pending."),
    timeout: float = typer.Option(None, "--timeout", help="With --wait: give up after this many seconds."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Submit failed jobs again."),
    resubmit_uncertain: bool = typer.Option(
        False, "--resubmit-uncertain", help="Submit again jobs whose submission was interrupted."
    ),
    wait_lock: float = typer.Option(0.0, "--wait-lock", help="Seconds to wait for another quark on the same run."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Print only what changed or failed (for cron)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Poll pending jobs and continue every stack whose jobs are done.

    Example (cron, every ten minutes): quark collect --all ~/quark-runs --quiet
    """
    from quark_cli import runs

    paths = list(run_dirs or [])
    if all_root is not None:
        paths.extend(_guarded(runs.find_runs, all_root))
    elif not paths:
        err.print("error: give one or more run directories, or --all ROOT")
        raise typer.Exit(EXIT_BAD_INPUT)
    codes = []
    reports = []
    for path in paths:
        try:
            outcome = runs.collect(
                path,
                wait=wait,
                timeout=timeout,
                retry_failed=retry_failed,
                resubmit_uncertain=resubmit_uncertain,
                wait_lock=wait_lock,
            )
        except QuarkError as error:
            if _options["debug"]:
                traceback.print_exception(error, file=sys.stderr)
            if error.exit_code == EXIT_LOCKED and len(paths) > 1:
                codes.append(EXIT_PENDING)
                if not quiet:
                    err.print(f"skipped: {error}", markup=False)
                continue
            err.print(f"error: {error}", markup=False)
            codes.append(error.exit_code)
            continue
        except Exception as error:
            _fail(error)
        codes.append(outcome.exit_code)
        reports.append(_collect_report(outcome))
        if not as_json:
            _print_collect(outcome, quiet)
    if as_json:
        print(json.dumps(reports, indent=2))
    raise typer.Exit(_combine(codes))


def _combine(codes: list[int]) -> int:
    """One exit code for many runs: bad input, then failure, then lock, then pending, then success."""
    for code in (EXIT_BAD_INPUT, 1, EXIT_LOCKED, EXIT_PENDING, EXIT_INTERNAL):
        if code in codes:
            return code
    return 0


def _collect_report(outcome) -> dict[str, Any]:
    summary = outcome.summary
    return {
        "run_dir": str(outcome.run.path),
        "finished": summary.count("FINISHED"),
        "interrupted": summary.count("INTERRUPTED"),
        "failed": summary.count("FAILED"),
        "changed": sorted(set(summary.changed)),
        "uncertain": summary.uncertain,
        "errors": summary.errors,
        "exit_code": outcome.exit_code,
    }


def _print_collect(outcome, quiet: bool) -> None:
    summary = outcome.summary
    if quiet and not summary.changed and not summary.errors and not summary.uncertain:
        return
    out.print(
        f"{outcome.run.path}: {summary.count('FINISHED')} finished, {summary.count('INTERRUPTED')} pending, "
        f"{summary.count('FAILED')} failed ({len(set(summary.changed))} changed)",
        markup=False,
    )
    for key, message in summary.errors.items():
        out.print(f"  {key}: {message}", markup=False)
    for key in summary.uncertain:
        out.print(
            f"  {key}: submission uncertain (interrupted while submitting); check the service, then "
            "'quark collect --resubmit-uncertain' to submit it again",
            markup=False,
        )


@app.command()
def status(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON (schema in the README)."),
) -> None:
    """Show what is pending, done and failed in a run, from disk (no service is asked).

    Example: quark status ~/quark-runs/ghz-async-20261125-101500 --json
    """
    from quark_cli import runs

    report = _guarded(runs.status, run_dir)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_status(report)
    totals = report["stack_totals"]
    if totals["FAILED"]:
        raise typer.Exit(1)
    if totals["INTERRUPTED"] or totals["NOT_STARTED"]:
        raise typer.Exit(EXIT_PENDING)


def _print_status(report: dict[str, Any]) -> None:
    table = Table(title=f"jobs of {report['run_dir']}")
    for column in ("job", "module", "status", "id", "age", "error"):
        table.add_column(column, overflow="fold")
    for job in report["jobs"]:
        age = job["age_seconds"]
        table.add_row(job["key"], job["module"], job["status"], str(job["id"] or ""), _age(age), job["error"] or "")
    if report["jobs"]:
        out.print(table)
    totals = report["stack_totals"]
    out.print(
        f"stacks: {totals['total']} total, {totals['FINISHED']} finished, {totals['INTERRUPTED']} pending, "
        f"{totals['FAILED']} failed, {totals['NOT_STARTED']} not started"
    )
    if report["job_totals"]:
        out.print("jobs: " + ", ".join(f"{count} {name.lower()}" for name, count in report["job_totals"].items()))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@app.command()
def modules(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the built-in modules, the submodules they accept and their parameters.

    Example: quark modules --json
    """
    from quark_cli.modules import describe_modules

    described = _guarded(describe_modules)
    if as_json:
        print(json.dumps(described, indent=2))
        return
    for entry in described:
        out.print(f"[bold]{entry['name']}[/bold]  ({entry['class']})")
        if entry["submodules"]:
            out.print(f"  submodules: {', '.join(entry['submodules'])}", markup=False)
        for name, option in entry["parameters"].items():
            values = option.get("values")
            custom = " or any" if option.get("custom_input") else ""
            text = f"  {name}: default {option.get('default')!r}; values {values}{custom}."
            out.print(f"{text} {option.get('description', '')}", markup=False)


def _print_results(outcome, as_json: bool) -> None:
    records = outcome.run.rebuild_results()
    if as_json:
        print(json.dumps(records, indent=2, default=str))
        return
    table = Table(title=f"results in {outcome.run.path}")
    for column in ("item", "rep", "stack", "parameters", "metrics", "time", "status"):
        table.add_column(column, overflow="fold")
    for record in records:
        names, params, metrics = _flatten(record.get("module") or {})
        status_text = record["quark_job_status"] + (f": {record['error']}" if record.get("error") else "")
        table.add_row(
            str(record["benchmark_backlog_item_number"]),
            str(record["repetition"]),
            " → ".join(names),
            params,
            metrics,
            f"{record['total_time'] / 1000:.2f}s",
            status_text,
        )
    out.print(table)


STANDARD_KEYS = {
    "module_name",
    "module_config",
    "submodule",
    "quark_job_status",
    "preprocessing_time",
    "postprocessing_time",
    "total_time",
    "preprocessing_time_unit",
    "postprocessing_time_unit",
    "total_time_unit",
    "job_info",
}


def _flatten(module: dict[str, Any]) -> tuple[list[str], str, str]:
    """Module names, parameters and the application's scalar metrics of a record, for one table row.

    Only the application's (root) metrics are shown: they are the benchmark's results; the full
    record of every module is in results.json.
    """
    names, params = [], []
    node = module
    while node:
        names.append(node.get("module_name", "?"))
        params.extend(f"{k}={v}" for k, v in (node.get("module_config") or {}).items())
        node = node.get("submodule")
    metrics = [
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in module.items()
        if key not in STANDARD_KEYS and isinstance(value, (int, float, str)) and len(str(value)) <= 24
    ]
    return names, " ".join(params), " ".join(metrics)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
