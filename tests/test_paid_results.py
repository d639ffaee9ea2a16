"""A paid result is never thrown away, and "not final yet" is not "failed".

Stories: a job finished on the service but the module's collect hook raised; the user fixes it and
``collect --retry-failed`` collects the result without paying for the job again. A job the service
reported failed, then done (a result that showed up late), is collected, not resubmitted. A SLURM
state quark does not know, or a result file not visible yet, keeps the job pending with a warning.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from toy_modules import fail_job, finish_job, submissions

from quark_cli.jobs.base import AsyncStatus, JobContext
from quark_cli.jobs.qaptiva import map_status
from quark_cli.jobs.slurm import RESULT_FILE, SlurmAsyncJobManager

PICKY = '''
import os

from toy_modules import AsyncSquare


class PickySquare(AsyncSquare):
    """AsyncSquare whose collect hook raises until the user has fixed it (a file says so)."""

    def collect_preprocess(self, server_result):
        if not os.path.exists(os.environ["PICKY_FIXED"]):
            raise ValueError("unexpected result format")
        return server_result
'''

CONFIG = """
application:
  module: toy_modules:Numbers
  config: {start: [1, 2]}
  submodules:
    - name: Double
      submodules: [{module: 'picky:PickySquare'}]
"""


def _jobs(run: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(run.glob("jobs/*.json"))}


def test_a_done_job_whose_collect_failed_is_collected_again_without_paying_again(
    quark, write_config, tmp_path, monkeypatch
):
    (tmp_path / "picky.py").write_text(PICKY)
    monkeypatch.setenv("PICKY_FIXED", str(tmp_path / "fixed"))
    run = tmp_path / "run"
    assert quark("submit", write_config(CONFIG), "-o", run).exit_code == 3
    for key in _jobs(run):
        finish_job(run / "jobs" / key)
    broken = quark("collect", run)
    assert broken.exit_code == 1 and "ValueError: unexpected result format" in broken.stdout
    assert quark("collect", run).exit_code == 1, "a plain collect leaves failed stacks alone"

    (tmp_path / "fixed").touch()
    retried = quark("collect", run, "--retry-failed")
    assert retried.exit_code == 0, retried.stdout + retried.stderr
    assert submissions(run) == 2, "collected again from the service, not submitted again"
    records = json.loads((run / "results.json").read_text())
    assert [r["module"]["total"] for r in records] == [
        sum(4 * x * x for x in (1, 2, 3)),
        sum(4 * x * x for x in (2, 3, 4)),
    ]
    assert all(job["attempt"] == 1 for job in _jobs(run).values())


def test_retry_failed_asks_the_service_before_paying_for_a_job_again(quark, write_config, tmp_path):
    config = write_config(CONFIG.replace("module: 'picky:PickySquare'", "name: AsyncSquare"))
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    first, second = sorted(_jobs(run))
    fail_job(run / "jobs" / first, "result file missing")
    finish_job(run / "jobs" / second)
    assert quark("collect", run).exit_code == 1
    finish_job(run / "jobs" / first)  # the service now has it done after all (e.g. the file showed up)
    retried = quark("collect", run, "--retry-failed")
    assert retried.exit_code == 0, retried.stdout
    assert submissions(run) == 2 and _jobs(run)[first]["status"] == "DONE"


def _slurm_manager(tmp_path: Path, grace: float = 300) -> SlurmAsyncJobManager:
    context = JobContext(key="000-r1-x-pre", job_dir=tmp_path, config={"result_grace": grace})
    return SlurmAsyncJobManager(context=context, job_info={"id": "42", "cluster": "c"})


def _ended(seconds_ago: float) -> str:
    return (datetime.now() - timedelta(seconds=seconds_ago)).isoformat(timespec="seconds")


def test_a_slurm_state_quark_does_not_know_keeps_the_job_pending_with_a_warning(tmp_path):
    manager = _slurm_manager(tmp_path)
    for state in ("STOPPED", "SOME_NEW_STATE"):
        assert manager._status_from({"state": state, "submit": _ended(60)}) is AsyncStatus.RUNNING
        assert manager.status_warning == f"SLURM state {state} is not one quark knows; the job stays pending"
        assert manager.status_reason is None
    assert manager._status_from({"state": "RUNNING"}) is AsyncStatus.RUNNING and manager.status_warning is None


def test_a_completed_slurm_job_without_its_result_is_waited_for_then_failed(tmp_path):
    manager = _slurm_manager(tmp_path, grace=300)
    assert manager._status_from({"state": "COMPLETED", "end": _ended(100)}) is AsyncStatus.RUNNING
    assert "COMPLETED, but its result is not visible" in manager.status_warning
    assert manager._status_from({"state": "COMPLETED", "end": _ended(400)}) is AsyncStatus.FAILED
    assert manager.status_reason.startswith("COMPLETED without a result in")
    (tmp_path / RESULT_FILE).write_text("{}")
    assert manager._status_from({"state": "COMPLETED", "end": _ended(400)}) is AsyncStatus.DONE


def test_a_qaptiva_status_quark_does_not_know_is_not_an_end():
    assert map_status("waiting") == (AsyncStatus.SUBMITTED, None, None)
    assert map_status("failed") == (AsyncStatus.FAILED, "FAILED", None)
    status, reason, warning = map_status("paused")
    assert (status, reason) == (AsyncStatus.RUNNING, None)
    assert warning == "Qaptiva status PAUSED is not one quark knows; the job stays pending"
