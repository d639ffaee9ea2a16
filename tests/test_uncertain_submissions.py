"""A quark process stopped between "about to submit" and "submitted": collect sorts it out.

Stories: the process dies right after the service took a job (collect finds it there and adopts
it), or right before (collect submits it, once); a service that cannot say leaves the job
"submission uncertain" until the user chooses ``--resubmit-uncertain``; a submit that raises fails
its stack only once the service confirms it has no such job; a service that does not answer while
a result is fetched never fails the stack.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import toy_modules
from qaptiva_server import StandInQaptiva, drop_client_connections
from test_async_engine import TWO_ITEMS_ASYNC, _config, _jobs, _results
from test_qaptiva_backend import at, shipped
from toy_modules import SERVICE_FILE, ControlledJobManager, finish_job, submissions

from quark_cli import walk
from quark_cli.jobs import qaptiva
from quark_cli.jobs.base import TransientServiceError


def stop_at(monkeypatch, target, name: str, call: int) -> None:
    """Make the ``call``-th call of ``target.name`` stop the process, as a kill would (Ctrl-C here)."""
    original = getattr(target, name)
    calls = {"n": 0}

    def stopping(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, stopping)


def finish_all(run: Path) -> None:
    for path in run.glob(f"jobs/*/{SERVICE_FILE}"):
        finish_job(path.parent)


def test_stopped_after_the_service_took_the_job_collect_adopts_it(quark, write_config, tmp_path, monkeypatch):
    run = tmp_path / "run"
    stop_at(monkeypatch, walk._JobRecorder, "submitted", call=3)
    one_at_a_time = ("--submit-workers", "1")  # so that what came before the stop is known
    assert quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run, *one_at_a_time).exit_code == 130
    monkeypatch.undo()
    jobs = _jobs(run)
    (uncertain,) = [key for key, job in jobs.items() if job["status"] == "SUBMITTING"]
    assert submissions(run) == 3, "the service took the third job before the process stopped"
    assert json.loads(quark("status", run, "--json").stdout)["job_totals"] == {"SUBMITTED": 2, "SUBMITTING": 1}

    collected = quark("collect", run)
    assert collected.exit_code == 3
    adopted = _jobs(run)[uncertain]
    service = json.loads((run / "jobs" / uncertain / SERVICE_FILE).read_text())
    assert adopted["status"] == "SUBMITTED" and adopted["info"] == {"id": service["id"]} and adopted["adopted_at"]
    assert submissions(run) == 4, "the three taken jobs are not sent again; the never-started fourth stack is"

    finish_all(run)
    assert quark("collect", run).exit_code == 0
    assert submissions(run) == 4
    assert [r["quark_job_status"] for r in _results(run)] == ["FINISHED"] * 4


def test_a_job_adopted_done_is_collected_in_the_same_pass(quark, write_config, tmp_path, monkeypatch):
    """The service ran the job while nobody knew it had it: the collect that adopts it also polls it."""
    run = tmp_path / "run"
    stop_at(monkeypatch, walk._JobRecorder, "submitted", call=3)
    one_at_a_time = ("--submit-workers", "1")
    assert quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run, *one_at_a_time).exit_code == 130
    monkeypatch.undo()
    (uncertain,) = [key for key, job in _jobs(run).items() if job["status"] == "SUBMITTING"]
    finish_all(run)

    assert quark("collect", run).exit_code == 3, "the fourth stack's job, submitted by this collect, waits"
    assert _jobs(run)[uncertain]["status"] == "DONE"
    statuses = [r["quark_job_status"] for r in _results(run)]
    assert statuses == ["FINISHED", "FINISHED", "FINISHED", "INTERRUPTED"] and submissions(run) == 4


def test_stopped_before_the_service_took_the_job_collect_submits_it_once(quark, write_config, tmp_path, monkeypatch):
    run = tmp_path / "run"
    stop_at(monkeypatch, ControlledJobManager, "submit", call=2)
    one_at_a_time = ("--submit-workers", "1")  # so that what came before the stop is known
    assert quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run, *one_at_a_time).exit_code == 130
    monkeypatch.undo()
    assert [job["status"] for job in _jobs(run).values()] == ["SUBMITTED", "SUBMITTING"]
    assert submissions(run) == 1

    assert quark("collect", run).exit_code == 3
    assert submissions(run) == 4 and {job["status"] for job in _jobs(run).values()} == {"SUBMITTED"}
    finish_all(run)
    assert quark("collect", run).exit_code == 0
    assert submissions(run) == 4


def test_a_submit_that_raised_fails_its_stack_only_once_the_service_has_no_such_job(
    quark, write_config, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    original = ControlledJobManager.submit

    def broken(self, operation, payload):
        if self.context.key.startswith("001-r1"):
            raise ValueError("payload too large")
        return original(self, operation, payload)

    monkeypatch.setattr(ControlledJobManager, "submit", broken)
    submitted = quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run)
    assert submitted.exit_code == 3, "the stack waits: did the submission reach the service or not?"
    assert (
        "001-r1: AsyncSquare.submit_preprocess raised ValueError: payload too large "
        "(submission uncertain: the next collect asks the service)"
    ) in submitted.stderr
    finish_all(run)

    collected = quark("collect", run)
    assert collected.exit_code == 1
    job = next(job for key, job in _jobs(run).items() if key.startswith("001-r1"))
    assert job["status"] == "FAILED"
    assert job["error"] == "not submitted: AsyncSquare.submit_preprocess raised ValueError: payload too large"
    assert "001-r1" in collected.stdout and "payload too large" in collected.stdout

    monkeypatch.setattr(ControlledJobManager, "submit", original)
    assert quark("collect", run, "--retry-failed").exit_code == 3
    finish_all(run)
    assert quark("collect", run).exit_code == 0
    assert submissions(run) == 4


def test_a_result_the_service_does_not_deliver_never_fails_the_stack(quark, write_config, tmp_path, monkeypatch):
    run = tmp_path / "run"
    quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run)
    finish_all(run)
    original = ControlledJobManager.get_result

    def unavailable(self):
        raise TransientServiceError("get_result: HTTP 503 (after 6 tries)")

    monkeypatch.setattr(ControlledJobManager, "get_result", unavailable)
    down = quark("collect", run)
    assert down.exit_code == 3
    assert "service unavailable, the next collect tries again" in down.stdout
    assert {r["quark_job_status"] for r in _results(run)} == {"INTERRUPTED"}
    assert {job["status"] for job in _jobs(run).values()} == {"DONE"}

    monkeypatch.setattr(ControlledJobManager, "get_result", original)
    assert quark("collect", run).exit_code == 0
    assert submissions(run) == 4


@pytest.fixture
def server(client_env: Path):
    with StandInQaptiva() as standin:
        yield standin
        qaptiva._connections.clear()
        drop_client_connections()


def test_qaptiva_job_taken_before_the_stop_is_found_by_its_tag(quark, server, tmp_path, monkeypatch):
    run = tmp_path / "run"
    stop_at(monkeypatch, walk._JobRecorder, "submitted", call=2)
    config = shipped("ghz-qaptiva.yml", tmp_path, at(server), {"n_qubits": [2, 3, 4]})
    assert quark("submit", config, "-o", run).exit_code == 130
    monkeypatch.undo()
    assert len(server.job_ids()) == 2
    assert quark("collect", run, "--wait", "--timeout", "60").exit_code == 0
    assert sorted(job["info"]["id"] for job in _jobs(run).values()) == sorted(server.job_ids())
    assert len(server.job_ids()) == 3, "the job the service took before the stop is not submitted again"
    assert {r["module"]["population"] for r in _results(run)} == {1.0}


def test_a_service_that_cannot_tell_leaves_the_choice_to_the_user(quark, server, tmp_path, monkeypatch):
    run = tmp_path / "run"
    stop_at(monkeypatch, walk._JobRecorder, "submitted", call=1)
    config = shipped("ghz-qaptiva.yml", tmp_path, at(server), {"n_qubits": [3]})
    assert quark("submit", config, "-o", run).exit_code == 130
    monkeypatch.undo()
    original = StandInQaptiva._job_info

    def untagged(self, job, job_id):
        info = original(self, job, job_id)
        info.meta_data = None  # a service that does not report what a job was tagged with
        return info

    monkeypatch.setattr(StandInQaptiva, "_job_info", untagged)
    for _ in range(2):
        collected = quark("collect", run)
        assert collected.exit_code == 3
        assert "submission uncertain" in collected.stdout and "--resubmit-uncertain" in collected.stdout
    assert len(server.job_ids()) == 1, "nothing is submitted while the service cannot tell"

    assert quark("collect", run, "--resubmit-uncertain", "--wait", "--timeout", "60").exit_code == 0
    assert len(server.job_ids()) == 2, "submitted again only on the user's word"
    assert toy_modules is not None


def test_an_uncertain_job_whose_service_cannot_be_asked_gets_one_line(quark, write_config, tmp_path, monkeypatch):
    run = tmp_path / "run"
    stop_at(monkeypatch, walk._JobRecorder, "submitted", call=1)
    assert quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run, "--submit-workers", "1").exit_code == 130
    monkeypatch.undo()
    (uncertain,) = [key for key, job in _jobs(run).items() if job["status"] == "SUBMITTING"]

    def unreachable(self, intent):
        raise RuntimeError("the job list is unreadable")

    monkeypatch.setattr(ControlledJobManager, "find_submitted", unreachable)
    collected = quark("collect", run)
    assert collected.exit_code == 3
    lines = [line for line in collected.stdout.splitlines() if uncertain in line]
    assert len(lines) == 1, collected.stdout
    assert "submission uncertain; asking the service failed (RuntimeError: the job list is unreadable)" in lines[0]
