"""A flaky Qaptiva service: every job is still collected, none fails, none runs twice.

The stand-in answers 30 % of its requests with HTTP 503. With ``close_on_fault=False`` it keeps the
connection open like the real service, and the real client then sends its next request twice: a
submission right after a fault would create two jobs. quark-cli retries reads with backoff,
repeats a submission only after the service's job list shows it did not arrive, and cancels any
copy the client made.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from qaptiva_server import StandInQaptiva, drop_client_connections
from test_qaptiva_backend import at, jobs, results, shipped

from quark_cli.jobs import qaptiva


@pytest.fixture(params=[True, False], ids=["close-on-fault", "keep-alive"])
def flaky(request, client_env: Path) -> Iterator[StandInQaptiva]:
    with StandInQaptiva(fail_rate=0.3, seed=7, close_on_fault=request.param) as standin:
        yield standin
        qaptiva._connections.clear()
        drop_client_connections()


def test_thirty_percent_of_requests_failing_loses_and_duplicates_nothing(quark, flaky, tmp_path):
    run = tmp_path / "run"
    config = shipped("ghz-qaptiva.yml", tmp_path, at(flaky), {"n_qubits": [2, 3, 4, 5]})

    submitted = quark("submit", config, "-o", run)
    assert submitted.exit_code in (2, 3), submitted.stderr
    if submitted.exit_code == 2:  # the service refused one job six times in a row: the run is kept
        assert "'quark collect' submits it later" in submitted.stderr
    done = quark("collect", run, "--wait", "--timeout", "120")
    assert done.exit_code == 0, done.stdout + done.stderr

    assert [r["quark_job_status"] for r in results(run)] == ["FINISHED"] * 4
    assert {r["module"]["population"] for r in results(run)} == {1.0}
    saved = jobs(run)
    assert {job["status"] for job in saved.values()} == {"DONE"}
    assert all(job.get("attempt") == 1 for job in saved.values())

    ours = {job["info"]["id"] for job in saved.values()}
    with flaky._cond:
        tags = Counter(job.batch.meta_data.get(qaptiva.TAG) for job in flaky._jobs.values())
        copies = {job_id: flaky.job_status(job_id) for job_id in flaky._jobs if job_id not in ours}
    assert len(ours) == 4 and set(ours) <= set(flaky.job_ids())
    assert all(status == "cancelled" for status in copies.values()), copies
    assert len(tags) == 4, f"one submission per job (copies made by the client are cancelled): {tags}"
    assert flaky.injected_faults, "the stand-in did inject faults"
    print(json.dumps({"faults": len(flaky.injected_faults), "requests": len(flaky.request_log), "copies": copies}))


@pytest.fixture
def steady(client_env: Path) -> Iterator[StandInQaptiva]:
    with StandInQaptiva() as standin:
        yield standin
        qaptiva._connections.clear()
        drop_client_connections()


def test_a_job_that_cannot_be_polled_does_not_hold_up_the_others(quark, steady, tmp_path):
    run = tmp_path / "run"
    quark("submit", shipped("ghz-qaptiva.yml", tmp_path, at(steady), {"n_qubits": [2, 3, 4]}), "-o", run)
    broken = sorted(run.glob("jobs/*.json"))[1]
    job = json.loads(broken.read_text())
    del job["info"]["id"]  # a job whose id was lost: its manager cannot ask about it
    broken.write_text(json.dumps(job))
    for job_id in steady.job_ids():
        steady.wait_for(job_id, "done")

    collected = quark("collect", run)
    assert collected.exit_code == 3
    assert f"{broken.stem}: QaptivaAsyncJobManager.get_status() raised KeyError: 'id'" in collected.stdout
    statuses = {r["stack"]: r["quark_job_status"] for r in results(run)}
    assert sorted(statuses.values()) == ["FINISHED", "FINISHED", "INTERRUPTED"]
    assert statuses[job["stack"]] == "INTERRUPTED", "the job is left as it was, not failed"
