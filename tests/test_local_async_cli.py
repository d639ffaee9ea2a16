"""The embedded default backend through the CLI, as a user runs it in real processes.

Stories: ``quark submit`` returns while circuits run detached; they finish with no quark process
alive; ``quark collect`` completes the run with the same metrics as ``quark run``; the README's cron
line collects a run under cron's bare environment and is silent when nothing changed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_local_jobs import kill_processes_of, processes_of

REPO = Path(__file__).resolve().parents[1]
WAIT = 90.0


@pytest.fixture
def runs_root(tmp_path):
    root = tmp_path / "quark-runs"
    root.mkdir()
    yield root
    for jobs in root.glob("*/jobs"):
        kill_processes_of(jobs.resolve())


def job_states(run: Path) -> list[str]:
    return [json.loads(p.read_text())["state"] for p in sorted(run.glob("jobs/*/local.json"))]


def wait_until_done(run: Path) -> None:
    deadline = time.monotonic() + WAIT
    while set(job_states(run)) != {"done"}:
        assert time.monotonic() < deadline, job_states(run)
        assert "failed" not in job_states(run)
        time.sleep(0.2)
    deadline = time.monotonic() + WAIT
    while processes_of((run / "jobs").resolve()):
        assert time.monotonic() < deadline, "the runner exits once its queue is empty"
        time.sleep(0.2)


def metrics(run: Path) -> list[dict]:
    keep = ("population", "p_all_zero", "p_all_one", "circuit_depth", "best_cut", "approximation_ratio")
    records = json.loads((run / "results.json").read_text())
    return [{k: r["module"][k] for k in keep if k in r["module"]} for r in records]


def test_submit_returns_at_once_jobs_finish_alone_and_collect_completes(quark_process, runs_root, tmp_path):
    run = runs_root / "ghz"
    started = time.perf_counter()
    submitted = quark_process("submit", REPO / "configs/ghz-async.yml", "-o", run)
    elapsed = time.perf_counter() - started
    assert submitted.returncode == 3, submitted.stderr
    assert submitted.stdout.strip() == str(run)
    assert len(job_states(run)) == 4
    assert elapsed < 15, f"submit took {elapsed:.1f}s (it must not wait for the circuits)"

    wait_until_done(run)
    status = json.loads(quark_process("status", run, "--json").stdout)
    assert status["job_totals"] == {"SUBMITTED": 4}, "no quark process polled yet: the run dir still says submitted"

    collected = quark_process("collect", run)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert quark_process("status", run).returncode == 0

    sequential = quark_process("run", REPO / "configs/ghz.yml", "-o", tmp_path / "sync")
    assert sequential.returncode == 0, sequential.stderr
    assert metrics(run) == metrics(tmp_path / "sync")
    assert {m["population"] for m in metrics(run)} == {1.0}


def test_quark_run_on_the_local_async_backend_waits_and_finishes(quark_process, runs_root, write_config):
    config = write_config(
        """
        application:
          name: MaxCut
          config: {nodes: [4], graph_seed: [2]}
          submodules:
            - name: QAOA
              config: {p: [1], optimizer: [fixed]}
              submodules: [{name: LocalAsyncSampler, config: {shots: [300], seed: [5], workers: [1]}}]
        repetitions: 2
        """
    )
    run = runs_root / "maxcut"
    done = quark_process("run", config, "-o", run)
    assert done.returncode == 0, done.stderr
    assert [r["quark_job_status"] for r in json.loads((run / "results.json").read_text())] == ["FINISHED"] * 2
    assert all(0 < m["approximation_ratio"] <= 1 for m in metrics(run))


def crontab_command() -> str:
    """The command part of the crontab line the README gives, exactly."""
    readme = (REPO / "README.md").read_text()
    (line,) = re.findall(r"^\*/10 \* \* \* \* (.+)$", readme, flags=re.MULTILINE)
    return line


def test_the_readme_crontab_line_collects_under_crons_environment(quark_process, runs_root, tmp_path):
    home = runs_root.parent
    (home / "quark-cli").symlink_to(REPO)
    bin_dir = REPO / ".venv" / "bin"
    if Path(sys.executable).parent != bin_dir:
        pytest.skip("the README's cron line names the project's .venv; this test runs from another interpreter")
    run = runs_root / "ghz"
    assert quark_process("submit", REPO / "configs/ghz-async.yml", "-o", run).returncode == 3
    wait_until_done(run)

    cron_env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "SHELL": "/bin/sh", "LOGNAME": "root"}

    def cron() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["/bin/sh", "-c", crontab_command()],
            env=cron_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = cron()
    assert first.returncode == 0, first.stdout + first.stderr
    assert str(run) in first.stdout and "4 finished" in first.stdout
    assert "\x1b[" not in first.stdout + first.stderr, "no colour codes without a terminal"
    assert json.loads((run / "results.json").read_text())[0]["quark_job_status"] == "FINISHED"

    again = cron()
    assert again.returncode == 0
    assert again.stdout == "" and again.stderr == "", "silent when nothing changed"
