"""``quark cancel``: a researcher stops jobs that should not run, on the service itself.

Stories: on the local backend a queued job never starts and a running one's worker is stopped; on
Qaptiva the service cancels the job; either way the job is recorded CANCELLED and its stack FAILED,
exactly as a job cancelled by the service, and a later collect leaves them be (``--retry-failed``
resubmits). A backend without cancel, an unknown key and a locked run are one-line errors.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_local_jobs import kill_processes_of, pid_alive, read_state
from test_qaptiva_backend import at, server, shipped  # noqa: F401 - server is a fixture
from toy_modules import finish_job

SLOW_MODULES = '''
from quark_cli import AsyncCore, Core
from quark_cli.jobs.local import LocalAsyncJobManager


class Bench(Core):
    """An application whose device job is genuinely slow (23 qubits, 10 layers: 10-15 s)."""

    submodule_options = ["SlowDevice"]

    def get_parameter_options(self):
        return {"size": {"values": [1, 2], "default": 1, "description": "label only"}}

    def get_default_submodule(self, option):
        return SlowDevice()


class SlowDevice(AsyncCore):
    JobManager = LocalAsyncJobManager

    def __init__(self, name=None):
        AsyncCore.__init__(self, interruptable="PRE", name=name)

    def get_parameter_options(self):
        return {"workers": {"values": [1], "default": 1, "description": "one job at a time"}}

    def submit_preprocess(self, data, config, **kwargs):
        from test_local_jobs import slow_job

        return self.job_manager.submit(slow_job())
'''


def jobs(run: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(run.glob("jobs/*.json"))}


def records(run: Path) -> dict[str, dict]:
    return {r["stack"]: r for r in json.loads((run / "results.json").read_text())}


@pytest.fixture
def slow_run(quark, tmp_path):
    (tmp_path / "slow_modules.py").write_text(SLOW_MODULES)
    config = tmp_path / "slow.yml"
    config.write_text(
        "application:\n  module: slow_modules:Bench\n  config: {size: [1, 2]}\n"
        "  submodules: [{name: SlowDevice}]\nrepetitions: 1\n"
    )
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    yield run
    kill_processes_of((run / "jobs").resolve())


def wait_for_state(job_dir: Path, state: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (read_state(job_dir) or {}).get("state") != state:
        assert time.monotonic() < deadline, read_state(job_dir)
        time.sleep(0.05)
    return read_state(job_dir)


def test_cancel_stops_a_queued_and_a_running_local_job(quark, slow_run):
    running_key, queued_key = sorted(jobs(slow_run))  # one worker: the first runs, the second waits
    running = wait_for_state(slow_run / "jobs" / running_key, "running")
    assert read_state(slow_run / "jobs" / queued_key)["state"] == "queued"

    one = quark("cancel", slow_run, "001-r1")
    assert one.exit_code == 0, one.stderr
    assert one.stdout == f"cancelled {queued_key}\n"
    assert jobs(slow_run)[queued_key]["status"] == "CANCELLED"
    assert jobs(slow_run)[running_key]["status"] == "SUBMITTED", "only the stack asked for"

    rest = quark("cancel", slow_run, "--json")
    assert rest.exit_code == 0
    document = json.loads(rest.stdout)
    assert document["cancelled"] == [running_key]
    assert document["skipped"] == {queued_key: "not pending (CANCELLED)"}
    assert document["failed_stacks"] == ["000-r1"] and document["errors"] == {}

    deadline = time.monotonic() + 10
    while pid_alive(running["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(running["pid"]), "the running job's worker was stopped"
    assert read_state(slow_run / "jobs" / queued_key)["started"] is None, "the queued job never ran"
    for key in (running_key, queued_key):
        job = jobs(slow_run)[key]
        assert (job["status"], job["error"]) == ("CANCELLED", "cancelled on request")
        assert read_state(slow_run / "jobs" / key)["state"] == "cancelled"
    assert {stack: r["quark_job_status"] for stack, r in records(slow_run).items()} == {
        "000-r1": "FAILED",
        "001-r1": "FAILED",
    }
    assert records(slow_run)["000-r1"]["error"] == f"job {running_key} cancelled: cancelled on request"

    status = json.loads(quark("status", slow_run, "--json").stdout)
    assert status["job_totals"] == {"CANCELLED": 2}
    assert quark("status", slow_run).exit_code == 1
    again = quark("cancel", slow_run)
    assert (again.exit_code, again.stdout) == (0, f"{slow_run}: no pending job to cancel\n")
    assert quark("collect", slow_run).exit_code == 1, "collect leaves cancelled stacks failed"
    assert jobs(slow_run)[running_key]["attempt"] == 1, "and does not resubmit them"
    history = json.loads((slow_run / "run.json").read_text())["history"]
    assert [entry["command"] for entry in history] == ["submit", "cancel", "cancel"], "what did nothing left no trace"


def test_cancel_on_qaptiva_cancels_on_the_service_and_leaves_finished_jobs(quark, server, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    config = shipped("ghz-qaptiva.yml", tmp_path, at(server), {"n_qubits": [2, 3]})
    assert quark("submit", config, "-o", run).exit_code == 3
    keys = sorted(jobs(run))
    ids = {key: jobs(run)[key]["info"]["id"] for key in keys}

    assert quark("cancel", run, keys[0]).exit_code == 0
    assert server.job_status(ids[keys[0]]) == "cancelled"
    assert server.count("cancel_job") == 1
    server.release_all()
    server.wait_for(ids[keys[1]], "done")

    rest = quark("cancel", run)
    assert rest.exit_code == 0
    assert rest.stdout == f"left {keys[1]}: it had already ended (DONE); 'quark collect' takes it from here\n"
    left = json.loads(quark("cancel", run, keys[1], "--json").stdout)
    assert left["cancelled"] == [] and left["skipped"] == {keys[1]: "not pending (DONE)"}
    assert jobs(run)[keys[1]]["status"] == "DONE", "a job that ended first is recorded as it ended"
    assert quark("collect", run).exit_code == 1
    assert {s: r["quark_job_status"] for s, r in records(run).items()} == {"000-r1": "FAILED", "001-r1": "FINISHED"}
    assert records(run)["000-r1"]["error"] == f"job {keys[0]} cancelled: cancelled on request"


def test_a_backend_without_cancel_says_so_and_changes_nothing(quark, write_config, tmp_path):
    config = write_config(
        """
        application:
          module: toy_modules:Numbers
          submodules: [{name: AsyncSquare}]
        repetitions: 1
        """
    )
    run = tmp_path / "run"
    quark("submit", config, "-o", run)
    before = jobs(run)
    refused = quark("cancel", run)
    assert refused.exit_code == 2
    assert refused.stderr == (
        "error: 000-r1-Numbers.AsyncSquare-pre: not cancelled: ControlledJobManager cannot cancel jobs "
        "(this backend has no cancel); stop the job on its service, then 'quark cancel --forget KEY' abandons it "
        "here\n"
    )
    assert jobs(run) == before

    unknown = quark("cancel", run, "007-r1")
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith(f"error: {run / 'jobs'}: no job or stack with jobs is called '007-r1'; ")
    assert jobs(run) == before

    assert quark("cancel", run, "--forget").exit_code == 2, "--forget needs the keys it abandons"
    abandoned = quark("cancel", run, "--forget", "000-r1-Numbers.AsyncSquare-pre")
    assert abandoned.exit_code == 0, abandoned.stdout + abandoned.stderr
    assert abandoned.stdout == "abandoned 000-r1-Numbers.AsyncSquare-pre\n"
    (job,) = jobs(run).values()
    assert job["status"] == "CANCELLED" and job["abandoned_at"]
    assert "abandoned with 'quark cancel --forget'" in job["error"]
    status = json.loads(quark("status", run, "--json").stdout)
    assert status["stack_totals"]["FAILED"] == 1


def test_cancel_of_a_run_another_process_holds_is_exit_75(quark, write_config, tmp_path):
    config = write_config("application:\n  module: toy_modules:Numbers\n  submodules: [{name: AsyncSquare}]\n")
    run = tmp_path / "run"
    quark("submit", config, "-o", run)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom quark_cli.state import RunDir\n"
            f"with RunDir.open({str(run)!r}).lock():\n    print('held', flush=True)\n    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        locked = quark("cancel", run)
        assert locked.exit_code == 75
        assert f"run {run} is being processed by pid {holder.pid}" in locked.stderr
    finally:
        holder.kill()
        holder.wait()


def test_a_cancel_killed_before_it_failed_the_stack_is_retried_by_the_first_retry_failed(quark, write_config, tmp_path):
    config = write_config("application:\n  module: toy_modules:Numbers\n  submodules: [{name: AsyncSquare}]\n")
    run, killed = tmp_path / "run", tmp_path / "killed"
    assert quark("submit", config, "-o", run).exit_code == 3
    shutil.copytree(run, killed)
    assert quark("cancel", run, "--forget", "000-r1-Numbers.AsyncSquare-pre").exit_code == 0
    job_file = "jobs/000-r1-Numbers.AsyncSquare-pre.json"
    shutil.copy2(run / job_file, killed / job_file)  # the kill came after the job's write, before its stack's
    (killed / ".changing").touch()  # the mark a killed command leaves

    retried = quark("collect", killed, "--retry-failed")
    assert retried.exit_code == 3, retried.stdout + retried.stderr  # walked again at once, not failed first
    (job,) = jobs(killed).values()
    assert job["status"] == "SUBMITTED"  # the service still had it (abandoned, not cancelled): followed again
    finish_job(killed / "jobs" / job["key"])
    assert quark("collect", killed).exit_code == 0
