"""What the commands print: the consoles, the tables of status, collect and report, and ``--json``
documents; a reader of stdout that went away (``quark status | head``) is ``OutputClosed``."""

from __future__ import annotations

import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from quark_cli.runs import Outcome


class OutputClosed(Exception):
    """Whoever read stdout went away (``quark status | head``)."""


class OutputFailed(OSError):
    """A write to stdout failed, other than by its reader going away (a full disk behind
    ``> out.txt``); its file is ``standard output``, so that no message blames a file of the run."""


def output_failed(error: OSError) -> OutputFailed:
    """``error``, raised writing to stdout, as an OutputFailed (exit 74). stdout writes nothing more
    (what its buffer kept would fail again in Python's flush at exit, exit 120)."""
    _silence(sys.stdout)
    return OutputFailed(error.errno, error.strerror, "standard output")


def silence_stdout() -> None:
    """After its reader went away, nothing more goes to stdout (not even Python's flush at exit)."""
    _silence(sys.stdout)


def _silence(stream: Any) -> None:
    with suppress(AttributeError, OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def output_closed() -> None:
    """Rich's answer to a closed stdout (its own raises SystemExit(1), which would read as our bug)."""
    silence_stdout()
    raise OutputClosed


class _StderrBestEffort:
    """``sys.stderr`` as quark's messages, progress display and log lines are written to it: none
    of them is worth a command stopped half-way, so a write that fails (its reader went away, a
    full disk) silences stderr for the rest of the command, which goes on; its exit code still
    tells how it ended. Writes go to the stream under a live display's stand-in (``FileProxy``,
    which would hand them back to the console)."""

    @staticmethod
    def _stream() -> Any:
        stream = sys.stderr
        return getattr(stream, "rich_proxied_file", stream)

    def write(self, text: str) -> int:
        stream = self._stream()
        if stream is None:  # started with stderr closed (``2>&-``)
            return len(text)
        try:
            return stream.write(text)
        except OSError:
            _silence(stream)
            return len(text)

    def flush(self) -> None:
        stream = self._stream()
        try:
            if stream is not None:
                stream.flush()
        except OSError:
            _silence(stream)

    def __getattr__(self, name: str) -> Any:
        if name == "rich_proxied_file":  # rich would write around this object
            raise AttributeError(name)
        return getattr(self._stream(), name)


#: ``print`` options under which rich prints one line of plain text exactly as it is.
_AS_IS = {"markup": (False,), "soft_wrap": (True,), "highlight": (False,)}


class LazyConsole:
    """stdout's or stderr's rich ``Console``, made on first use; its attributes are the console's.

    The console never reads rich markup, highlights or emoji codes, and never wraps a line: module
    names, metric values and service messages are printed as they are ("[/data/x]" in an error
    message broke the tables). rich takes 20 ms to import, a tenth of a cron ``collect`` that prints
    one line: ``print`` of one printable line, before the console is made, writes it as rich would,
    without rich. Anything else (tabs and control characters, which rich expands and strips, tables,
    a live display) goes through the console.
    """

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """The rich console itself (made now if it was not yet), for what takes a ``Console``."""
        if self._console is None:
            from rich.console import Console

            console = Console(
                file=_StderrBestEffort() if self._stderr else None,
                highlight=False,
                soft_wrap=True,
                markup=False,
                emoji=False,
            )
            if not self._stderr:
                console.on_broken_pipe = output_closed
            self._console = console
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)

    def print(self, *objects: Any, **options: Any) -> None:
        """``Console.print``; a reader of stdout that went away raises ``OutputClosed``, any other
        failed write to stdout an OSError naming it (``output_failed``); stderr is written as far
        as it can be (``_StderrBestEffort``)."""
        try:
            self._print(objects, options)
        except OSError as error:  # of the line written here: the console's own writes answer for themselves
            if self._stderr:
                _silence(sys.stderr)
            elif isinstance(error, BrokenPipeError):
                self.console.on_broken_pipe()
            else:
                raise output_failed(error) from None

    def _print(self, objects: tuple[Any, ...], options: dict[str, Any]) -> None:
        line = objects[0] if len(objects) == 1 else None
        as_is = all(value in _AS_IS.get(name, ()) for name, value in options.items())
        stream = sys.stderr if self._stderr else sys.stdout
        if (
            self._console is not None
            or type(line) is not str
            or not line.isprintable()
            or not as_is
            or stream is None  # closed (``2>&-``): rich writes to nothing, without an error
            or type(stream).__module__.startswith("rich")  # a live display's stand-in, which rich sees through
        ):
            self.console.print(*objects, **options)
            return
        stream.write(line + "\n")
        stream.flush()


out = LazyConsole(stderr=False)
err = LazyConsole(stderr=True)


def print_warnings(warnings: list[str]) -> None:
    """One ``warning:`` line on stderr for each of the config check's warnings."""
    for warning in warnings:
        err.print(f"warning: {warning}", markup=False)


def collect_report(outcome: Outcome) -> dict[str, Any]:
    """One run's ``collect --json`` document: stack counts, changed stacks and jobs, errors, exit code."""
    summary = outcome.summary
    return {
        "schema_version": 1,
        "run_dir": str(outcome.run.path),
        "finished": summary.count("FINISHED"),
        "interrupted": summary.count("INTERRUPTED"),
        "failed": summary.count("FAILED"),
        "changed": sorted(set(summary.changed)),
        "uncertain": summary.uncertain,
        "errors": summary.errors,
        "exit_code": outcome.exit_code,
    }


def print_collect(outcome: Outcome, quiet: bool) -> None:
    """One run's collect as a line of counts, then a line per error and per uncertain submission
    (nothing with ``quiet`` when nothing changed: a cron collect that found nothing stays silent)."""
    summary = outcome.summary
    if quiet and not summary.changed and not summary.errors and not summary.uncertain:
        return
    out.print(
        f"{outcome.run.path}: {summary.count('FINISHED')} finished, {summary.count('INTERRUPTED')} pending, "
        f"{summary.count('FAILED')} failed ({len(set(summary.changed))} changed)",
        markup=False,
    )
    if not summary.errors and not summary.uncertain:
        return
    from quark_cli.report_tables import one_line

    for key, message in summary.errors.items():
        out.print(f"  {key}: {one_line(message)}", markup=False)
    for key in dict.fromkeys(summary.uncertain):
        if key in summary.errors:  # its line above says why the service could not be asked
            continue
        out.print(
            f"  {key}: submission uncertain (interrupted while submitting); check the service, then "
            "'quark collect --resubmit-uncertain' to submit it again",
            markup=False,
        )


STATUS_ROWS = 50


NEEDS_DECISION = ("FAILED", "CANCELLED")  # job statuses status lists one by one however many there are


def print_status(report: dict[str, Any], show_all: bool = False) -> None:
    """The jobs that need attention (all with ``show_all``), then the totals.

    Beyond ``STATUS_ROWS`` of them, pending jobs are counted by module and status instead of listed
    one by one (a table of 10,000 rows takes seconds to draw and nobody reads it); failed ones are
    still listed, as they each need a decision.
    """
    import textwrap

    from quark_cli.report_tables import Grid, Lines, one_line

    shown = [job for job in report["jobs"] if show_all or job["status"] != "DONE"]
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if not show_all and len(shown) > STATUS_ROWS:
        listed = []
        for job in shown:  # one pass: "not in listed" compared each job with every listed one
            if job["status"] in NEEDS_DECISION or job.get("warning"):
                listed.append(job)
            else:
                grouped.setdefault((job["module"], job["status"]), []).append(job)
        shown = listed
    blocks: list[Any] = []
    if shown:
        rows, notes = [], []
        for job in shown:
            age = job["age_seconds"]
            shown_age = age_text(age) if age is not None else "-" if job["submitted_at"] else ""
            rows.append([job["key"], job["module"] or "", job["status"] or "", str(job["id"] or ""), shown_age])
            notes.append(job["error"] or (f"warning: {job['warning']}" if job.get("warning") else None))
        header = ["job", "module", "status", "id", "age"]
        blocks.append(Grid(f"jobs of {report['run_dir']}", header, rows, notes, note_header="error"))
    if grouped:
        rows = []
        for (module, status_name), jobs in sorted(grouped.items()):
            ages = [job["age_seconds"] for job in jobs if job["age_seconds"] is not None]
            rows.append([module, status_name, str(len(jobs)), age_text(max(ages)) if ages else ""])
        title = f"jobs of {report['run_dir']} by module and status ('--all' lists each)"
        blocks.append(Grid(title, ["module", "status", "jobs", "oldest"], rows))
    print_wide(blocks)
    # A stack that failed without a failed job listed above (a synchronous module raised): its error.
    explained = {job["stack"] for job in shown if job["status"] in NEEDS_DECISION}
    failed = [s for s in report.get("stacks", []) if s["status"] == "FAILED" and s["stack"] not in explained]
    if failed:
        out.print(f"failed stacks ({len(failed)}):")
    width = out.width if out.is_terminal else None
    for stack in failed[:STATUS_ROWS]:
        prefix, error = f"  {stack['stack']}: ", one_line(stack.get("error") or "no error saved")
        if width is not None:  # one line each; '--json' has the whole error
            error = textwrap.shorten(error, max(20, width - len(prefix)), placeholder=" …")
        out.print(prefix + error, soft_wrap=True)
    if len(failed) > STATUS_ROWS:
        out.print(f"  … and {len(failed) - STATUS_ROWS} more ('quark status --json' lists every error)")
    hidden = sum(1 for job in report["jobs"] if job["status"] == "DONE") if not show_all else 0
    totals = report["stack_totals"]
    sentences = [
        f"{hidden} done jobs not listed ('--all' lists them)" if hidden else "",
        f"stacks: {totals['total']} total, {totals['FINISHED']} finished, {totals['INTERRUPTED']} pending, "
        f"{totals['FAILED']} failed, {totals['NOT_STARTED']} not started",
        "jobs: " + ", ".join(f"{count} {name.lower()}" for name, count in report["job_totals"].items())
        if report["job_totals"]
        else "",
        f"{report['unknown_ages']} job age(s) unknown (-): submitted later than now by this machine's clock, "
        "so the clock was stepped back or the run comes from a machine whose clock is ahead"
        if report.get("unknown_ages")
        else "",
    ]
    print_wide([Lines([sentence]) for sentence in sentences if sentence])  # wrapped at spaces on a terminal
    for problem in report.get("problems") or []:
        err.print(f"warning: {problem}", markup=False, soft_wrap=True)


def age_text(seconds: float | None) -> str:
    """An age in seconds as people read it: ``42s``, ``17m``, ``3.5h``; "" for None."""
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def print_report(reports: list[dict[str, Any]], chosen: str, aggregated: bool, target: Path | None = None) -> None:
    """Print the reports in the ``chosen`` format, or write them to ``target`` (atomically)."""
    from quark_cli.report import text_blocks, to_csv, to_markdown
    from quark_cli.report_tables import Lines, render

    blocks = []
    for data in reports:
        if len(reports) > 1:
            blocks.append(Lines([f"run {data['run_dir']}"], style="bold"))
        blocks += text_blocks(data, aggregated)
    if chosen == "table" and target is None:
        print_wide(blocks)
        return
    if chosen == "json":
        text = json_document(reports[0]) + "\n"
    elif chosen == "markdown":
        relative_to = target.parent if target is not None else None
        text = "\n\n".join(to_markdown(data, aggregated, relative_to) for data in reports) + "\n"
    elif chosen == "csv":
        text = to_csv(reports[0], aggregated)
    elif chosen == "html":
        from quark_cli.report_html import to_html

        text = to_html(reports, aggregated)
    else:
        text = "".join(line.plain + "\n" for line in render(blocks, None))
    if target is None:
        write_out(text)
        return
    from quark_cli.atomic import atomic_write_shared

    atomic_write_shared(target, text.encode("utf-8", errors="backslashreplace"))


def run_line(entry: dict[str, Any]) -> str:
    """One run of ``quark runs`` (an entry of ``run_views.list_runs``) as a line: name, creation, config,
    stack counts and its last command's age."""
    from quark_cli.stamps import age_seconds

    if entry["error"]:
        return f"{entry['name']}  damaged: {entry['error']}"
    totals = entry["stack_totals"]
    created = (entry["created"] or "")[:16].replace("T", " ")
    counts = (
        f"{totals['FINISHED']}/{totals['total']} finished, {totals['INTERRUPTED']} pending, {totals['FAILED']} failed"
    )
    if totals["NOT_STARTED"]:
        counts += f", {totals['NOT_STARTED']} not started"
    last = entry["last_command"]
    since = f"  (last: {last['command']} {age_text(age_seconds(last['at']))} ago)" if last and last.get("at") else ""
    return f"{entry['name']}  {created}  {entry['config'] or '?'}  {counts}{since}"


def print_wide(renderables: list[Any]) -> None:
    """Print report blocks (``report_tables``): fitted to a terminal's width, never splitting a cell;
    into a pipe or file one record per line at its natural width, without box drawing."""
    from quark_cli.report_tables import render

    for line in render(renderables, out.width if out.is_terminal else None):
        out.print(line, soft_wrap=True)  # soft_wrap: fitted already, or a log line kept whole


def write_out(text: str) -> None:
    """``text`` on stdout, all of it or BrokenPipeError (its reader went away).

    Written to the file descriptor until every byte is out: a buffered write of a large document
    into a pipe whose reader left returned short without an error, and the command exited 0.
    """
    if sys.stdout is None:  # started with stdout closed (``>&-``): nowhere to write, as rich does
        return
    sys.stdout.flush()
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test runner's buffer)
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    view = memoryview(text.encode(sys.stdout.encoding or "utf-8", errors="backslashreplace"))
    try:
        while view:
            view = view[os.write(descriptor, view) :]
    except BrokenPipeError:
        raise
    except OSError as error:
        raise output_failed(error) from None


def json_document(document: Any) -> str:
    """A ``--json`` document: strict JSON (a NaN or Infinity is null), indented; other objects as text.

    A long list of objects (a status's jobs) is written one compact object a line by orjson (an
    indented dump goes through the pure-Python encoder, 3 s for 100,000 jobs; the standard library's
    C encoder took 0.5 s). An object with non-ASCII text, or one orjson refuses, is written by the
    standard library, ASCII with escapes, whatever the terminal's encoding. Output with a
    non-finite number, or text that looks like one, takes the slow, exact path.
    """
    import json

    from quark_cli.plain import finite

    if isinstance(document, dict):
        line = _line_encoder()
        parts = []
        for name, value in document.items():
            if isinstance(value, list) and len(value) > LONG_LIST and all(isinstance(item, dict) for item in value):
                text = "[\n    " + ",\n    ".join(map(line, value)) + "\n  ]"
            else:
                text = json.dumps(value, indent=2, default=str).replace("\n", "\n  ")
            parts.append(f"  {json.dumps(str(name))}: {text}")
        fast = "{\n" + ",\n".join(parts) + "\n}" if parts else "{}"
        if "NaN" not in fast and "Infinity" not in fast:
            return fast
    return json.dumps(finite(document), indent=2, allow_nan=False, default=str)


def _line_encoder() -> Callable[[Any], str]:
    """One object of a long ``--json`` list as its line (see ``json_document``)."""
    import json

    import orjson

    fallback = json.JSONEncoder(default=str, separators=(", ", ": ")).encode

    def line(item: Any) -> str:
        try:
            raw = orjson.dumps(item, default=str)
        except orjson.JSONEncodeError:  # an integer past 64 bits, a key that is not text
            return fallback(item)
        return raw.decode() if raw.isascii() else fallback(item)

    return line


#: Lists longer than this in a ``--json`` document are written one item a line.
LONG_LIST = 50
