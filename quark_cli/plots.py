"""``quark report --plots``: PNG figures of a run's report, drawn with matplotlib.

matplotlib is imported only here and only when plots are asked for (it costs a second to import).
Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no global state, no display needed)
and written atomically into ``<run-dir>/plots/``. A figure is written only when the run holds the
data it shows: a GHZ run gets no MaxCut figure.

Two kinds of figures:

* built in: MaxCut's approximation ratios vs QAOA depth, GHZ's population vs qubits, the jobs'
  timeline and where the time goes (module times grouped by each parameter that varies);
* for any application, one ``metric_<name>.png`` per numeric metric that varies across the finished
  stacks (of any module level, a user's own application's too): the metric against each parameter
  that varies, mean ± sample std over repetitions, one line per value of the other varying
  parameters.

Several runs can be drawn together: give ``draw_figures`` / ``write_plots`` a list of reports (or
one report whose rows carry a ``run_dir``); the run then counts as one more varying parameter,
``run``, so each run gets its own lines.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quark_cli.atomic import atomic_write_bytes
from quark_cli.errors import RunDirError, describe_os_error
from quark_cli.keys import stack_of
from quark_cli.report import is_number, stats, varying
from quark_cli.stamps import interval, parse_stamp

PLOTS_DIR = "plots"
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


def draw_figures(report: Report) -> list[Drawn]:
    """Every figure the report (or list of reports) has data for, in the order they are written.

    Built-in figures first (MaxCut, GHZ, job timeline, module times), then one ``metric_<name>.png``
    per numeric metric that varies across finished stacks. Nothing is written here.
    """
    drawn = []
    for name, draw in FIGURES:
        result = draw(report)
        if result is not None:
            drawn.append(Drawn(name, *result))
    return drawn + metric_figures(report)


def write_plots(report: Report, run_dir: Path) -> list[tuple[Path, str]]:
    """Draw every figure the run has data for into ``run_dir/plots/``; ``(path, what it shows)`` per PNG.

    ``report`` is ``build_report``'s document, or a list of them to draw several runs together.
    """
    written = []
    for drawn in draw_figures(report):
        buffer = io.BytesIO()
        drawn.figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        path = Path(run_dir) / PLOTS_DIR / drawn.name
        try:
            atomic_write_bytes(path, buffer.getvalue())
        except OSError as error:
            if describe_os_error(error):  # a full disk, a read-only folder: the machine's, exit 74
                raise
            raise RunDirError(f"{path}: cannot be written ({error.strerror or error}); check the folder") from None
        written.append((path, drawn.shows))
    return written


def _rows(report: Report) -> list[dict[str, Any]]:
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


def _finished(report: Report) -> list[dict[str, Any]]:
    return [row for row in _rows(report) if row["status"] == "FINISHED"]


def _series(rows: list[dict[str, Any]], x: str, ignore: set[str]) -> dict[tuple, list[dict[str, Any]]]:
    """Rows grouped into lines: one per combination of the parameters that vary, except ``x`` and ``ignore``."""
    names = [name for name in varying(rows) if name != x and name not in ignore]
    lines: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = tuple((name, row["parameters"].get(name)) for name in names)
        lines.setdefault(key, []).append(row)
    return dict(sorted(lines.items(), key=lambda item: _sort_key(item[0])))


def _sort_key(key: tuple) -> tuple:
    return tuple((0, value, "") if is_number(value) else (1, 0, repr(value)) for _, value in key)


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


LEGEND_NAMES = {"nodes": "graph size", "edge_probability": "edge probability"}


def _legend_title(key: tuple) -> str:
    """What the lines of a panel stand for: the names of the parameters that tell them apart."""
    return ", ".join(LEGEND_NAMES.get(name, name) for name, _ in key)


def approximation_ratio_vs_depth(report: Report) -> tuple[Any, str] | None:
    """MaxCut with QAOA: expected cut ratio, then approximation ratio, against the QAOA depth p.

    The expected cut ratio (mean sampled cut / optimum) leads: on small graphs the best of a
    thousand samples is nearly always optimal, so the approximation ratio is a flat 1.0 and says
    little. One line per value of the other varying parameters (graph size first); graph seeds and
    sampler seeds are averaged over.
    """
    rows = [
        row
        for row in _finished(report)
        if is_number(row["metrics"].get("approximation_ratio")) and is_number(row["parameters"].get("p"))
    ]
    if not rows:
        return None
    panels = []
    if any(is_number(row["metrics"].get("expected_cut_ratio")) for row in rows):
        panels.append(("expected_cut_ratio", "expected cut ratio\n(mean sampled cut / optimal cut)"))
    panels.append(("approximation_ratio", "approximation ratio\n(best sampled cut / optimal cut)"))
    figure = _figure(5.2 * len(panels), 4.4)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    lines = _series(rows, "p", ignore={"graph_seed", "seed"})
    counts: list[int] = []
    for axis, (metric, label) in zip(axes, panels, strict=True):
        for index, (key, line_rows) in enumerate(lines.items()):
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
        values = [row["metrics"][metric] for row in rows if is_number(row["metrics"].get(metric))]
        axis.set_xlabel("QAOA depth p (layers)")
        axis.set_ylabel(label)
        axis.set_xticks(sorted({row["parameters"]["p"] for row in rows}))
        axis.set_ylim(max(0.0, min([*values, 1.0]) - 0.1), 1.04)
        axis.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
        axis.grid(alpha=0.3)
        if values and all(value == 1.0 for value in values):
            axis.text(
                0.5,
                0.5,
                "1.0 in every stack: the best sample\nalways hit the optimum",
                transform=axis.transAxes,
                ha="center",
                fontsize="small",
                color="dimgray",
            )
        if len(lines) > 1 or next(iter(lines)):
            axis.legend(title=_legend_title(next(iter(lines))), fontsize="small", loc="lower left")
    figure.suptitle("MaxCut with QAOA: expected cut ratio and approximation ratio vs QAOA depth")
    seeds = len({row["parameters"].get("graph_seed") for row in rows}) > 1
    what = "repetitions and graph seeds" if seeds else "repetitions"
    figure.supxlabel(_repetition_note(counts, what), fontsize="small", color="dimgray")
    return (
        figure,
        "MaxCut approximation ratios vs QAOA depth p: expected cut ratio (mean sampled cut / optimum), then "
        "approximation ratio (best sampled cut / optimum), one line per graph size",
    )


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


def job_timeline(report: Report) -> tuple[Any, str] | None:
    """Every job as a bar: waiting in the queue, then running, on a time axis from the first submission.

    A job still pending when the report is made is drawn up to now, hatched with a dark outline; the
    legend names each colour and, when there is one, the hatching.
    """
    from matplotlib.patches import Patch

    now = datetime.now(UTC)
    placed = []
    for row in _rows(report):
        run = row["parameters"].get(RUN)
        for job in row["jobs"]:
            bars = _job_bars(job, now)
            if bars is not None:
                placed.append((job, *bars, run))
    if not placed:
        return None
    placed.sort(key=lambda entry: (entry[1], entry[2]))
    total = len(placed)
    placed = placed[:MAX_JOBS_SHOWN]
    origin: dict[str, datetime] = {}
    for _, clock, submitted, _, _ in placed:
        origin[clock] = min(origin.get(clock, submitted), submitted)
    figure = _figure(8.0, min(2.0 + 0.28 * len(placed), 60.0))
    axis = figure.subplots()
    colours = {"queue": QUEUE_COLOUR, "run": RUN_COLOUR, "observed": OBSERVED_COLOUR}
    used: dict[str, bool] = {}  # kind -> whether any of its bars ended (not pending)
    any_pending = False
    for position, (job, clock, _, segments, _) in enumerate(placed):
        durations = []
        for start, end, kind, pending in segments:
            left = (start - origin[clock]).total_seconds()
            width = interval(start, end).seconds
            axis.barh(
                position,
                width or 0.0,
                left=left,
                height=0.6,
                facecolor=colours[kind],
                alpha=0.55 if pending else 1.0,
                hatch="//" if pending else None,
                edgecolor=PENDING_EDGE if pending else colours[kind],
                linewidth=0.8,
            )
            used[kind] = used.get(kind, False) or not pending
            any_pending = any_pending or pending
            name = "turnaround" if kind == "observed" else kind
            so_far = " so far" if pending else ""
            durations.append(
                f"{name} unknown (stamps out of order)" if width is None else f"{name} {_duration(width)}{so_far}"
            )
        status = "" if job.get("status") == "DONE" else f" · {job.get('status')}"
        end = (segments[-1][1] - origin[clock]).total_seconds()
        axis.text(end, position, "  " + ", ".join(durations) + status, va="center", fontsize="x-small")
    labels = {
        "queue": "waiting in the queue (service's clock)",
        "run": "running (service's clock)",
        "observed": "submitted → seen finished by polling\n(quark's clock; no service times saved)",
    }
    if used.get("observed") is False:  # every such bar is still pending: none was seen finished
        labels["observed"] = "submitted, not seen finished yet\n(quark's clock; no service times saved)"
    if not any(clock == "quark" for _, clock, *_ in placed):
        labels.update(queue="waiting in the queue", run="running")
    handles = [Patch(facecolor=colours[kind], label=labels[kind]) for kind in colours if kind in used]
    if any_pending:
        handles.append(
            Patch(
                facecolor="white",
                edgecolor=PENDING_EDGE,
                hatch="//",
                label=f"hatched: still pending at {now.astimezone().strftime('%H:%M:%S')}\n(drawn up to then)",
            )
        )
    axis.set_yticks(range(len(placed)))
    axis.set_yticklabels([_job_label(job, run) for job, *_, run in placed], fontsize="small")
    axis.invert_yaxis()
    axis.set_xlabel("time since the first submission (s)")
    axis.set_xlim(0, max(axis.get_xlim()[1], 1e-3) * 1.3)  # room for the labels right of the bars
    shown = f" (first {len(placed)} of {total})" if total > len(placed) else ""
    axis.set_title(f"Jobs{shown}: queue wait and run time")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    clocks = "service timestamps" if "observed" not in used else "quark's own clock where the backend saves no times"
    pending_text = "; jobs still pending hatched, drawn up to now" if any_pending else ""
    return figure, f"every job as a bar on a time axis: queue wait, then run time ({clocks}){pending_text}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _job_label(job: dict[str, Any], run: str | None = None) -> str:
    module = str(job.get("module") or "").rsplit(".", 1)[-1]
    attempt = f" (attempt {job['attempt']})" if job.get("attempt", 1) > 1 else ""
    prefix = f"{run}: " if run else ""
    return f"{prefix}{stack_of(str(job.get('key', '')))} {module}{attempt}"


def module_times(report: Report) -> tuple[Any, str] | None:
    """Where a stack's time goes: the mean time of each module, stacked, grouped by each varying parameter.

    One panel per parameter that varies (at most ``MAX_PANELS``, each with at most
    ``MAX_BARS_PER_PANEL`` values): a bar per value of the parameter, the mean over every finished
    stack with that value. So a run of a hundred backlog items still gives a few readable bars.
    """
    rows = [row for row in _finished(report) if any(is_number(t) for t in row["module_times_s"].values())]
    if not rows:
        return None
    modules = list(dict.fromkeys(name for row in rows for name in row["module_times_s"]))
    names = [
        name for name in varying(rows) if len({repr(r["parameters"].get(name)) for r in rows}) <= MAX_BARS_PER_PANEL
    ]
    skipped = [name for name in varying(rows) if name not in names]
    names = names[:MAX_PANELS]
    groups: list[tuple[str, list[tuple[str, list[dict[str, Any]]]]]] = []
    for name in names:
        by_value: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(rows, key=lambda r: _sort_key(((name, r["parameters"].get(name)),))):
            by_value.setdefault(str(row["parameters"].get(name)), []).append(row)
        groups.append((f"by {name}", [(f"{name}={value}", group) for value, group in by_value.items()]))
    if not groups:
        groups = [("all stacks", [("all stacks", rows)])]
    heights = [len(bars) for _, bars in groups]
    figure = _figure(8.0, min(1.6 + sum(0.32 * h + 0.9 for h in heights), 40.0))
    axes = figure.subplots(len(groups), 1, squeeze=False, sharex=True, height_ratios=[h + 1.5 for h in heights])
    for axis, (title, bars) in zip(axes[:, 0], groups, strict=True):
        left = [0.0] * len(bars)
        for index, module in enumerate(modules):
            widths = []
            for _, group in bars:
                mean = stats([row["module_times_s"].get(module) for row in group])["mean"]
                widths.append(mean or 0.0)
            axis.barh(
                range(len(bars)),
                widths,
                left=left,
                height=0.6,
                color=MODULE_COLOURS[index % len(MODULE_COLOURS)],
                label=module,
            )
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for position, (total, (_, group)) in enumerate(zip(left, bars, strict=True)):
            axis.text(total, position, f"  {_duration(total)} (n={len(group)})", va="center", fontsize="x-small")
        axis.set_yticks(range(len(bars)))
        axis.set_yticklabels([label for label, _ in bars], fontsize="small")
        axis.invert_yaxis()
        axis.set_title(title, fontsize="medium", loc="left")
        axis.set_xlabel("mean time per stack (s)")
        axis.grid(axis="x", alpha=0.3)
    axes[0, 0].legend(title="module", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[0, 0].set_xlim(0, max(axes[0, 0].get_xlim()[1], 1e-6) * 1.25)  # room for the totals
    figure.suptitle("Where the time goes: mean time of each module per stack")
    note = (
        "pre- plus postprocessing, mean over the finished stacks with that value (n); an async module's time is "
        "its submit and collect (in 'quark run' also its wait); one-time imports are not counted"
    )
    if skipped:
        note += f"; not drawn (too many values): {', '.join(skipped)}"
    figure.supxlabel(note, fontsize="x-small", color="dimgray", wrap=True)
    by = ", ".join(names) if names else "all stacks"
    return figure, f"mean time of each module (pre + postprocessing) per stack, stacked, grouped by {by}"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "metric"


def _varying_metrics(rows: list[dict[str, Any]]) -> list[str]:
    """Numeric metrics with more than one value over ``rows``, application's first; a metric that only
    repeats its own parameter (``shots``) is left out."""
    names = list(
        dict.fromkeys(
            [n for row in rows for n in row["headline_metrics"]] + [n for row in rows for n in row["metrics"]]
        )
    )
    chosen = []
    for name in names:
        values = [row["metrics"].get(name) for row in rows]
        numbers = {value for value in values if is_number(value)}
        if len(numbers) < 2:
            continue
        if all(row["metrics"].get(name) == row["parameters"].get(name) for row in rows if name in row["metrics"]):
            continue
        chosen.append(name)
    return chosen


#: The pseudo-parameter that tells apart the branches of a config (module chains below a common start).
BRANCH = "branch"


def _by_branch(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows``, each with a ``branch`` parameter (its modules after the part all chains share) when chains differ."""
    chains = {tuple(row.get("modules") or ()) for row in rows}
    if len(chains) < 2:
        return rows
    common = 0
    while all(len(chain) > common for chain in chains) and len({chain[common] for chain in chains}) == 1:
        common += 1
    return [
        {**row, "parameters": {**row["parameters"], BRANCH: " → ".join((row.get("modules") or [])[common:])}}
        for row in rows
    ]


def metric_figures(report: Report) -> list[Drawn]:
    """For each numeric metric that varies across finished stacks: the metric against each varying parameter.

    Any application's, at any module level. A panel per varying parameter (numeric on a numeric
    axis, others as categories); a line per combination of the other varying parameters (``run``
    among them when several runs are drawn); points are the mean over repetitions with the sample
    standard deviation as error bars. Without a varying parameter the metric is drawn per repetition.
    """
    rows = _by_branch(_finished(report))
    if not rows:
        return []
    shared = set.intersection(*(set(row["parameters"]) for row in rows))
    parameters = [name for name in varying(rows) if name in shared]
    ignore = set(varying(rows)) - shared  # a branch's own parameters: the branch tells those lines apart
    axes_of = [name for name in parameters if name not in (RUN, BRANCH)][:MAX_PANELS]
    drawn = []
    for metric in _varying_metrics(rows):
        having = [row for row in rows if is_number(row["metrics"].get(metric))]
        xs = [name for name in axes_of if len({repr(row["parameters"].get(name)) for row in having}) > 1]
        fallback = not xs
        if fallback:  # nothing varies but the repetition
            having = [{**row, "parameters": {**row["parameters"], "repetition": row["repetition"]}} for row in having]
            xs = ["repetition"]
        columns = min(len(xs), 3)
        figure = _figure(5.0 * columns, 4.0 * math.ceil(len(xs) / columns) + 0.4)
        axes = figure.subplots(math.ceil(len(xs) / columns), columns, squeeze=False).flatten()
        counts: list[int] = []
        others = []
        for axis, x in zip(axes, xs, strict=False):
            lines = _series(having, x, ignore=ignore)
            others = [name for name, _ in next(iter(lines))]
            counts.extend(_metric_panel(axis, lines, x, metric))
            axis.set_xlabel(x)
            axis.set_ylabel(metric)
            axis.set_title(f"{metric} vs {x}", fontsize="medium")
            axis.grid(alpha=0.3)
            if others:
                axis.legend(
                    title=", ".join(others),
                    fontsize="x-small",
                    title_fontsize="small",
                    ncol=2 if len(lines) > MAX_LINES else 1,
                )
        for axis in axes[len(xs) :]:
            axis.set_visible(False)
        figure.suptitle(f"{metric} against the parameters that vary")
        note = "points: each stack's value" if fallback else _repetition_note(counts, "repetitions")
        figure.supxlabel(note, fontsize="small", color="dimgray")
        lines_text = ", one line per value of the other varying parameter(s)" if len(xs) > 1 or others else ""
        lines_text = "" if fallback else lines_text
        averaged = "per repetition" if fallback else "mean ± std over repetitions"
        drawn.append(
            Drawn(f"metric_{_safe_name(metric)}.png", figure, f"{metric} vs {', '.join(xs)}, {averaged}{lines_text}")
        )
    return drawn


def _metric_panel(axis: Any, lines: dict[tuple, list[dict[str, Any]]], x: str, metric: str) -> list[int]:
    """Draw one line per entry of ``lines`` (mean ± std of ``metric`` per value of ``x``); the counts per point."""
    values = {row["parameters"].get(x) for group in lines.values() for row in group}
    numeric = all(is_number(value) for value in values)
    categories = sorted(values, key=lambda v: _sort_key(((x, v),)))
    position = {repr(value): index for index, value in enumerate(categories)}
    spread = (max(values) - min(values)) if numeric and values else len(categories)
    counts = []
    for index, (key, group) in enumerate(lines.items()):
        by_x: dict[str, list[float]] = {}
        for row in group:
            by_x.setdefault(repr(row["parameters"].get(x)), []).append(row["metrics"][metric])
        points = sorted(by_x, key=lambda text: position[text])
        summaries = [stats(by_x[text]) for text in points]
        dodge = (index - (len(lines) - 1) / 2) * 0.012 * (spread or 1)
        where = [
            (categories[position[text]] if numeric else position[text]) + (dodge if len(lines) > 1 else 0)
            for text in points
        ]
        axis.errorbar(
            where,
            [entry["mean"] for entry in summaries],
            yerr=[entry["std"] or 0.0 for entry in summaries],
            marker="o",
            capsize=3,
            label=", ".join(f"{name}={value}" for name, value in key) or "all stacks",
        )
        counts.extend(entry["n"] for entry in summaries)
    if numeric and len(categories) <= 12:
        axis.set_xticks(categories)
    elif not numeric:
        axis.set_xticks(range(len(categories)))
        axis.set_xticklabels([str(value) for value in categories], fontsize="small")
    return counts


FIGURES: list[tuple[str, Callable[[dict[str, Any]], tuple[Any, str] | None]]] = [
    ("approximation_ratio_vs_depth.png", approximation_ratio_vs_depth),
    ("ghz_population_vs_qubits.png", ghz_population_vs_qubits),
    ("job_timeline.png", job_timeline),
    ("module_times.png", module_times),
]
