"""``quark report --plots`` for any application, and the built-in figures telling the truth.

Stories: a researcher's own application gets a figure for each metric that varies, against each
parameter that varies, with mean ± std over repetitions and a line per value of the other
parameter; two runs drawn together get their own lines; MaxCut's figure leads with the metric that
moves; pending jobs are visibly hatched and the legend says so; module times of a hundred backlog
items stay a few readable bars.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib.colors import to_rgba
from matplotlib.image import imread
from test_report import shrunk_config
from toy_modules import finish_job

from quark_cli.plots import approximation_ratio_vs_depth, draw_figures, job_timeline, module_times
from quark_cli.report import build_report

# A user's own application: value = scale * depth + repetition, noise = repetition (a second metric).
MY_APP = '''
from quark_cli import Core


class Growth(Core):
    """A toy measurement that grows with scale and depth and varies between repetitions."""

    def get_parameter_options(self):
        return {
            "scale": {"values": [1, 2, 3], "default": 1, "description": "slope"},
            "depth": {"values": [1, 2], "default": 1, "description": "offset"},
        }

    def postprocess(self, data, config, **kwargs):
        rep = kwargs["rep_count"]
        self.metrics.add_metric_batch(
            {"value": config["scale"] * config["depth"] + rep, "constant": 7, "label": "text"}
        )
        return data, 0.0
'''


@pytest.fixture
def my_app(tmp_path, monkeypatch):
    (tmp_path / "growth_module.py").write_text(MY_APP)
    monkeypatch.syspath_prepend(str(tmp_path))

    def run(quark, name: str, scales: str = "[1, 2, 3]", repetitions: int = 2) -> Path:
        config = tmp_path / f"{name}.yml"
        config.write_text(
            "application:\n  module: growth_module:Growth\n"
            f"  config: {{scale: {scales}, depth: [1, 2]}}\nrepetitions: {repetitions}\n"
        )
        assert quark("run", config, "-o", tmp_path / name, "--quiet").exit_code == 0
        return tmp_path / name

    return run


def test_a_custom_application_gets_a_figure_per_varying_metric(quark, my_app):
    run = my_app(quark, "growth")
    result = quark("report", run, "--plots", "--json")
    assert result.exit_code == 0
    plots = {Path(entry["path"]).name: entry["shows"] for entry in json.loads(result.stdout)["plots"]}
    assert set(plots) == {"module_times.png", "metric_value.png"}, "constant and text metrics get no figure"
    assert plots["metric_value.png"] == (
        "value vs scale, depth, mean ± std over repetitions, one line per value of the other varying parameter(s)"
    )
    png = run / "plots" / "metric_value.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = imread(png).shape
    assert width >= 800 and height >= 300

    (drawn,) = [d for d in draw_figures(build_report(run)) if d.name == "metric_value.png"]
    by_scale, by_depth = drawn.figure.axes
    assert (by_scale.get_xlabel(), by_scale.get_ylabel()) == ("scale", "value")
    assert by_scale.get_legend().get_title().get_text() == "depth"
    assert [t.get_text() for t in by_scale.get_legend().get_texts()] == ["depth=1", "depth=2"]
    assert [t.get_text() for t in by_depth.get_legend().get_texts()] == ["scale=1", "scale=2", "scale=3"]
    # depth=2 line: scale*2 + rep for rep 1 and 2 -> means 3.5, 5.5, 7.5, each std 0.707
    data_line, (low_caps, _), _ = by_scale.containers[1].lines
    assert list(data_line.get_ydata()) == [3.5, 5.5, 7.5]
    assert list(low_caps.get_ydata()) == pytest.approx([3.5 - 0.7071, 5.5 - 0.7071, 7.5 - 0.7071], abs=1e-3)
    assert "mean over 2 repetitions" in drawn.figure.get_supxlabel()


def test_two_runs_drawn_together_have_a_line_each(quark, my_app):
    first = my_app(quark, "first", scales="[1, 2]")
    second = my_app(quark, "second", scales="[1, 2]")
    figures = {d.name: d for d in draw_figures([build_report(first), build_report(second)])}
    by_scale = figures["metric_value.png"].figure.axes[0]
    assert by_scale.get_legend().get_title().get_text() == "depth, run"
    assert [t.get_text() for t in by_scale.get_legend().get_texts()] == [
        "depth=1, run=first",
        "depth=1, run=second",
        "depth=2, run=first",
        "depth=2, run=second",
    ]
    assert len(figures["metric_value.png"].figure.axes) == 2, "the run is a line, not an x axis"


def test_a_metric_that_varies_only_between_repetitions_is_drawn_per_repetition(quark, my_app):
    run = my_app(quark, "single", scales="[2]", repetitions=3)
    report = build_report(run)
    for row in report["rows"]:  # one item: nothing varies but the repetition
        row["parameters"]["depth"] = 1
    (drawn,) = [d for d in draw_figures(report) if d.name == "metric_value.png"]
    (axis,) = drawn.figure.axes
    assert axis.get_xlabel() == "repetition"
    assert drawn.shows == "value vs repetition, per repetition"


def test_maxcut_figure_leads_with_the_expected_cut_ratio_and_names_its_lines(quark, tmp_path):
    config = shrunk_config(
        tmp_path, "maxcut.yml", {"nodes": "[4, 5]", "p": "[1, 2]", "optimizer": "[fixed, COBYLA]", "maxiter": "[10]"}
    )
    assert quark("run", config, "-o", tmp_path / "maxcut", "--quiet").exit_code == 0
    figure, shows = approximation_ratio_vs_depth(build_report(tmp_path / "maxcut"))
    left, right = figure.axes
    assert "mean sampled cut / optimal cut" in left.get_ylabel(), "the informative metric comes first"
    assert "best sampled cut / optimal cut" in right.get_ylabel()
    legend = left.get_legend()
    assert legend.get_title().get_text() == "graph size, optimizer"
    assert [t.get_text() for t in legend.get_texts()] == [
        "4 nodes, optimizer=COBYLA",
        "4 nodes, optimizer=fixed",
        "5 nodes, optimizer=COBYLA",
        "5 nodes, optimizer=fixed",
    ]
    assert shows.startswith("MaxCut approximation ratios vs QAOA depth p: expected cut ratio")


def test_pending_jobs_are_visibly_hatched_and_the_legend_says_what_each_bar_is(quark, write_config, tmp_path):
    config = write_config(
        "application:\n  module: toy_modules:Numbers\n  submodules: [{name: AsyncSquare}]\nrepetitions: 2\n"
    )
    run = tmp_path / "run"
    quark("submit", config, "-o", run)
    finish_job(run / "jobs" / "000-r1-Numbers.AsyncSquare-pre")
    quark("collect", run)
    figure, _ = job_timeline(build_report(run))
    (axis,) = figure.axes
    done, pending = axis.patches[:2]
    assert pending.get_hatch() == "//" and done.get_hatch() is None
    assert to_rgba(pending.get_edgecolor())[:3] != to_rgba(pending.get_facecolor())[:3], "hatch lines show"
    texts = [t.get_text() for t in axis.get_legend().get_texts()]
    assert texts[0].startswith("submitted → seen finished by polling")
    assert texts[1].startswith("hatched: still pending at ")

    # nothing finished yet: no legend entry claims a job was seen finished
    fresh = tmp_path / "fresh"
    quark("submit", config, "-o", fresh)
    figure, _ = job_timeline(build_report(fresh))
    texts = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert texts[0].startswith("submitted, not seen finished yet") and "seen finished by" not in texts[0]


def test_module_times_of_a_hundred_items_stay_a_few_readable_bars():
    report = _many_items_report(120)
    figure, shows = module_times(report)
    assert [axis.get_title(loc="left") for axis in figure.axes] == ["by nodes", "by p"]
    assert [len(axis.get_yticklabels()) for axis in figure.axes] == [10, 12]
    assert shows.endswith("grouped by nodes, p")
    width, height = figure.get_size_inches()
    assert height <= 14, "a page, not a scroll of 120 labels"


def _many_items_report(count: int) -> dict:
    """A report of ``count`` backlog items (10 graph sizes x 12 depths), as build_report shapes it."""
    rows = []
    for index in range(count):
        nodes, p = 4 + index % 10, 1 + index // 10
        rows.append(
            {
                "stack": f"{index:03d}-r1",
                "backlog_item": index,
                "repetition": 1,
                "status": "FINISHED",
                "modules": ["App", "Solver"],
                "parameters": {"nodes": nodes, "p": p},
                "metrics": {"cost": nodes * p},
                "headline_metrics": ["cost"],
                "module_times_s": {"App": 0.001, "Solver": 0.01 * p},
                "jobs": [],
            }
        )
    return {"rows": rows, "items": [], "run_dir": "many"}
