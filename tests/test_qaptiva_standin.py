"""Self-test of the Qaptiva stand-in: the unmodified ``qat.qlmaas`` client must work against it.

Why: other tests trust the stand-in to behave like Qaptiva as the real client sees it; if a client upgrade
or a stand-in change breaks that, these tests say so before the tests built on it fail confusingly.
Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from qaptiva_server import DATE_FORMAT, StandInQaptiva, control, drop_client_connections
from qat.comm.exceptions.ttypes import QPUException
from qat.comm.qlmaas.ttypes import QLMServiceException
from qat.qlmaas import QLMaaSConnection

SERVER_SCRIPT = Path(__file__).with_name("qaptiva_server.py")


@pytest.fixture
def server(client_env: Path) -> Iterator[StandInQaptiva]:
    with StandInQaptiva() as standin:
        yield standin
        drop_client_connections()


def connect(server: StandInQaptiva, hostname: str = "127.0.0.1", check_host: bool = False) -> QLMaaSConnection:
    return QLMaaSConnection(hostname=hostname, port=server.port, check_host=check_host, timeout=10)


def bell_job():
    from qat.lang.AQASM import CNOT, H, Program

    prog = Program()
    qbits = prog.qalloc(2)
    prog.apply(H, qbits[0])
    prog.apply(CNOT, qbits)
    return prog.to_circ().to_job(nbshots=0)


def wait_status(conn: QLMaaSConnection, job_id: str, wanted: str, timeout: float = 10.0) -> list[str]:
    """Poll through the client until ``wanted``; returns the statuses seen, for ordering assertions."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = conn.get_status(job_id)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == wanted:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{job_id} never became {wanted!r}; saw {seen}")


def test_login_with_right_credentials(server: StandInQaptiva) -> None:
    conn = connect(server)
    assert "qat.qpus:LinAlg" in conn.get_qpus()
    assert server.logins == 1
    assert server.calls() == [("QLMHelpers", "get_qpus")]


def test_wrong_credentials_raise_401(server: StandInQaptiva, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QLM_PASSWD", "not-the-password")
    with pytest.raises(RuntimeError, match="401"):
        connect(server)


def test_check_host_true_with_ssl_cert_file(server: StandInQaptiva, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cert_path))
    assert connect(server, check_host=True).get_qpus() == ["qat.qpus:LinAlg"]  # SAN has IP 127.0.0.1


def test_submit_run_and_get_result(server: StandInQaptiva) -> None:
    server.set_delay(0.5)
    conn = connect(server)
    job_id = conn.get_qpu("qat.qpus:LinAlg")().submit(bell_job()).job_id
    assert server.calls()[-2:] == [("Scheduler", "submit_batch"), ("Scheduler", "get_job_info")]

    seen = wait_status(conn, job_id, "done")
    assert seen[0] in ("waiting", "running")  # "waiting" unless this machine stalled for 0.5 s
    assert seen == [status for status in ("waiting", "running", "done") if status in seen]

    result = conn.get_job(job_id).get_result()
    probabilities = {str(sample.state): sample.probability for sample in result}
    assert probabilities.keys() == {"|00>", "|11>"}
    assert all(p == pytest.approx(0.5) for p in probabilities.values())
    assert server.count("get_result") == 1

    (info,) = conn.get_jobs_info()
    assert info.id == job_id and info.owner == "alice"
    for date in (info.submission_date, info.starting_date, info.ending_date):
        dt.datetime.strptime(date, DATE_FORMAT)


def test_unknown_qpu_is_a_value_error(server: StandInQaptiva) -> None:
    with pytest.raises(ValueError, match="Unknown QPU"):
        connect(server).get_qpu("qat.qpus:NoSuchQPU")


def test_hold_then_release(server: StandInQaptiva) -> None:
    server.hold_all()
    conn = connect(server)
    job_id = conn.get_qpu("qat.qpus:LinAlg")().submit(bell_job()).job_id
    time.sleep(0.2)
    assert conn.get_status(job_id) == "waiting"
    assert conn.get_result(job_id) is None  # the client prints "The result is not available."
    server.release_all()
    wait_status(conn, job_id, "done")


def test_failed_job(server: StandInQaptiva) -> None:
    server.hold_all()
    conn = connect(server)
    job_id = conn.get_qpu("qat.qpus:LinAlg")().submit(bell_job()).job_id
    server.fail_job(job_id, "the cryostat is warm")
    assert conn.get_status(job_id) == "failed"
    with pytest.raises(QPUException, match="cryostat"):
        conn.get_job(job_id).get_result()


def test_cancelled_job(server: StandInQaptiva) -> None:
    server.hold_all()
    conn = connect(server)
    job_id = conn.get_qpu("qat.qpus:LinAlg")().submit(bell_job()).job_id
    assert conn.cancel_job(job_id) is True
    assert conn.get_status(job_id) == "cancelled"
    assert conn.cancel_job(job_id) is False
    server.release_all()
    time.sleep(0.1)
    assert conn.get_status(job_id) == "cancelled"


def test_lost_job(server: StandInQaptiva) -> None:
    server.hold_all()
    conn = connect(server)
    job_id = conn.get_qpu("qat.qpus:LinAlg")().submit(bell_job()).job_id
    server.lose_job(job_id)
    assert conn.get_status(job_id) == "unknown_job"
    with pytest.raises(QLMServiceException):
        conn.get_job(job_id).get_result()
    with pytest.raises(QLMServiceException):
        conn.cancel_job(job_id)
    assert conn.get_jobs_info() == []


def test_injected_503_is_transient(server: StandInQaptiva) -> None:
    conn = connect(server)
    server.fail_next(1)
    with pytest.raises(RuntimeError, match="Service Unavailable"):
        conn.get_qpus()
    assert conn.get_qpus() == ["qat.qpus:LinAlg"]
    assert server.injected_faults == [("QLMHelpers", "get_qpus")]


@pytest.mark.parametrize("close_on_fault", [False, True])
def test_submit_right_after_a_503(server: StandInQaptiva, close_on_fault: bool) -> None:
    """Documents a client quirk: on a kept-alive connection the request after a 503 reaches the server twice."""
    server.close_on_fault = close_on_fault
    server.hold_all()
    conn = connect(server)
    qpu = conn.get_qpu("qat.qpus:LinAlg")()
    server.fail_next(1)
    with pytest.raises(RuntimeError, match="Service Unavailable"):
        conn.get_jobs_info()
    job_id = qpu.submit(bell_job()).job_id
    assert server.job_ids()[-1] == job_id
    assert len(server.job_ids()) == (1 if close_on_fault else 2)


def test_fail_rate_is_seeded(client_env: Path) -> None:
    outcomes = []
    for _ in range(2):
        with StandInQaptiva(fail_rate=0.3, seed=7) as standin:
            conn = connect(standin)
            for _ in range(12):
                try:
                    conn.get_jobs_info()  # not get_qpus: the client caches its first good answer
                except RuntimeError as exc:
                    assert "Service Unavailable" in str(exc)
            outcomes.append(list(standin.injected_faults))
            del conn
            drop_client_connections()
    assert outcomes[0] == outcomes[1]
    assert 0 < len(outcomes[0]) < 12


@pytest.mark.filterwarnings("ignore:Unable to logout")  # the client's connection is unusable after a timeout
def test_stalled_server_times_the_client_out(server: StandInQaptiva) -> None:
    conn = QLMaaSConnection(hostname="127.0.0.1", port=server.port, check_host=False, timeout=1)
    server.set_stall(1.5)
    with pytest.raises(TimeoutError):
        conn.get_jobs_info()
    server.set_stall(0)


@pytest.mark.filterwarnings("ignore:Unable to logout")  # the client cannot log out once its session is gone
def test_expired_session_is_403(server: StandInQaptiva) -> None:
    conn = connect(server)
    server.expire_sessions()
    with pytest.raises(RuntimeError, match="Forbidden"):
        conn.get_qpus()


def test_server_not_running(client_env: Path) -> None:
    with StandInQaptiva() as standin:
        port = standin.port
    with pytest.raises(RuntimeError, match="Could not connect"):
        QLMaaSConnection(hostname="127.0.0.1", port=port, check_host=False, timeout=5)


def test_process_mode(client_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", "0", "--user", "bob", "--password", "pw", "--hold"],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        port = int(proc.stdout.readline())
        monkeypatch.setenv("QLM_USER", "bob")
        monkeypatch.setenv("QLM_PASSWD", "pw")
        conn = QLMaaSConnection(hostname="127.0.0.1", port=port, check_host=False, timeout=10)
        job_id = conn.get_qpu("qat.qpus:LinAlg")().submit(bell_job()).job_id
        url = f"https://127.0.0.1:{port}"
        assert control(url, "job_status", job_id=job_id) == "waiting"
        control(url, "release_all")
        wait_status(conn, job_id, "done")
        control(url, "lose_job", job_id=job_id)
        assert conn.get_status(job_id) == "unknown_job"
        assert control(url, "count", method="submit_batch") == 1
        del conn
        drop_client_connections()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
    with pytest.raises(RuntimeError, match="Could not connect"):
        QLMaaSConnection(hostname="127.0.0.1", port=port, check_host=False, timeout=5)
