"""What a researcher reads of ``report`` and ``status`` in a terminal of any width, in a log, as CSV and Markdown.

Stories: at 60, 80 and 120 columns every number of the run is printed whole and every header can
be recognised, and nothing is wider than the terminal; piped into a log each record is one line
without box drawing; ``status`` of a synchronous run shows each failed stack's error on one line;
CSV columns are plain snake_case identifiers; ``--format md`` is Markdown, and with ``--plots`` it
links the figures by paths that resolve from where the Markdown is saved.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest
from toy_modules import fail_job

TESTS = Path(__file__).resolve().parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = re.compile(r"[\u2500-\u257f]")
WIDTHS = (60, 80, 120)

# Long metric names, numbers that must stay whole (0.01 and 237 were split at 80 columns), a metric
# that shares its name with a parameter, and a size the solver fails on.
SPECTRUM = '''
from quark_cli import Core


class Spectrum(Core):
    """Stands in for a solver: fixed estimates per size; size 3 makes it fail."""

    def get_parameter_options(self):
        return {
            "size": {"values": [1, 2, 3], "default": 1, "description": "problem size"},
            "shots": {"values": [1500], "default": 1500, "description": "samples"},
        }

    def postprocess(self, data, config, **kwargs):
        if config["size"] == 3:
            raise RuntimeError("solver diverged after 4096 iterations\\nsee the solver log")
        self.metrics.add_metric_batch(
            {
                "p_all_zero_probability_estimate": 0.01,
                "iterations_until_convergence": 237,
                "ground_state_energy": -12.75 * config["size"],
                "approximation_ratio_of_best_cut": 0.9375,
                "shots": 1500,
            }
        )
        return data, 0.0
'''
METRIC_NAMES = [
    "p_all_zero_probability_estimate",
    "iterations_until_convergence",
    "ground_state_energy",
    "approximation_ratio_of_best_cut",
]
PENDING = """
application:
  module: toy_modules:Numbers
  config: {start: [1, 2]}
  submodules: [{name: AsyncSquare}]
repetitions: 2
"""


@pytest.fixture
def spectrum_run(quark, tmp_path, monkeypatch):
    (tmp_path / "spectrum_module.py").write_text(SPECTRUM)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "spectrum.yml"
    config.write_text("application:\n  module: spectrum_module:Spectrum\n  config: {size: [1, 2, 3]}\nrepetitions: 2\n")
    run = tmp_path / "spectrum-run"
    assert quark("run", config, "-o", run, "--quiet").exit_code == 1, "size 3 fails"
    return run


@pytest.fixture
def pending_run(quark, write_config, tmp_path):
    run = tmp_path / "pending-run"
    assert quark("submit", write_config(PENDING), "-o", run).exit_code == 3
    fail_job(sorted((run / "jobs").iterdir())[0], "node 17 crashed after 312 s")
    quark("collect", run)
    return run


def in_terminal(*args: object, columns: int, cwd: Path) -> str:
    """``quark ARGS`` in a pseudo-terminal ``columns`` wide, as a user at a terminal sees it."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": f"{TESTS}{os.pathsep}{cwd}", "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "quark_cli.cli", *map(str, args)],
        stdin=follower,
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        assert ready, "quark did not finish in a terminal"
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    process.wait(timeout=60)
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def shown(value: float | int) -> str:
    """A number as the tables print it (four significant digits)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def assert_whole(number: str, text: str, where: str) -> None:
    assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", text), f"{number} not whole in {where}:\n{text}"


def assert_fits(text: str, width: int) -> None:
    """No line is wider than the terminal, except one word that cannot be split (a long path)."""
    wide = [line for line in text.splitlines() if len(line) > width and " " in line.strip()]
    assert not wide, f"wider than {width} columns:\n" + "\n".join(wide)


def report_numbers(report: dict) -> set[str]:
    numbers = set()
    for row in report["rows"]:
        numbers |= {shown(v) for v in row["parameters"].values() if isinstance(v, int | float)}
        numbers |= {shown(row["metrics"][name]) for name in METRIC_NAMES if name in row["metrics"]}
        numbers.add(shown(row["time_s"]))
    for item in report["items"]:
        numbers |= {shown(stat["mean"]) for stat in item["metrics"].values()}
    return numbers


def test_report_prints_every_number_whole_and_every_header_recognisable_at_any_width(quark, spectrum_run):
    report = json.loads(quark("report", spectrum_run, "--json").stdout)
    numbers = report_numbers(report)
    assert {"0.01", "237", "-12.75", "-25.5", "0.9375", "1500"} <= numbers

    piped = quark("report", spectrum_run).stdout
    outputs = {"piped": piped} | {
        f"{w} columns": in_terminal("report", spectrum_run, columns=w, cwd=spectrum_run.parent) for w in WIDTHS
    }
    for where, text in outputs.items():
        for number in numbers:
            assert_whole(number, text, where)
        for name in METRIC_NAMES:  # whole, or wrapped after an underscore: never cut to "p_al"
            assert all(piece in text for piece in re.split(r"(?<=_)", name)), (name, where, text)
        assert "solver diverged after 4096 iterations" in " ".join(text.split()), where
        assert "6 stacks: 4 finished, 0 pending, 2 failed, 0 not started" in text, where
    for width in WIDTHS:
        assert_fits(outputs[f"{width} columns"], width)
    assert "─" in outputs["120 columns"].split("mean ± std")[0], "room enough for the per-repetition table"

    assert not BOX.search(piped), "a log gets no box drawing"
    for row in report["rows"]:  # one record per line: its stack, parameters, metrics and status together
        wanted = [row["stack"], shown(row["time_s"]), row["status"]]
        wanted += [shown(row["metrics"][n]) for n in METRIC_NAMES if n in row["metrics"]]
        assert any(all(w in line for w in wanted) for line in piped.splitlines()), (wanted, piped)
    failed_line = next(line for line in piped.splitlines() if line.startswith("002-r1"))
    assert "FAILED: Spectrum.postprocess: RuntimeError: solver diverged after 4096 iterations" in failed_line


def test_status_fits_any_width_and_a_log_gets_one_line_per_job(quark, pending_run):
    status = json.loads(quark("status", pending_run, "--json").stdout)
    keys = [job["key"] for job in status["jobs"]]
    ids = [job["id"] for job in status["jobs"]]
    assert len(keys) == 4 and all(ids)

    piped = quark("status", pending_run).stdout
    assert not BOX.search(piped)
    for key, job_id in zip(keys, ids, strict=True):
        (line,) = [line for line in piped.splitlines() if key in line]
        assert job_id in line, "a job is one line in a log: key, module, status, id, age, error"
    assert "node 17 crashed after 312 s" in next(line for line in piped.splitlines() if keys[0] in line)

    for width in WIDTHS:
        text = in_terminal("status", pending_run, columns=width, cwd=pending_run.parent)
        assert_fits(text, width)
        for whole in [*keys, *ids, "312"]:
            assert_whole(whole, text, f"{width} columns")
        assert "SUBMITTED" in text and "FAILED" in text


def test_status_of_a_synchronous_run_shows_each_failed_stacks_error_on_one_line(quark, spectrum_run):
    piped = quark("status", spectrum_run)
    assert piped.exit_code == 1
    lines = piped.stdout.splitlines()
    errors = [line for line in lines if "solver diverged" in line]
    assert [line.split(":")[0].strip() for line in errors] == ["002-r1", "002-r2"]
    assert all(
        line.endswith("RuntimeError: solver diverged after 4096 iterations see the solver log") for line in errors
    )
    assert "stacks: 6 total, 4 finished, 0 pending, 2 failed, 0 not started" in lines

    narrow = in_terminal("status", spectrum_run, columns=60, cwd=spectrum_run.parent).splitlines()
    errors = [line for line in narrow if line.strip().startswith("002-r")]
    assert len(errors) == 2, narrow
    assert all("Spectrum.postprocess: RuntimeError" in line and line.endswith(" …") for line in errors), narrow
    assert all(len(line) <= 60 for line in errors), "shortened to the terminal ('--json' has the whole error)"


def test_csv_headers_are_plain_snake_case_identifiers(quark, spectrum_run):
    rows = list(csv.DictReader(io.StringIO(quark("report", spectrum_run, "--format", "csv").stdout)))
    header = list(rows[0])
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", name) for name in header), header
    assert "shots" in header and "shots_metric" in header, "the parameter and the metric of the same name"
    assert rows[0]["p_all_zero_probability_estimate"] == "0.01" and rows[0]["shots_metric"] == "1500"

    items = list(csv.DictReader(io.StringIO(quark("report", spectrum_run, "-f", "csv", "--aggregated").stdout)))
    header = list(items[0])
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", name) for name in header), header
    assert {"shots_metric_mean", "iterations_until_convergence_mean", "time_s_std"} <= set(header)
    assert items[0]["iterations_until_convergence_mean"] == "237.0"

    from quark_cli.report import identifier  # how a parameter two modules give different values is named

    assert identifier("LocalAsyncSampler.shots") == "local_async_sampler_shots"
    assert identifier("GHZCircuit.n_qubits") == "ghz_circuit_n_qubits"


def test_md_is_markdown_and_plots_are_linked_relative_to_the_file(quark, spectrum_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    markdown = quark("report", spectrum_run, "--format", "markdown").stdout
    assert quark("report", spectrum_run, "--format", "md").stdout == markdown
    assert quark("report", spectrum_run, "-f", "MD").exit_code == 0
    assert "![" not in markdown, "no figures without --plots"

    printed = quark("report", spectrum_run, "--format", "md", "--plots")
    assert printed.exit_code == 0
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", printed.stdout)
    figures = sorted((spectrum_run / "plots").glob("*.png"))
    assert figures and len(links) == len(figures)
    assert all(not Path(link).is_absolute() and (tmp_path / link).resolve() in figures for link in links)

    saved = tmp_path / "notes" / "report.md"
    written = quark("report", spectrum_run, "--format", "markdown", "--plots", "-o", saved)
    assert written.exit_code == 0 and written.stdout == ""
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", saved.read_text())
    assert links and all((saved.parent / link).resolve() in figures for link in links), links
    assert all(link.startswith("../") for link in links)
