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
from pathlib import Path
from typing import Any

from quark_cli.atomic import atomic_write_bytes
from quark_cli.errors import RunDirError, describe_os_error
from quark_cli.plot_jobs import job_timeline, module_times
from quark_cli.plot_parts import (
    MAX_LINES,
    MAX_PANELS,
    RUN,
    Drawn,
    Report,
    finished_rows,
    legend_title,
    line_groups,
    line_label,
    mean_points,
    new_figure,
    repetition_note,
    sort_key,
)
from quark_cli.report import is_number, stats, varying

PLOTS_DIR = "plots"


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


def write_plots(
    report: Report, run_dir: Path, not_drawn: list[tuple[str, str]] | None = None
) -> list[tuple[Path, str]]:
    """Draw every figure the run has data for into ``run_dir/plots/``; ``(path, what it shows)`` per PNG.

    ``report`` is ``build_report``'s document, or a list of them to draw several runs together. A
    figure matplotlib cannot lay out (values near the largest float, 1.8e308, whose axis range
    overflows) is left out: ``(its file name, why)`` goes to ``not_drawn``, and the others are drawn.
    """
    written = []
    for drawn in draw_figures(report):
        buffer = io.BytesIO()
        try:
            drawn.figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        except (ValueError, OverflowError) as error:
            if not_drawn is not None:
                not_drawn.append((drawn.name, f"{type(error).__name__}: {error}"))
            continue
        path = Path(run_dir) / PLOTS_DIR / drawn.name
        try:
            atomic_write_bytes(path, buffer.getvalue())
        except OSError as error:
            if describe_os_error(error):  # a full disk, a read-only folder: the machine's, exit 74
                raise
            raise RunDirError(f"{path}: cannot be written ({error.strerror or error}); check the folder") from None
        written.append((path, drawn.shows))
    return written


def approximation_ratio_vs_depth(report: Report) -> tuple[Any, str] | None:
    """MaxCut with QAOA: expected cut ratio, then approximation ratio, against the QAOA depth p.

    The expected cut ratio (mean sampled cut / optimum) leads: on small graphs the best of a
    thousand samples is nearly always optimal, so the approximation ratio is a flat 1.0 and says
    little. One line per value of the other varying parameters (graph size first); graph seeds and
    sampler seeds are averaged over.
    """
    rows = [
        row
        for row in finished_rows(report)
        if is_number(row["metrics"].get("approximation_ratio")) and is_number(row["parameters"].get("p"))
    ]
    if not rows:
        return None
    panels = []
    if any(is_number(row["metrics"].get("expected_cut_ratio")) for row in rows):
        panels.append(("expected_cut_ratio", "expected cut ratio\n(mean sampled cut / optimal cut)"))
    panels.append(("approximation_ratio", "approximation ratio\n(best sampled cut / optimal cut)"))
    figure = new_figure(5.2 * len(panels), 4.4)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    lines = line_groups(rows, "p", ignore={"graph_seed", "seed"})
    counts: list[int] = []
    for axis, (metric, label) in zip(axes, panels, strict=True):
        for index, (key, line_rows) in enumerate(lines.items()):
            xs, means, stds, ns = mean_points(line_rows, "p", metric)
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
                label=line_label(key, "nodes", "nodes"),
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
            axis.legend(title=legend_title(next(iter(lines))), fontsize="small", loc="lower left")
    figure.suptitle("MaxCut with QAOA: expected cut ratio and approximation ratio vs QAOA depth")
    seeds = len({row["parameters"].get("graph_seed") for row in rows}) > 1
    what = "repetitions and graph seeds" if seeds else "repetitions"
    figure.supxlabel(repetition_note(counts, what), fontsize="small", color="dimgray")
    return (
        figure,
        "MaxCut approximation ratios vs QAOA depth p: expected cut ratio (mean sampled cut / optimum), then "
        "approximation ratio (best sampled cut / optimum), one line per graph size",
    )


def ghz_population_vs_qubits(report: dict[str, Any]) -> tuple[Any, str] | None:
    """GHZ: the population of |0…0> and |1…1> (the fidelity proxy) against the number of qubits."""
    rows = [
        row
        for row in finished_rows(report)
        if is_number(row["metrics"].get("population")) and is_number(row["parameters"].get("n_qubits"))
    ]
    if not rows:
        return None
    figure = new_figure(6.4, 4.4)
    axis = figure.subplots()
    counts: list[int] = []
    lines = line_groups(rows, "n_qubits", ignore={"seed"})
    for key, line_rows in sorted(lines.items(), key=lambda item: repr(item[0])):
        suffix = f" ({line_label(key)})" if key else ""
        for metric, label, style in (
            ("population", "P(|0…0⟩) + P(|1…1⟩)", "-o"),
            ("p_all_zero", "P(|0…0⟩)", "--s"),
            ("p_all_one", "P(|1…1⟩)", "--^"),
        ):
            xs, means, stds, ns = mean_points(line_rows, "n_qubits", metric)
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
    figure.supxlabel(repetition_note(counts, "repetitions"), fontsize="small", color="dimgray")
    return figure, "GHZ population P(|0…0⟩)+P(|1…1⟩) and each outcome's probability vs number of qubits"


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
    rows = _by_branch(finished_rows(report))
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
        figure = new_figure(5.0 * columns, 4.0 * math.ceil(len(xs) / columns) + 0.4)
        axes = figure.subplots(math.ceil(len(xs) / columns), columns, squeeze=False).flatten()
        counts: list[int] = []
        others = []
        for axis, x in zip(axes, xs, strict=False):
            lines = line_groups(having, x, ignore=ignore)
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
        note = "points: each stack's value" if fallback else repetition_note(counts, "repetitions")
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
    categories = sorted(values, key=lambda v: sort_key(((x, v),)))
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
