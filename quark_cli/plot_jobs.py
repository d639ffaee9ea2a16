"""The figures of a run's jobs: each job's queue wait and run time on a time axis, and where the
time goes (module times by each parameter that varies)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quark_cli.keys import stack_of
from quark_cli.plot_parts import (
    MAX_BARS_PER_PANEL,
    MAX_JOBS_SHOWN,
    MAX_PANELS,
    MODULE_COLOURS,
    OBSERVED_COLOUR,
    PENDING_EDGE,
    QUEUE_COLOUR,
    RUN,
    RUN_COLOUR,
    Report,
    finished_rows,
    new_figure,
    report_rows,
    sort_key,
)
from quark_cli.report import is_number, stats, varying
from quark_cli.stamps import interval, parse_stamp


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
    for row in report_rows(report):
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
    figure = new_figure(8.0, min(2.0 + 0.28 * len(placed), 60.0))
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
    rows = [row for row in finished_rows(report) if any(is_number(t) for t in row["module_times_s"].values())]
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
        for row in sorted(rows, key=lambda r: sort_key(((name, r["parameters"].get(name)),))):
            by_value.setdefault(str(row["parameters"].get(name)), []).append(row)
        groups.append((f"by {name}", [(f"{name}={value}", group) for value, group in by_value.items()]))
    if not groups:
        groups = [("all stacks", [("all stacks", rows)])]
    heights = [len(bars) for _, bars in groups]
    figure = new_figure(8.0, min(1.6 + sum(0.32 * h + 0.9 for h in heights), 40.0))
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
