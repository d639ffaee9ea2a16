"""What the figures of ``quark_cli.plots`` share: their colours and limits, the report's rows (a run
per line when several are drawn), lines and points of a metric, and a new matplotlib Figure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quark_cli.report import is_number, stats, varying

MAX_JOBS_SHOWN = 200


QUEUE_COLOUR = "#f4a261"


RUN_COLOUR = "#2a6f97"


OBSERVED_COLOUR = "#9aa5b1"


PENDING_EDGE = "#1d1d1d"


MODULE_COLOURS = ["#2a6f97", "#f4a261", "#6a994e", "#bc4749", "#8d6cab", "#e9c46a", "#577590"]


RUN = "run"  # the pseudo-parameter that tells several runs apart


MAX_BARS_PER_PANEL = 30  # a parameter with more values than this gets no module-time panel


MAX_PANELS = 6  # most parameters drawn side by side in one figure


MAX_LINES = 12  # more lines than this in one panel: the legend goes in two columns


Report = dict[str, Any] | list[dict[str, Any]]


@dataclass(frozen=True)
class Drawn:
    """One figure before it is written: its file name in ``plots/``, the matplotlib Figure, what it shows."""

    name: str
    figure: Any
    shows: str


def report_rows(report: Report) -> list[dict[str, Any]]:
    """The report's rows; with several runs, each row's parameters gain ``run`` (the run folder's name)."""
    reports = report if isinstance(report, list) else [report]
    tagged = []
    for one in reports:
        for row in one["rows"]:
            tagged.append((str(row.get("run_dir") or one.get("run_dir") or ""), row))
    runs = list(dict.fromkeys(run for run, _ in tagged))
    if len(runs) < 2:
        return [row for _, row in tagged]
    names = [Path(run).name or run for run in runs]
    label = dict(zip(runs, names if len(set(names)) == len(names) else runs, strict=True))
    return [{**row, "parameters": {**row["parameters"], RUN: label[run]}} for run, row in tagged]


def finished_rows(report: Report) -> list[dict[str, Any]]:
    """``report_rows`` of the finished stacks only."""
    return [row for row in report_rows(report) if row["status"] == "FINISHED"]


def line_groups(rows: list[dict[str, Any]], x: str, ignore: set[str]) -> dict[tuple, list[dict[str, Any]]]:
    """Rows grouped into lines: one per combination of the parameters that vary, except ``x`` and ``ignore``."""
    names = [name for name in varying(rows) if name != x and name not in ignore]
    lines: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = tuple((name, row["parameters"].get(name)) for name in names)
        lines.setdefault(key, []).append(row)
    return dict(sorted(lines.items(), key=lambda item: sort_key(item[0])))


def sort_key(key: tuple) -> tuple:
    """Order of a line's ``((name, value), ...)``: numbers by value first, then anything else by its repr."""
    return tuple((0, value, "") if is_number(value) else (1, 0, repr(value)) for _, value in key)


def line_label(key: tuple, first: str | None = None, unit: str = "") -> str:
    """A line's legend entry: ``name=value`` for each parameter (the ``first`` one as its value and ``unit``)."""
    parts = []
    for name, value in key:
        parts.append(f"{value} {unit}".strip() if name == first else f"{name}={value}")
    return ", ".join(parts) or "all stacks"


def mean_points(
    rows: list[dict[str, Any]], x: str, metric: str
) -> tuple[list[Any], list[float], list[float], list[int]]:
    """``metric`` against parameter ``x``: the x values, mean, sample std (0 for one) and count at each."""
    by_x: dict[Any, list[float]] = {}
    for row in rows:
        value = row["metrics"].get(metric)
        if is_number(value) and is_number(row["parameters"].get(x)):
            by_x.setdefault(row["parameters"][x], []).append(value)
    xs = sorted(by_x)
    summaries = [stats(by_x[value]) for value in xs]
    return (
        xs,
        [entry["mean"] for entry in summaries],
        [entry["std"] or 0.0 for entry in summaries],
        [entry["n"] for entry in summaries],
    )


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure of ``width`` x ``height`` inches, laid out by matplotlib (imported here, on first use)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def repetition_note(counts: list[int], what: str) -> str:
    """What a point and its error bar stand for, given how many ``what`` (stacks, repetitions) each averages."""
    low, high = min(counts), max(counts)
    if high == 1:
        return "one stack per point (no repetitions to average, so no error bars)"
    n = f"{low}" if low == high else f"{low}–{high}"
    return f"points: mean over {n} {what}; error bars: sample standard deviation"


LEGEND_NAMES = {"nodes": "graph size", "edge_probability": "edge probability"}


def legend_title(key: tuple) -> str:
    """What the lines of a panel stand for: the names of the parameters that tell them apart."""
    return ", ".join(LEGEND_NAMES.get(name, name) for name, _ in key)
