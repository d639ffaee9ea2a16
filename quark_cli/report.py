"""``quark report``: a run's results as rows, aggregated per backlog item, in several formats.

One row per stack (backlog item x repetition) with its parameters, its metrics, its compute time and
its jobs' ids and times; one aggregated row per backlog item with the mean and the sample standard
deviation (n - 1) of every numeric metric over the item's finished repetitions. Reads the run
directory only (records and job files), so it is safe while ``collect`` works on the run.

Job times: queue wait and run time come from the service's own timestamps when the job manager
saved them (``service_submitted`` / ``service_started`` / ``service_finished`` in the job's info);
otherwise only the turnaround quark observed by polling (submission to the poll that saw the end).
An interval whose stamps are out of order (a clock stepped back, two clocks that disagree) is
unknown: null in JSON, ``-`` in tables, named in the job's and the row's ``unknown``, and counted in
``unknown_intervals``; never a 0 that looks measured.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from quark_cli.report_tables import Block, Grid, Lines
from quark_cli.stamps import interval
from quark_cli.state import SCHEMA_VERSION, RunDir

MODULE_KEYS = {
    "module_name",
    "module_src",
    "module_level",
    "module_git_revision_number",
    "module_git_uncommitted_changes",
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
JOB_TIMES = ("queue_s", "run_s", "turnaround_s")
TIME_COLUMNS = ("time_s", *JOB_TIMES)
FORMATS = ("table", "markdown", "csv", "json", "html")
FORMAT_ALIASES = {"md": "markdown", "htm": "html"}


def format_named(name: str) -> str | None:
    """The format ``name`` stands for (``md`` is ``markdown``), or None when it is none of ``FORMATS``."""
    name = name.lower()
    name = FORMAT_ALIASES.get(name, name)
    return name if name in FORMATS else None


def build_report(path: Path) -> dict[str, Any]:
    """The report of the run at ``path`` as plain data (the ``--json`` document)."""
    run = RunDir.open(path)
    info = run.read_run()
    rows = []
    for key in run.record_keys():  # one record and its jobs at a time: 100,000 records do not fit twice
        record = run.read_record(key)
        if record is not None:
            jobs = {name: run.read_job(name) for name in record.get("jobs") or [] if run.job_file(name).exists()}
            rows.append(_row(record, jobs))
    rows.sort(key=lambda row: (row["backlog_item"] or 0, row["repetition"] or 0))
    counts = {name: sum(1 for row in rows if row["status"] == name) for name in ("FINISHED", "INTERRUPTED", "FAILED")}
    total = int(info.get("stacks", len(rows)))
    return {
        "schema_version": SCHEMA_VERSION,
        "run_dir": str(run.path),
        "created": info.get("created"),
        "config_hash": info.get("config_hash"),
        "stack_totals": {"total": total, **counts, "NOT_STARTED": max(0, total - len(rows))},
        "unknown_intervals": sum(len(job["unknown"]) for row in rows for job in row["jobs"]),
        "rows": rows,
        "items": _aggregate(rows),
    }


def _row(record: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    modules, parameters, metrics, module_times = [], {}, {}, {}
    node = record.get("module") or {}
    while node:
        name = node.get("module_name", "?")
        modules.append(name)
        for key, value in (node.get("module_config") or {}).items():
            _put(parameters, key, value, name)
        for key, value in node.items():
            if key not in MODULE_KEYS and _scalar(value):
                _put(metrics, key, value, name)
        module_times[name] = _seconds(node.get("total_time"))
        node = node.get("submodule")
    application = record.get("module") or {}
    headline = [key for key, value in application.items() if key not in MODULE_KEYS and is_number(value)]
    job_rows = [_job_row(jobs.get(key), key) for key in record.get("jobs") or []]
    unknown = [column for column in JOB_TIMES if any(column in job["unknown"] for job in job_rows)]
    return {
        "stack": record.get("stack"),
        "backlog_item": record.get("benchmark_backlog_item_number"),
        "repetition": record.get("repetition"),
        "status": record.get("quark_job_status"),
        "error": record.get("error"),
        "modules": modules,
        "parameters": parameters,
        "metrics": metrics,
        "headline_metrics": headline,
        "time_s": _seconds(record.get("total_time")),
        "module_times_s": module_times,
        "job_ids": [job["id"] for job in job_rows if job["id"]],
        "jobs": job_rows,
        **{column: None if column in unknown else _sum(job[column] for job in job_rows) for column in JOB_TIMES},
        "unknown": unknown,
    }


def _put(target: dict[str, Any], key: str, value: Any, module: str) -> None:
    """Keep the first module's value under the plain name; a different value further down is ``Module.key``."""
    if key not in target:
        target[key] = value
    elif target[key] != value:
        target[f"{module}.{key}"] = value


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def is_number(value: Any) -> bool:
    """A finite real number that a float can hold (bools are ints to Python, not to us; NaN and
    Infinity are not measurements; an integer past 1.8e308, which a record may hold up to 4,000
    digits, is shown as it is but not averaged or drawn)."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is bool or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _seconds(milliseconds: Any) -> float | None:
    return None if not is_number(milliseconds) else milliseconds / 1000


def _sum(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _job_row(job: dict[str, Any] | None, key: str) -> dict[str, Any]:
    """One job's ids and times; an interval whose stamps are out of order is None and named in ``unknown``."""
    job = job or {}
    info = job.get("info") or {}
    submitted, started, finished = (info.get(f"service_{n}") for n in ("submitted", "started", "finished"))
    turnaround, timing = interval(submitted, finished), "service"
    if turnaround.seconds is None:  # no usable service times: what quark saw by polling, if anything
        observed = interval(job.get("submitted_at"), job.get("finished_at"))
        if observed.seconds is not None or not turnaround.unknown:
            turnaround, timing = observed, "observed"
    intervals = {
        "queue_s": interval(submitted, started),
        "run_s": interval(started, finished),
        "turnaround_s": turnaround,
    }
    return {
        "key": key,
        "id": info.get("id"),
        "status": job.get("status"),
        "module": job.get("module_path"),
        "attempt": job.get("attempt", 1),
        "submitted_at": job.get("submitted_at"),
        "finished_at": job.get("finished_at"),
        "service_submitted": info.get("service_submitted"),
        "service_started": info.get("service_started"),
        "service_finished": info.get("service_finished"),
        "timing": timing if turnaround.seconds is not None else None,
        **{column: span.seconds for column, span in intervals.items()},
        "unknown": [column for column, span in intervals.items() if span.unknown],
    }


def stats(values: list[Any], of: int | None = None) -> dict[str, Any]:
    """Mean and sample standard deviation (None with fewer than two values) of the finite numbers in
    ``values``; ``missing`` counts the entries (of ``of``, default all) that had none. A standard
    deviation past the largest float (values near 1e308 of both signs) is ``inf``."""
    numbers = [value for value in values if is_number(value)]
    expected = len(values) if of is None else of
    return {
        "mean": _mean(numbers) if numbers else None,
        "std": _std(numbers) if len(numbers) > 1 else None,
        "n": len(numbers),
        "missing": expected - len(numbers),
    }


def _mean(numbers: list[Any]) -> float:
    """``statistics.fmean``, or where its running sum overflows (values near 1e308) the exact mean,
    which lies between the smallest and the largest value and so is a float too."""
    try:
        return statistics.fmean(numbers)
    except OverflowError:
        return float(statistics.mean(numbers))


def _std(numbers: list[Any]) -> float:
    try:
        return statistics.stdev(numbers)
    except OverflowError:
        return math.inf


def _aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_item: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        by_item.setdefault(row["backlog_item"], []).append(row)
    items = []
    for item, group in by_item.items():
        finished = [row for row in group if row["status"] == "FINISHED"]
        metric_names = _ordered(name for row in finished for name, v in row["metrics"].items() if is_number(v))
        module_names = _ordered(name for row in finished for name in row["module_times_s"])
        items.append(
            {
                "backlog_item": item,
                "modules": group[0]["modules"],
                "parameters": group[0]["parameters"],
                "repetitions": len(group),
                "finished": len(finished),
                "failed": sum(1 for row in group if row["status"] == "FAILED"),
                "metrics": {name: stats([row["metrics"].get(name) for row in finished]) for name in metric_names},
                "module_times_s": {
                    name: stats([row["module_times_s"].get(name) for row in finished]) for name in module_names
                },
                **{column: stats([row[column] for row in finished]) for column in TIME_COLUMNS},
            }
        )
    return items


def _ordered(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def varying(entries: list[dict[str, Any]]) -> list[str]:
    """The parameters (of rows or items) that take more than one value, in their first order."""
    names = _ordered(name for entry in entries for name in entry["parameters"])
    return [name for name in names if len({repr(entry["parameters"].get(name)) for entry in entries}) > 1]


# -- columns shared by the text formats ----------------------------------------------------------------


def branches(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows and items grouped by module chain, with the parameters that vary and those that do not.

    A table per branch keeps columns meaningful: two branches of one config may have different
    modules and parameters.
    """
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in report["rows"]:
        group = groups.setdefault(tuple(row["modules"]), {"modules": row["modules"], "rows": [], "items": []})
        group["rows"].append(row)
    for item in report["items"]:
        groups[tuple(item["modules"])]["items"].append(item)
    for group in groups.values():
        names = _ordered(name for row in group["rows"] for name in row["parameters"])
        group["varying"] = varying(group["rows"])
        group["fixed"] = {
            name: group["rows"][0]["parameters"].get(name) for name in names if name not in group["varying"]
        }
        headline = _ordered(name for row in group["rows"] for name in row["headline_metrics"])
        group["metrics"] = [name for name in headline if name not in names]
        shown = [column for column in JOB_TIMES if any(_has(row, column) for row in group["rows"])]
        group["times"] = ["queue_s", "run_s"] if "run_s" in shown else [c for c in shown if c == "turnaround_s"]
        group["jobs"] = any(row["job_ids"] for row in group["rows"])
    return list(groups.values())


def _has(row: dict[str, Any], column: str) -> bool:
    """True when the row has a value for the time ``column``, or one that is unknown."""
    return row[column] is not None or column in row["unknown"]


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fmt_stats(entry: dict[str, Any] | None) -> str:
    """``mean ± std``, and how many repetitions had no finite value (``(1 missing)``)."""
    if not entry or entry["mean"] is None:
        return ""
    text = fmt(entry["mean"]) if entry["std"] is None else f"{fmt(entry['mean'])} ± {entry['std']:.2g}"
    return f"{text} ({entry['missing']} missing)" if entry.get("missing") else text


TIME_LABELS = {"time_s": "time (s)", "queue_s": "queue (s)", "run_s": "run (s)", "turnaround_s": "turnaround (s)"}


def _row_cells(group: dict[str, Any], row: dict[str, Any], short_ids: bool, with_error: bool = True) -> list[str]:
    status = row["status"] + (f": {row['error']}" if row.get("error") and with_error else "")
    ids = [str(job_id)[:8] if short_ids else str(job_id) for job_id in row["job_ids"]]
    return [
        row["stack"],
        *(fmt(row["parameters"].get(name)) for name in group["varying"]),
        *(fmt(row["metrics"].get(name)) for name in group["metrics"]),
        *("-" if column in row["unknown"] else fmt(row[column]) for column in ("time_s", *group["times"])),
        *([" ".join(ids)] if group["jobs"] else []),
        status,
    ]


def _row_header(group: dict[str, Any]) -> list[str]:
    times = [TIME_LABELS[column] for column in ("time_s", *group["times"])]
    return ["stack", *group["varying"], *group["metrics"], *times, *(["job ids"] if group["jobs"] else []), "status"]


def _item_cells(group: dict[str, Any], item: dict[str, Any]) -> list[str]:
    return [
        str(item["backlog_item"]),
        *(fmt(item["parameters"].get(name)) for name in group["varying"]),
        f"{item['finished']}/{item['repetitions']}",
        *(fmt_stats(item["metrics"].get(name)) for name in group["metrics"]),
        *(fmt_stats(item[column]) for column in ("time_s", *group["times"])),
    ]


def _item_header(group: dict[str, Any]) -> list[str]:
    times = [TIME_LABELS[column] for column in ("time_s", *group["times"])]
    return ["item", *group["varying"], "finished", *group["metrics"], *times]


def _fixed_text(group: dict[str, Any]) -> str:
    return " ".join(f"{name}={fmt(value)}" for name, value in group["fixed"].items())


def _totals_text(report: dict[str, Any]) -> str:
    totals = report["stack_totals"]
    text = (
        f"{totals['total']} stacks: {totals['FINISHED']} finished, {totals['INTERRUPTED']} pending, "
        f"{totals['FAILED']} failed, {totals['NOT_STARTED']} not started"
    )
    unknown = report.get("unknown_intervals")
    if unknown:
        text += (
            f"; {unknown} job time(s) unknown (shown as -): their timestamps are out of order, so a clock was "
            "stepped or two clocks disagree"
        )
    return text


# -- formats ----------------------------------------------------------------------------------------


def to_markdown(report: dict[str, Any], aggregated: bool = False, relative_to: Path | None = None) -> str:
    """GitHub-flavoured Markdown: per branch, a table per repetition and one of mean ± std per item.

    With figures in ``report["plots"]`` (``--plots``), a last section links each image by a path
    relative to ``relative_to`` (the folder the Markdown is saved in; default the current one).
    """
    lines = [f"# Report of {report['run_dir']}", "", _totals_text(report) + ".", ""]
    for group in branches(report):
        lines += [f"## {' → '.join(group['modules'])}", ""]
        if group["fixed"]:
            lines += [f"Fixed parameters: {_fixed_text(group)}", ""]
        if not aggregated:
            lines += ["### Per repetition", ""]
            lines += _markdown_table(_row_header(group), [_row_cells(group, row, False) for row in group["rows"]])
        lines += ["### Mean ± std over repetitions", ""]
        lines += _markdown_table(_item_header(group), [_item_cells(group, item) for item in group["items"]])
    if report.get("plots"):
        lines += ["## Figures", ""]
        base = Path(relative_to) if relative_to is not None else Path.cwd()
        for plot in report["plots"]:
            link = quote(Path(os.path.relpath(Path(plot["path"]).absolute(), base.absolute())).as_posix())
            alt = plot["shows"].replace("[", "(").replace("]", ")").replace("\n", " ")
            lines += [f"![{alt}]({link})", "", f"*{alt}*", ""]
    return "\n".join(lines)


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows), ""]


def identifier(name: str) -> str:
    """A CSV column name as a snake_case identifier (``LocalAsyncSampler.shots``: ``local_async_sampler_shots``)."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", str(name)))
    text = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower() or "column"
    return f"_{text}" if text[0].isdigit() else text


def _identifiers(names: list[str], taken: Iterable[str] = ()) -> list[str]:
    """``identifier`` of each name, made unique (``_2``, ``_3``) against each other and ``taken``."""
    used, result = set(taken), []
    for name in names:
        candidate, count = identifier(name), 1
        while candidate in used:
            count += 1
            candidate = f"{identifier(name)}_{count}"
        used.add(candidate)
        result.append(candidate)
    return result


def _csv_names(params: list[str], metrics: list[str], fixed: list[str]) -> tuple[list[str], list[str]]:
    """Column names of the parameters and metrics; a metric named like a parameter is ``name_metric``."""
    param_columns = _identifiers(params, fixed)
    wanted = [f"{name}_metric" if name in params else name for name in metrics]
    return param_columns, _identifiers(wanted, [*fixed, *param_columns])


def to_csv(report: dict[str, Any], aggregated: bool = False) -> str:
    """One CSV row per repetition (every parameter and metric), or per backlog item with ``aggregated``.

    Column names are snake_case identifiers (``approximation_ratio_mean``, ``local_async_sampler_shots``).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if aggregated:
        items = report["items"]
        params = _ordered(name for item in items for name in item["parameters"])
        metrics = _ordered(name for item in items for name in item["metrics"])
        fixed = ["backlog_item", "modules", "repetitions", "finished", "failed"]
        times = [f"{column}_{part}" for column in TIME_COLUMNS for part in ("mean", "std")]
        param_columns, metric_columns = _csv_names(params, metrics, [*fixed, *times])
        writer.writerow(
            ["backlog_item", "modules", *param_columns, "repetitions", "finished", "failed"]
            + [f"{name}_{part}" for name in metric_columns for part in ("mean", "std")]
            + times
        )
        for item in items:
            entries = [*(item["metrics"].get(name) for name in metrics), *(item[column] for column in TIME_COLUMNS)]
            writer.writerow(
                [item["backlog_item"], ">".join(item["modules"])]
                + [_csv(item["parameters"].get(name)) for name in params]
                + [item["repetitions"], item["finished"], item["failed"]]
                + [_csv((entry or {}).get(part)) for entry in entries for part in ("mean", "std")]
            )
        return buffer.getvalue()
    rows = report["rows"]
    params = _ordered(name for row in rows for name in row["parameters"])
    metrics = _ordered(name for row in rows for name in row["metrics"])
    fixed = ["stack", "backlog_item", "repetition", "status", "modules", *TIME_COLUMNS, "job_ids", "error"]
    param_columns, metric_columns = _csv_names(params, metrics, fixed)
    writer.writerow(
        ["stack", "backlog_item", "repetition", "status", "modules", *param_columns, *metric_columns]
        + [*TIME_COLUMNS, "job_ids", "error"]
    )
    for row in rows:
        writer.writerow(
            [row["stack"], row["backlog_item"], row["repetition"], row["status"], ">".join(row["modules"])]
            + [_csv(row["parameters"].get(name)) for name in params]
            + [_csv(row["metrics"].get(name)) for name in metrics]
            + [_csv(row[column]) for column in TIME_COLUMNS]
            + [";".join(map(str, row["job_ids"])), row["error"] or ""]
        )
    return buffer.getvalue()


def _csv(value: Any) -> Any:
    return "" if value is None else value


def text_blocks(report: dict[str, Any], aggregated: bool = False) -> list[Block]:
    """The report for a terminal or a log (``report_tables.render`` lays it out): per branch, the
    per-repetition table and the aggregated one, the fixed parameters, then the totals."""
    blocks: list[Block] = []
    for group in branches(report):
        chain = " → ".join(group["modules"])
        if not aggregated:
            blocks.append(
                Grid(
                    title=f"{chain}: per repetition",
                    header=_row_header(group),
                    rows=[_row_cells(group, row, True, with_error=False) for row in group["rows"]],
                    notes=[row.get("error") for row in group["rows"]],
                )
            )
        blocks.append(
            Grid(
                title=f"{chain}: mean ± std over repetitions",
                header=_item_header(group),
                rows=[_item_cells(group, item) for item in group["items"]],
            )
        )
        if group["fixed"]:
            blocks.append(Lines([f"{name}={fmt(value)}" for name, value in group["fixed"].items()], prefix="fixed: "))
    blocks.append(Lines([_totals_text(report)]))
    return blocks
