"""The IBM Quantum stand-in speaks the protocol of the real, unmodified ``qiskit_ibm_runtime`` client.

These tests use no ``quark_cli`` code: they build ``QiskitRuntimeService`` / ``SamplerV2`` exactly as a user
would, only pointed at :class:`ibm_server.StandInIBM` through environment variables, ``url`` and
``url_resolver`` (see the stand-in's module docstring).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ibm_server import StandInIBM, control

pytestmark = pytest.mark.filterwarnings("ignore:The SamplerV2 class is deprecated:DeprecationWarning")

TAG = "quark-xyz"
BACKEND = "fake_brisbane"


def resolver(url: str, instance: str, private_endpoint: bool | None = False, channel: str = "") -> str:
    """The ``url_resolver`` a client needs: the Runtime API of the stand-in is ``<url>/api/v1``."""
    return f"{url}/api/v1"


@pytest.fixture
def server(monkeypatch):
    """A running stand-in with the client's environment pointed at it and the client's logger quiet."""
    with StandInIBM(delay=0.4) as standin:
        for key, value in standin.env().items():
            monkeypatch.setenv(key, value)
        logger = logging.getLogger("qiskit_ibm_runtime")
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        try:
            yield standin
        finally:
            logger.setLevel(level)


def make_service(server: StandInIBM, token: str | None = None):
    from qiskit_ibm_runtime import QiskitRuntimeService

    return QiskitRuntimeService(
        channel="ibm_quantum_platform",
        token=token or server.api_key,
        instance=server.instance,
        url=server.url,
        url_resolver=resolver,
    )


def ghz_isa(backend):
    from qiskit import QuantumCircuit
    from qiskit.transpiler import generate_preset_pass_manager

    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.cx(1, 2)
    circuit.measure_all()
    return generate_preset_pass_manager(optimization_level=1, backend=backend).run(circuit)


def submit(service, tags=(TAG,), shots=200, backend_name=BACKEND) -> str:
    from qiskit_ibm_runtime import SamplerV2

    backend = service.backend(backend_name)
    sampler = SamplerV2(mode=backend)
    sampler.options.environment.job_tags = list(tags)
    return sampler.run([ghz_isa(backend)], shots=shots).job_id()


def wait_final(job, timeout: float = 10.0) -> list[str]:
    """Poll ``status()`` until final; returns the statuses seen, in order, without repeats."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        status = job.status()
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("DONE", "ERROR", "CANCELLED") or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def test_submit_then_reattach_from_a_new_service(server):
    job_id = submit(make_service(server), shots=300)
    assert server.calls()[-1] == "POST /api/v1/jobs"
    record = server.job(job_id)
    assert record["tags"] == [TAG] and record["backend"] == BACKEND and record["program_id"] == "sampler"
    assert record["shots"] == [300] and record["created"].endswith("Z")

    service = make_service(server)  # knows nothing but the id
    server.clear_log()
    job = service.job(job_id)
    assert job.job_id() == job_id and job.primitive_id == "sampler" and job.tags == [TAG]
    seen = wait_final(job)
    assert seen[-1] == "DONE" and set(seen) <= {"QUEUED", "RUNNING", "DONE"}
    result = job.result()
    counts = result[0].data.meas.get_counts()
    assert counts == server.counts(job_id)[0]
    assert set(counts) <= {"000", "111"} and sum(counts.values()) == 300
    assert result.metadata["version"] == 2
    assert server.calls("GET /jobs/*/results") == [f"GET /api/v1/jobs/{job_id}/results"]

    timestamps = job.metrics()["timestamps"]
    assert all(timestamps[key].endswith("Z") for key in ("created", "running", "finished"))
    assert timestamps["created"] <= timestamps["running"] <= timestamps["finished"]

    listed = service.jobs(job_tags=[TAG])
    assert [j.job_id() for j in listed] == [job_id]
    assert service.jobs(job_tags=[TAG, "other-tag"]) == []
    assert "tags=quark-xyz" in server.calls("GET /jobs", with_query=True)[-1]


def test_same_circuit_shots_and_seed_give_the_same_counts(server):
    service = make_service(server)
    first, second = submit(service), submit(service)
    server.wait_for(first, "Completed")
    server.wait_for(second, "Completed")
    assert server.counts(first) == server.counts(second)


def test_small_backend_too(server):
    service = make_service(server)
    job_id = submit(service, backend_name="fake_manila")
    counts = service.job(job_id).result()[0].data.meas.get_counts()
    assert counts == server.counts(job_id)[0] and set(counts) <= {"000", "111"}


def test_pending_listing_shows_only_unfinished_jobs(server):
    service = make_service(server)
    done_id = submit(service)
    server.wait_for(done_id, "Completed")
    server.hold_all()
    held_id = submit(service)
    assert [j.job_id() for j in service.jobs(pending=True)] == [held_id]
    assert [j.job_id() for j in service.jobs(pending=False)] == [done_id]
    assert {j.job_id() for j in service.jobs(limit=None)} == {done_id, held_id}
    listings = server.calls("GET /jobs", with_query=True)
    assert any("pending=true" in call for call in listings) and any("pending=false" in call for call in listings)
    assert service.job(held_id).status() == "QUEUED"
    server.release_all()
    server.wait_for(held_id, "Completed")
    assert service.jobs(pending=True) == []


def test_cancel_a_held_job_and_cancel_after_final(server):
    from qiskit_ibm_runtime.exceptions import RuntimeInvalidStateError

    service = make_service(server)
    server.hold_all()
    job_id = submit(service)
    service.job(job_id).cancel()
    assert server.job(job_id)["status"] == "Cancelled"
    assert make_service(server).job(job_id).status() == "CANCELLED"
    with pytest.raises(RuntimeInvalidStateError):
        service.job(job_id).cancel()  # 409: already final
    with pytest.raises(RuntimeInvalidStateError):
        service.job(job_id).result()


def test_failed_job_reports_its_reason(server):
    from qiskit_ibm_runtime.exceptions import RuntimeJobFailureError

    service = make_service(server)
    server.hold_all()
    job_id = submit(service)
    server.fail_job(job_id, reason="calibration drift on qubit 7")
    job = make_service(server).job(job_id)
    assert job.status() == "ERROR"
    assert "calibration drift on qubit 7" in job.error_message()
    with pytest.raises(RuntimeJobFailureError, match="calibration drift on qubit 7"):
        job.result()


def test_job_cancelled_for_running_too_long_is_an_error(server):
    from qiskit_ibm_runtime.exceptions import RuntimeJobMaxTimeoutError

    service = make_service(server)
    server.hold_all()
    job_id = submit(service)
    server.cancel_too_long(job_id)
    assert server.job(job_id)["reason_code"] == 1305
    job = make_service(server).job(job_id)
    assert job.status() == "ERROR"
    assert "ran longer than maximum execution time" in job.error_message() and "1305" in job.error_message()
    with pytest.raises(RuntimeJobMaxTimeoutError, match="1305"):
        job.result()


def test_lost_job_is_not_found(server):
    from qiskit_ibm_runtime.exceptions import RuntimeJobNotFound

    service = make_service(server)
    job_id = submit(service)
    server.lose_job(job_id)
    with pytest.raises(RuntimeJobNotFound):
        service.job(job_id)
    assert service.jobs(job_tags=[TAG]) == []
    assert server.job_ids() == [] and server.job(job_id)["lost"]


def test_lost_answer_to_a_submission_makes_two_jobs(server):
    service = make_service(server)
    server.fail_next(count=1, code=502, path="POST /jobs", after=True)
    returned = submit(service, tags=["quark-dup"])
    assert server.calls("POST /jobs") == ["POST /api/v1/jobs"] * 2  # the client's own retry
    assert len(server.job_ids()) == 2 and server.job_ids()[-1] == returned
    assert all(server.job(job_id)["tags"] == ["quark-dup"] for job_id in server.job_ids())
    assert {j.job_id() for j in service.jobs(job_tags=["quark-dup"])} == set(server.job_ids())


def test_a_transient_fault_before_the_job_is_created_is_retried_silently(server):
    service = make_service(server)
    server.fail_next(count=1, code=503, path="POST /jobs")
    returned = submit(service)
    assert server.job_ids() == [returned] and server.injected_faults == ["POST /api/v1/jobs"]


def test_construction_faults_differ_only_in_their_cause(server):
    import requests
    from ibm_cloud_sdk_core import ApiException
    from qiskit_ibm_runtime.accounts.exceptions import InvalidAccountError

    with pytest.raises(InvalidAccountError) as wrong_key:
        make_service(server, token="not-the-key")
    assert isinstance(wrong_key.value.__cause__, ApiException) and wrong_key.value.__cause__.status_code == 400
    assert "could not be found" in wrong_key.value.__cause__.message

    server.go_down("iam")
    with pytest.raises(InvalidAccountError) as iam_down:
        make_service(server)
    server.come_back("iam")
    server.go_down("api")
    with pytest.raises(InvalidAccountError) as api_down:
        make_service(server)
    server.come_back("api")

    for outage, path in ((iam_down, "/identity/token"), (api_down, "/v3/resources/search")):
        cause = outage.value.__cause__
        assert isinstance(cause, requests.exceptions.ConnectionError)
        assert not isinstance(cause, ApiException)
        assert path in cause.request.url  # the only thing that tells the two outages apart
    assert str(wrong_key.value) == str(iam_down.value) == str(api_down.value)
    make_service(server)  # both came back on the same ports


def test_rejected_token_raises_not_authorized(server):
    from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError

    service = make_service(server)
    job_id = submit(service)
    server.reject_tokens(True)
    with pytest.raises(IBMNotAuthorizedError):
        service.job(job_id)
    server.reject_tokens(False)
    assert service.job(job_id).job_id() == job_id


def test_a_stalled_server_holds_the_client(server):
    service = make_service(server)
    job = service.job(submit(service))
    server.set_stall(30, path="GET /jobs/*")
    finished = threading.Event()
    threading.Thread(target=lambda: (job.status(), finished.set()), daemon=True).start()
    assert not finished.wait(0.8)  # no read timeout: the client just waits
    server.set_stall(0)  # releases the answer being held
    assert finished.wait(5)


def test_a_stalled_submission_creates_its_job_before_the_answer(server):
    service = make_service(server)
    backend = service.backend(BACKEND)
    server.set_stall(30, path="POST /jobs")
    thread = threading.Thread(target=submit, args=(service,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.job_ids() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(server.job_ids()) == 1 and thread.is_alive()
    server.set_stall(0)
    thread.join(5)
    assert not thread.is_alive() and backend.name == BACKEND


def test_process_mode_prints_its_ports_and_obeys_control(tmp_path):
    script = Path(__file__).with_name("ibm_server.py")
    env = {key: value for key, value in os.environ.items() if not key.startswith("QISKIT_IBM")}
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--iam-port", "0", "--delay", "0.2", "--api-key", "KEY"]
        + ["--hold", "--backends", "fake_manila"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        info = json.loads(process.stdout.readline())
        assert {"port", "iam_port", "url", "instance", "cert"} <= set(info)
        assert info["url"] == f"https://127.0.0.1:{info['port']}" and Path(info["cert"]).is_file()
        assert control(info["url"], "job_ids") == []
        control(info["url"], "go_down", part="api")
        time.sleep(0.4)
        assert control(info["iam_url"], "come_back", part="api") is None
        assert control(info["url"], "calls") == []
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
