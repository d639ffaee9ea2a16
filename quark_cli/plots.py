"""``quark report --plots``: PNG figures of a run's report, drawn with matplotlib.

matplotlib is imported only here and only when plots are asked for (it costs a second to import).
Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no global state, no display needed)
and written atomically into ``<run-dir>/plots/``. A figure is written only when the run holds the
data it shows: a GHZ run gets no MaxCut figure.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quark_cli.atomic import atomic_write_bytes
from quark_cli.errors import RunDirError, describe_os_error
from quark_cli.report import is_number, stats, varying
from quark_cli.stamps import interval, parse_stamp
from quark_cli.state import stack_of

PLOTS_DIR = "plots"
MAX_JOBS_SHOWN = 200
QUEUE_COLOUR = "#f4a261"
RUN_COLOUR = "#2a6f97"
OBSERVED_COLOUR = "#9aa5b1"
MODULE_COLOURS = ["#2a6f97", "#f4a261", "#6a994e", "#bc4749", "#8d6cab", "#e9c46a", "#577590"]


def write_plots(report: dict[str, Any], run_dir: Path) -> list[tuple[Path, str]]:
    """Draw every figure the run has data for; returns ``(path, what it shows)`` for each PNG written."""
    written = []
    for name, draw in FIGURES:
        drawn = draw(report)
        if drawn is None:
            continue
        figure, description = drawn
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        path = Path(run_dir) / PLOTS_DIR / name
        try:
            atomic_write_bytes(path, buffer.getvalue())
        except OSError as error:
            if describe_os_error(error):  # a full disk, a read-only folder: the machine's, exit 74
                raise
            raise RunDirError(f"{path}: cannot be written ({error.strerror or error}); check the folder") from None
        written.append((path, description))
    return written


def _finished(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for row in report["rows"] if row["status"] == "FINISHED"]


def _series(rows: list[dict[str, Any]], x: str, ignore: set[str]) -> dict[tuple, list[dict[str, Any]]]:
    """Rows grouped into lines: one per combination of the parameters that vary, except ``x`` and ``ignore``."""
    names = [name for name in varying(rows) if name != x and name not in ignore]
    lines: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = tuple((name, row["parameters"].get(name)) for name in names)
        lines.setdefault(key, []).append(row)
    return lines


def _line_label(key: tuple, first: str | None = None, unit: str = "") -> str:
    parts = []
    for name, value in key:
        parts.append(f"{value} {unit}".strip() if name == first else f"{name}={value}")
    return ", ".join(parts) or "all stacks"


def _points(rows: list[dict[str, Any]], x: str, metric: str) -> tuple[list[Any], list[float], list[float], list[int]]:
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


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _repetition_note(counts: list[int], what: str) -> str:
    low, high = min(counts), max(counts)
    if high == 1:
        return "one stack per point (no repetitions to average, so no error bars)"
    n = f"{low}" if low == high else f"{low}–{high}"
    return f"points: mean over {n} {what}; error bars: sample standard deviation"


def approximation_ratio_vs_depth(report: dict[str, Any]) -> tuple[Any, str] | None:
    """MaxCut with QAOA: approximation ratios against the QAOA depth p, one line per graph size."""
    rows = [
        row
        for row in _finished(report)
        if is_number(row["metrics"].get("approximation_ratio")) and is_number(row["parameters"].get("p"))
    ]
    if not rows:
        return None
    panels = [("approximation_ratio", "approximation ratio\n(best sampled cut / optimal cut)")]
    if any(is_number(row["metrics"].get("expected_cut_ratio")) for row in rows):
        panels.append(("expected_cut_ratio", "expected cut ratio\n(mean sampled cut / optimal cut)"))
    figure = _figure(5.2 * len(panels), 4.2)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    lines = _series(rows, "p", ignore={"graph_seed", "seed"})
    counts: list[int] = []
    for axis, (metric, label) in zip(axes, panels, strict=True):
        for index, (key, line_rows) in enumerate(sorted(lines.items(), key=lambda item: repr(item[0]))):
            xs, means, stds, ns = _points(line_rows, "p", metric)
            if not xs:
                continue
            counts.extend(ns)
            dodge = (index - (len(lines) - 1) / 2) * 0.04
            axis.errorbar(
                [x + dodge for x in xs],
                means,
                yerr=stds,
                marker="o",
                capsize=4,
                label=_line_label(key, "nodes", "nodes"),
            )
        axis.set_xlabel("QAOA depth p (layers)")
        axis.set_ylabel(label)
        axis.set_xticks(sorted({row["parameters"]["p"] for row in rows}))
        low = min(row["metrics"].get(metric, 1.0) or 1.0 for row in rows)
        axis.set_ylim(max(0.0, min(low, 1.0) - 0.1), 1.04)
        axis.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
        axis.grid(alpha=0.3)
        axis.legend(title="graph size", fontsize="small")
    figure.suptitle("MaxCut with QAOA: approximation ratio vs QAOA depth")
    seeds = len({row["parameters"].get("graph_seed") for row in rows}) > 1
    what = "repetitions and graph seeds" if seeds else "repetitions"
    figure.supxlabel(_repetition_note(counts, what), fontsize="small", color="dimgray")
    return figure, "MaxCut approximation ratio (best and mean sampled cut / optimum) vs QAOA depth p, per graph size"


def ghz_population_vs_qubits(report: dict[str, Any]) -> tuple[Any, str] | None:
    """GHZ: the population of |0…0> and |1…1> (the fidelity proxy) against the number of qubits."""
    rows = [
        row
        for row in _finished(report)
        if is_number(row["metrics"].get("population")) and is_number(row["parameters"].get("n_qubits"))
    ]
    if not rows:
        return None
    figure = _figure(6.4, 4.4)
    axis = figure.subplots()
    counts: list[int] = []
    lines = _series(rows, "n_qubits", ignore={"seed"})
    for key, line_rows in sorted(lines.items(), key=lambda item: repr(item[0])):
        suffix = f" ({_line_label(key)})" if key else ""
        for metric, label, style in (
            ("population", "P(|0…0⟩) + P(|1…1⟩)", "-o"),
            ("p_all_zero", "P(|0…0⟩)", "--s"),
            ("p_all_one", "P(|1…1⟩)", "--^"),
        ):
            xs, means, stds, ns = _points(line_rows, "n_qubits", metric)
            if xs:
                counts.extend(ns)
                axis.errorbar(xs, means, yerr=stds, fmt=style, capsize=4, label=label + suffix)
    axis.axhline(1.0, color="grey", linewidth=0.8, linestyle=":", label="ideal population (1)")
    axis.axhline(0.5, color="grey", linewidth=0.8, linestyle="-.", label="ideal per outcome (0.5)")
    axis.set_xticks(sorted({row["parameters"]["n_qubits"] for row in rows}))
    axis.set_ylim(0.0, 1.08)
    axis.set_xlabel("number of qubits n")
    axis.set_ylabel("probability (fraction of shots)")
    axis.set_title("GHZ state: population of |0…0⟩ and |1…1⟩ vs number of qubits")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small", loc="lower left")
    figure.supxlabel(_repetition_note(counts, "repetitions"), fontsize="small", color="dimgray")
    return figure, "GHZ population P(|0…0⟩)+P(|1…1⟩) and each outcome's probability vs number of qubits"


def _job_bars(job: dict[str, Any], now: datetime) -> tuple[str, datetime, list[tuple]] | None:
    """``(clock, start, segments)`` of one job, a segment being ``(start, end, kind, pending)``.

    Service times and quark's own are different clocks (a Qaptiva's are even without a zone), so
    each is drawn from its own origin; a pending job runs up to ``now`` where the clock allows.
    """
    submitted = parse_stamp(job.get("service_submitted"))
    if submitted is not None:
        started, finished = parse_stamp(job.get("service_started")), parse_stamp(job.get("service_finished"))
        end = finished or (now if submitted.tzinfo else None)
        if end is None:
            return None
        pending, clock = finished is None, "service" if submitted.tzinfo else "service, no zone"
        if started is None or (started.tzinfo is None) != (end.tzinfo is None) or started > end:
            return clock, submitted, [(submitted, end, "queue", pending)]
        return clock, submitted, [(submitted, started, "queue", False), (started, end, "run", pending)]
    submitted, finished = parse_stamp(job.get("submitted_at")), parse_stamp(job.get("finished_at"))
    if submitted is None:
        return None
    return "quark", submitted, [(submitted, finished or now, "observed", finished is None)]


def job_timeline(report: dict[str, Any]) -> tuple[Any, str] | None:
    """Every job as a bar: waiting in the queue, then running, on a time axis from the first submission."""
    now = datetime.now(UTC)
    placed = []
    for row in report["rows"]:
        for job in row["jobs"]:
            bars = _job_bars(job, now)
            if bars is not None:
                placed.append((job, *bars))
    if not placed:
        return None
    placed.sort(key=lambda entry: (entry[1], entry[2]))
    total = len(placed)
    placed = placed[:MAX_JOBS_SHOWN]
    origin: dict[str, datetime] = {}
    for _, clock, submitted, _ in placed:
        origin[clock] = min(origin.get(clock, submitted), submitted)
    figure = _figure(8.0, min(2.0 + 0.28 * len(placed), 60.0))
    axis = figure.subplots()
    colours = {"queue": QUEUE_COLOUR, "run": RUN_COLOUR, "observed": OBSERVED_COLOUR}
    labels = {
        "queue": "waiting in the queue",
        "run": "running",
        "observed": "submitted → seen finished by polling (no service times)",
    }
    used = set()
    for position, (job, clock, _, segments) in enumerate(placed):
        durations = []
        for start, end, kind, pending in segments:
            left = (start - origin[clock]).total_seconds()
            width = interval(start, end).seconds
            axis.barh(
                position,
                width or 0.0,
                left=left,
                height=0.6,
                color=colours[kind],
                hatch="//" if pending else None,
                edgecolor=colours[kind],
                linewidth=0.8,
                label=labels[kind] if kind not in used else None,
            )
            used.add(kind)
            name = "turnaround" if kind == "observed" else kind
            durations.append(f"{name} unknown (stamps out of order)" if width is None else f"{name} {_duration(width)}")
        status = "" if job.get("status") == "DONE" else f" · {job.get('status')}"
        end = (segments[-1][1] - origin[clock]).total_seconds()
        axis.text(end, position, "  " + ", ".join(durations) + status, va="center", fontsize="x-small")
    axis.set_yticks(range(len(placed)))
    axis.set_yticklabels([_job_label(job) for job, *_ in placed], fontsize="small")
    axis.invert_yaxis()
    axis.set_xlabel("time since the first submission (s)")
    axis.set_xlim(0, max(axis.get_xlim()[1], 1e-3) * 1.3)  # room for the labels right of the bars
    shown = f" (first {len(placed)} of {total})" if total > len(placed) else ""
    axis.set_title(f"Jobs{shown}: queue wait and run time")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if any(pending for *_, segments in placed for *_, pending in segments):
        figure.supxlabel("hatched: still pending when the report was made", fontsize="small", color="dimgray")
    return figure, "every job as a bar on a time axis: queue wait, then run time (service timestamps)"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _job_label(job: dict[str, Any]) -> str:
    module = str(job.get("module") or "").rsplit(".", 1)[-1]
    attempt = f" (attempt {job['attempt']})" if job.get("attempt", 1) > 1 else ""
    return f"{stack_of(str(job.get('key', '')))} {module}{attempt}"


def module_times(report: dict[str, Any]) -> tuple[Any, str] | None:
    """Where a stack's time goes: the mean time of each module, per backlog item, stacked."""
    items = [item for item in report["items"] if item["finished"] and item["module_times_s"]]
    if not items:
        return None
    modules = list(dict.fromkeys(name for item in items for name in item["module_times_s"]))
    branches = {tuple(item["modules"]) for item in items}
    names = varying(items)
    figure = _figure(8.0, min(2.2 + 0.35 * len(items), 60.0))
    axis = figure.subplots()
    left = [0.0] * len(items)
    for index, name in enumerate(modules):
        widths = [(item["module_times_s"].get(name) or {}).get("mean") or 0.0 for item in items]
        axis.barh(
            range(len(items)),
            widths,
            left=left,
            height=0.6,
            color=MODULE_COLOURS[index % len(MODULE_COLOURS)],
            label=name,
        )
        left = [a + b for a, b in zip(left, widths, strict=True)]
    labels = []
    for item in items:
        text = " ".join(f"{name}={item['parameters'].get(name)}" for name in names)
        chain = f" [{item['modules'][-1]}]" if len(branches) > 1 else ""
        labels.append(f"#{item['backlog_item']} {text}{chain}".strip())
    axis.set_yticks(range(len(items)))
    axis.set_yticklabels(labels, fontsize="small")
    axis.invert_yaxis()
    axis.set_xlabel("mean time per stack (s)")
    axis.set_title("Where the time goes: mean time of each module per backlog item")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(title="module", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.supxlabel(
        "pre- plus postprocessing, mean over finished repetitions; an async module's time is its submit and "
        "collect (in 'quark run' it includes waiting for its job)",
        fontsize="x-small",
        color="dimgray",
    )
    return figure, "mean time of each module (pre + postprocessing) per backlog item, stacked"


FIGURES: list[tuple[str, Callable[[dict[str, Any]], tuple[Any, str] | None]]] = [
    ("approximation_ratio_vs_depth.png", approximation_ratio_vs_depth),
    ("ghz_population_vs_qubits.png", ghz_population_vs_qubits),
    ("job_timeline.png", job_timeline),
    ("module_times.png", module_times),
]
