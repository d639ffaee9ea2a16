"""``quark report``: what a researcher reads after a run, in every format, and the figures.

Stories: repetitions that differ are averaged with the right mean and sample std; failed and
pending stacks are shown but not averaged; every format carries the same numbers; jobs on the local
backend show their queue wait and run time from the service's timestamps; --plots draws labelled
figures of the shipped examples, and only the ones the run has data for.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import textwrap
from pathlib import Path

import pytest
from test_local_async_cli import runs_root  # noqa: F401 - fixture: kills the local workers of runs under it
from toy_modules import fail_job

from quark_cli.plots import approximation_ratio_vs_depth, ghz_population_vs_qubits, job_timeline, module_times
from quark_cli.report import build_report

REPO = Path(__file__).resolve().parents[1]

# An application whose result depends on the repetition, so that mean and std mean something.
NOISY_MODULE = '''
from quark_cli import Core


class Noisy(Core):
    """value = scale * repetition; the toy stands in for a measurement that varies between repetitions."""

    def get_parameter_options(self):
        return {"scale": {"values": [1, 10], "default": 1, "description": "multiplier"}}

    def postprocess(self, data, config, **kwargs):
        self.metrics.add_metric_batch({"value": config["scale"] * kwargs["rep_count"], "label": "x"})
        return data, 0.0
'''


@pytest.fixture
def noisy_run(quark, tmp_path):
    (tmp_path / "noisy_module.py").write_text(NOISY_MODULE)
    config = tmp_path / "noisy.yml"
    config.write_text("application:\n  module: noisy_module:Noisy\n  config: {scale: [1, 10]}\nrepetitions: 3\n")
    run = tmp_path / "noisy-run"
    assert quark("run", config, "-o", run, "--quiet").exit_code == 0
    return run


def test_repetitions_are_averaged_with_mean_and_sample_std(quark, noisy_run):
    report = json.loads(quark("report", noisy_run, "--json").stdout)
    assert [(r["stack"], r["metrics"]["value"]) for r in report["rows"]] == [
        ("000-r1", 1),
        ("000-r2", 2),
        ("000-r3", 3),
        ("001-r1", 10),
        ("001-r2", 20),
        ("001-r3", 30),
    ]
    first, second = report["items"]
    assert first["metrics"]["value"] == {"mean": 2.0, "std": 1.0, "n": 3, "missing": 0}
    assert second["metrics"]["value"] == {"mean": 20.0, "std": 10.0, "n": 3, "missing": 0}
    assert "label" not in first["metrics"], "only numbers are averaged"
    times = [r["time_s"] for r in report["rows"][:3]]
    assert first["time_s"]["mean"] == pytest.approx(statistics.fmean(times))
    assert first["time_s"]["std"] == pytest.approx(statistics.stdev(times))
    assert report["stack_totals"] == {"total": 6, "FINISHED": 6, "INTERRUPTED": 0, "FAILED": 0, "NOT_STARTED": 0}


def test_every_format_shows_the_same_numbers(quark, noisy_run):
    table = quark("report", noisy_run)
    assert table.exit_code == 0
    assert "Noisy: per repetition" in table.stdout and "Noisy: mean ± std over repetitions" in table.stdout
    assert "20 ± 10" in table.stdout and "2 ± 1" in table.stdout

    markdown = quark("report", noisy_run, "--format", "markdown").stdout
    assert "| item | scale | finished | value | time (s) |" in markdown
    assert "| 1 | 10 | 3/3 | 20 ± 10 |" in markdown
    assert "| 001-r3 | 10 | 30 |" in markdown

    rows = list(csv.DictReader(io.StringIO(quark("report", noisy_run, "--format", "csv").stdout)))
    assert [(r["stack"], r["scale"], r["value"], r["label"]) for r in rows][-1] == ("001-r3", "10", "30", "x")
    assert all(float(r["time_s"]) >= 0 for r in rows)

    items = list(csv.DictReader(io.StringIO(quark("report", noisy_run, "-f", "csv", "--aggregated").stdout)))
    assert [(i["scale"], i["value_mean"], i["value_std"], i["finished"]) for i in items] == [
        ("1", "2.0", "1.0", "3"),
        ("10", "20.0", "10.0", "3"),
    ]
    aggregated = quark("report", noisy_run, "--aggregated").stdout
    assert "per repetition" not in aggregated and "20 ± 10" in aggregated


EXTREME_MODULE = """
from quark_cli import Core


class Extreme(Core):
    \"\"\"Values at the edge of what a record holds: near the largest float, and an integer of 4,000 digits.\"\"\"

    def get_parameter_options(self):
        return {"sign": {"values": [1, -1], "default": 1, "description": "sign of the second repetition"}}

    def postprocess(self, data, config, **kwargs):
        energy = 1.7e308 if kwargs["rep_count"] == 1 else config["sign"] * 1.7e308
        self.metrics.add_metric_batch({"energy": energy, "digits": 10**3999})
        return data, 0.0
"""


def test_values_near_the_largest_float_are_reported_not_a_crash(quark, write_config, tmp_path):
    """1.7e308 twice averages to 1.7e308 (a running sum would overflow); 1.7e308 and -1.7e308 have a
    standard deviation past the largest float (inf in the table, null in JSON); an integer of 4,000
    digits is a record's value, shown as it is and not averaged; a figure that cannot lay such values
    out is left out with a warning, and the html report is written all the same."""
    (tmp_path / "extreme_module.py").write_text(EXTREME_MODULE)
    config = write_config("application:\n  module: extreme_module:Extreme\n  config: {sign: [1, -1]}\nrepetitions: 2\n")
    run = tmp_path / "run"
    assert quark("run", config, "-o", run, "--quiet").exit_code == 0
    report = quark("report", run, "--json")
    assert report.exit_code == 0, report.stderr
    document = json.loads(report.stdout)
    assert [item["metrics"] for item in document["items"]] == [
        {"energy": {"mean": 1.7e308, "std": 0.0, "n": 2, "missing": 0}},
        {"energy": {"mean": 0.0, "std": None, "n": 2, "missing": 0}},
    ]
    assert {row["metrics"]["digits"] for row in document["rows"]} == {10**3999}
    table = quark("report", run, "--aggregated")
    assert table.exit_code == 0 and "1.7e+308 ± 0" in table.stdout and "0 ± inf" in table.stdout
    html = quark("report", run, "--format", "html")
    assert html.exit_code == 0, html.stderr
    assert "metric_energy.png not drawn: its values are beyond what a figure can show" in html.stderr
    assert (run / "report.html").is_file()


def test_failed_and_pending_stacks_are_listed_but_not_averaged(quark, write_config, tmp_path):
    config = write_config(
        """
        application:
          module: toy_modules:Numbers
          config: {start: [1]}
          submodules: [{name: AsyncSquare}]
        repetitions: 3
        """
    )
    run = tmp_path / "run"
    quark("submit", config, "-o", run)
    jobs = sorted(path.with_suffix("") for path in (run / "jobs").glob("*.json"))
    fail_job(jobs[0], "node crashed")
    from toy_modules import finish_job

    finish_job(jobs[1])
    quark("collect", run)
    report = json.loads(quark("report", run, "--json").stdout)
    assert [(r["stack"], r["status"]) for r in report["rows"]] == [
        ("000-r1", "FAILED"),
        ("000-r2", "FINISHED"),
        ("000-r3", "INTERRUPTED"),
    ]
    assert "node crashed" in report["rows"][0]["error"]
    (item,) = report["items"]
    assert (item["repetitions"], item["finished"], item["failed"]) == (3, 1, 1)
    assert item["metrics"]["total"] == {"mean": 14.0, "std": None, "n": 1, "missing": 0}, "only the finished repetition"
    assert report["rows"][1]["job_ids"] == ["ctl-000-r2-Numbers.AsyncSquare-pre-1"]
    assert report["rows"][1]["jobs"][0]["timing"] == "observed", "this backend saves no service times"
    assert report["rows"][1]["turnaround_s"] >= 0
    text = quark("report", run).stdout
    assert "FAILED: job 000-r1-Numbers.AsyncSquare-pre failed: node crashed" in text
    assert "3 stacks: 1 finished, 1 pending, 1 failed, 0 not started" in text


def test_plots_of_the_shipped_examples_are_labelled_pngs(quark, tmp_path):
    maxcut = shrunk_config(tmp_path, "maxcut.yml", {"nodes": "[4, 5]", "p": "[1, 2]", "optimizer": "[fixed]"})
    ghz = shrunk_config(tmp_path, "ghz.yml", {"n_qubits": "[2, 3, 4]"})
    assert quark("run", maxcut, "-o", tmp_path / "maxcut", "--quiet").exit_code == 0
    assert quark("run", ghz, "-o", tmp_path / "ghz", "--quiet").exit_code == 0

    drawn = quark("report", tmp_path / "maxcut", "--plots")
    assert drawn.exit_code == 0
    plots = tmp_path / "maxcut" / "plots"
    assert sorted(p.name for p in plots.iterdir()) == [
        "approximation_ratio_vs_depth.png",
        "metric_best_cut.png",
        "metric_expected_cut_noiseless.png",
        "metric_expected_cut_ratio.png",
        "metric_n_edges.png",
        "metric_optimal_cut.png",
        "module_times.png",
    ]
    assert f"wrote {plots / 'approximation_ratio_vs_depth.png'}: MaxCut approximation ratio" in drawn.stderr
    ghz_plots = sorted(p.name for p in plots_of(quark, tmp_path / "ghz"))
    built_in = {"ghz_population_vs_qubits.png", "module_times.png"}
    assert built_in <= set(ghz_plots)
    assert all(name.startswith("metric_") for name in set(ghz_plots) - built_in)
    for png in [*plots.iterdir(), *(tmp_path / "ghz" / "plots").iterdir()]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        from matplotlib.image import imread

        height, width, _ = imread(png).shape
        assert width >= 500 and height >= 300, (png.name, width, height)

    figure, _ = approximation_ratio_vs_depth(build_report(tmp_path / "maxcut"))
    left, right = figure.axes
    assert figure.get_suptitle() == "MaxCut with QAOA: expected cut ratio and approximation ratio vs QAOA depth"
    assert left.get_xlabel() == "QAOA depth p (layers)"
    assert "mean sampled cut / optimal cut" in left.get_ylabel()
    assert "best sampled cut / optimal cut" in right.get_ylabel()
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["4 nodes", "5 nodes"]
    assert [tick for tick in left.get_xticks()] == [1, 2]

    figure, _ = ghz_population_vs_qubits(build_report(tmp_path / "ghz"))
    (axis,) = figure.axes
    assert axis.get_xlabel() == "number of qubits n" and axis.get_ylabel() == "probability (fraction of shots)"
    assert "GHZ state" in axis.get_title()
    population = axis.get_lines()[0]
    assert list(population.get_xdata()) == [2, 3, 4] and list(population.get_ydata()) == [1.0, 1.0, 1.0]

    figure, _ = module_times(build_report(tmp_path / "maxcut"))
    assert figure.axes[0].get_xlabel() == "mean time per stack (s)"
    assert job_timeline(build_report(tmp_path / "maxcut")) is None, "a run without jobs has no job figure"


def test_local_jobs_show_queue_wait_and_run_time_in_the_report_and_the_timeline(
    quark_process,
    runs_root,  # noqa: F811
    write_config,
):
    config = write_config(
        """
        application:
          name: GHZ
          config: {n_qubits: [2, 3]}
          submodules:
            - name: GHZCircuit
              submodules: [{name: LocalAsyncSampler, config: {shots: [100], seed: [1], workers: [1]}}]
        repetitions: 1
        """
    )
    run = runs_root / "ghz"
    assert quark_process("submit", config, "-o", run).returncode == 3
    assert quark_process("collect", run, "--wait", "--quiet", "--timeout", "90").returncode == 0
    report = json.loads(quark_process("report", run, "--json").stdout)
    for row in report["rows"]:
        (job,) = row["jobs"]
        assert job["timing"] == "service"
        assert job["service_submitted"] <= job["service_started"] <= job["service_finished"]
        assert job["queue_s"] >= 0 and job["run_s"] > 0
        assert job["turnaround_s"] == pytest.approx(job["queue_s"] + job["run_s"])
        assert row["metrics"]["population"] == 1.0
    table = quark_process("report", run).stdout
    assert "queue (s)" in table and "run (s)" in table

    figure, _ = job_timeline(report)
    (axis,) = figure.axes
    assert axis.get_xlabel() == "time since the first submission (s)"
    assert [t.get_text() for t in axis.get_yticklabels()] == ["000-r1 LocalAsyncSampler", "001-r1 LocalAsyncSampler"]
    bars = [(patch.get_x(), patch.get_width()) for patch in axis.patches]
    first_job = report["rows"][0]["jobs"][0]
    assert bars[0] == (0.0, pytest.approx(first_job["queue_s"]))
    assert bars[1] == (pytest.approx(first_job["queue_s"]), pytest.approx(first_job["run_s"]))
    assert [t.get_text() for t in axis.get_legend().get_texts()] == ["waiting in the queue", "running"]


def test_report_of_a_folder_that_is_not_a_run_is_one_line_exit_2(quark, tmp_path):
    result = quark("report", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path}: not a quark run directory (no run.json); give the folder 'quark submit' printed"
    )
    bad = quark("report", tmp_path, "--format", "xml")
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "error: --format: 'xml' is not a format; choose from table, markdown, csv, json, html"


def test_a_figure_that_cannot_be_written_is_one_line_exit_2(quark, noisy_run):
    (noisy_run / "plots").write_text("a file where the folder should be")
    result = quark("report", noisy_run, "--plots")
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: {noisy_run / 'plots' / 'module_times.png'}: cannot be written (Not a directory); check the folder\n"
    )


def shrunk_config(tmp_path: Path, name: str, values: dict[str, str]) -> Path:
    text = (REPO / "configs" / name).read_text()
    for key, value in values.items():
        lines = [
            line if not line.strip().startswith(f"{key}:") else line.split(":")[0] + f": {value}"
            for line in text.splitlines()
        ]
        text = "\n".join(lines) + "\n"
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def plots_of(quark, run: Path) -> list[Path]:
    assert quark("report", run, "--plots", "--format", "json").exit_code == 0
    return list((run / "plots").iterdir())


def test_jobs_still_waiting_are_drawn_hatched_up_to_now(quark, write_config, tmp_path):
    config = write_config("application:\n  module: toy_modules:Numbers\n  submodules: [{name: AsyncSquare}]\n")
    run = tmp_path / "run"
    quark("submit", config, "-o", run)
    drawn = quark("report", run, "--plots")
    assert drawn.exit_code == 0
    assert sorted(p.name for p in (run / "plots").iterdir()) == ["job_timeline.png"], "nothing finished yet"
    figure, _ = job_timeline(build_report(run))
    (axis,) = figure.axes
    (bar,) = axis.patches
    assert bar.get_hatch() == "//" and bar.get_width() > 0
    legend = [t.get_text() for t in axis.get_legend().get_texts()]
    assert legend[0] == "submitted, not seen finished yet\n(quark's clock; no service times saved)"
    assert legend[1].startswith("hatched: still pending at ") and legend[1].endswith("\n(drawn up to then)")
    assert len(legend) == 2
    assert "SUBMITTED" in [t.get_text() for t in axis.texts][0]


def test_a_report_written_with_o_goes_through_a_link_and_never_replaces_what_is_not_a_file(quark, noisy_run, tmp_path):
    """``-o`` at a link writes the file it names; at a FIFO (a device alike: ``-o /dev/full`` made the
    system's device a plain file) or a folder it is refused, exit 2, and left as it was."""
    import os
    import stat

    real, link = tmp_path / "real.csv", tmp_path / "link.csv"
    real.write_text("old")
    link.symlink_to(real.name)
    assert quark("report", noisy_run, "--format", "csv", "-o", link).exit_code == 0
    assert link.is_symlink() and real.read_text().startswith("stack,")

    fifo, folder = tmp_path / "fifo", tmp_path / "folder"
    os.mkfifo(fifo)
    folder.mkdir()
    for target, what in ((fifo, "is a FIFO, socket or device, not a file"), (folder, "is a folder, not a file")):
        refused = quark("report", noisy_run, "--format", "csv", "-o", target)
        assert refused.exit_code == 2 and refused.stderr == f"error: {target}: {what}; check the path\n"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and folder.is_dir() and not any(folder.iterdir())
