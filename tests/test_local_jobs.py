"""The local backend on its own (no engine, no CLI): detached execution, state on disk, robustness.

Every test gets its own jobs folder; the fixture kills whatever runner and workers served it, found
by their command lines (they name the folder), so no background process outlives a test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest

from quark_cli.jobs.base import AsyncStatus, JobContext
from quark_cli.jobs.local import LocalAsyncJobManager, read_runner_info, runner_alive
from quark_cli.jobs.local_files import read_state

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="uses /proc to find and kill processes")

REPO = Path(__file__).resolve().parents[1]
WAIT = 60.0  # upper bound of any wait below; the usual wait is a few seconds (myQLM import + run)


# ---------------------------------------------------------------------------------------------------
# circuits


def ghz_job(n: int):
    """GHZ on n qubits: |0...0> and |1...1> with probability 1/2 each."""
    from qat.lang.AQASM import CNOT, H, Program

    program = Program()
    qubits = program.qalloc(n)
    H(qubits[0])
    for i in range(n - 1):
        CNOT(qubits[i], qubits[i + 1])
    return program.to_circ().to_job(nbshots=0)


def layered_job(n: int, layers: int):
    """RX layers and CNOT chains on n qubits, measuring qubit 0 only (a small result).

    Measured on a 2-core machine: 12 qubits x 8 layers well under 1 s; 23 qubits x 10 layers (450 gates)
    10-15 s, the "genuinely slow" job that the tests kill or cancel long before it ends.
    """
    from qat.lang.AQASM import CNOT, RX, Program

    program = Program()
    qubits = program.qalloc(n)
    for layer in range(layers):
        for i in range(n):
            RX(0.1 * (i + layer + 1))(qubits[i])
        for i in range(n - 1):
            CNOT(qubits[i], qubits[i + 1])
    return program.to_circ().to_job(nbshots=0, qubits=[0])


def slow_job():
    return layered_job(23, 10)


def failing_job():
    """A gate without a matrix: myQLM's simulator raises a QPUException when it runs it."""
    from qat.lang.AQASM import AbstractGate, H, Program

    program = Program()
    qubits = program.qalloc(2)
    H(qubits[0])
    AbstractGate("MYSTERY", [], arity=1)()(qubits[1])
    return program.to_circ().to_job(nbshots=0)


# ---------------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def jobs_dir(tmp_path):
    path = (tmp_path / "jobs").resolve()
    yield path
    kill_processes_of(path)


def processes_of(jobs_dir: Path) -> list[int]:
    """Pids of the runners and workers serving ``jobs_dir`` (their command lines name it)."""
    needle = str(jobs_dir).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"quark_cli.jobs.local_worker" in cmdline and needle in cmdline.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def kill_processes_of(jobs_dir: Path) -> None:
    for pid in processes_of(jobs_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pid_alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def manager(jobs_dir: Path, key: str, info: dict | None = None, workers: int | None = None) -> LocalAsyncJobManager:
    """A manager as the engine builds it: fresh, or rebuilt from the saved info by a later process."""
    config = {} if workers is None else {"workers": workers}
    context = JobContext(key, jobs_dir / key, config)
    if info is None:
        return LocalAsyncJobManager(context)
    return LocalAsyncJobManager.from_job_info(info, context)


def submit(jobs_dir: Path, key: str, job, workers: int | None = None) -> tuple[dict, float]:
    start = time.perf_counter()
    info = manager(jobs_dir, key, workers=workers).submit(job)
    return info, time.perf_counter() - start


def wait_status(jobs_dir: Path, key: str, info: dict, wanted, timeout: float = WAIT) -> LocalAsyncJobManager:
    """Poll with a fresh manager each time until the status is one of ``wanted`` (or fail)."""
    wanted = {wanted} if isinstance(wanted, AsyncStatus) else set(wanted)
    deadline = time.monotonic() + timeout
    while True:
        polled = manager(jobs_dir, key, info)
        status = polled.get_status()
        if status in wanted:
            return polled
        if status.is_final or time.monotonic() > deadline:
            pytest.fail(
                f"{key}: {status} ({polled.status_reason}), wanted {wanted}; state {read_state(jobs_dir / key)}"
            )
        time.sleep(0.05)


def distribution(result) -> dict[str, float]:
    return {str(sample.state): round(sample.probability, 9) for sample in result if sample.probability > 1e-12}


# ---------------------------------------------------------------------------------------------------
# tests


def test_importing_the_backend_does_not_import_myqlm():
    code = (
        "import sys, quark_cli.jobs.local; print(sorted(m for m in sys.modules if m == 'qat' or m.startswith('qat.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_submit_returns_at_once_and_results_are_read_back_from_disk(jobs_dir):
    slow_info, _ = submit(jobs_dir, "slow", slow_job(), workers=2)
    # submit does not run the job: a 10-second circuit is still queued or running when it returns
    assert read_state(jobs_dir / "slow")["state"] in ("queued", "running")
    assert manager(jobs_dir, "slow", slow_info).cancel() is True
    jobs = {"ghz3": ghz_job(3), "bell": ghz_job(2), "ghz5": ghz_job(5), "broken": failing_job()}
    infos = {key: submit(jobs_dir, key, job)[0] for key, job in jobs.items()}
    assert all(set(info) == {"id", "host"} for info in infos.values())

    assert distribution(wait_status(jobs_dir, "ghz3", infos["ghz3"], AsyncStatus.DONE).get_result()) == {
        "|000>": 0.5,
        "|111>": 0.5,
    }
    assert distribution(wait_status(jobs_dir, "bell", infos["bell"], AsyncStatus.DONE).get_result()) == {
        "|00>": 0.5,
        "|11>": 0.5,
    }
    assert distribution(wait_status(jobs_dir, "ghz5", infos["ghz5"], AsyncStatus.DONE).get_result()) == {
        "|00000>": 0.5,
        "|11111>": 0.5,
    }
    broken = wait_status(jobs_dir, "broken", infos["broken"], AsyncStatus.FAILED)
    assert broken.status_reason.startswith("QPUException: ")
    assert "\n" not in broken.status_reason
    assert "Traceback" in (jobs_dir / "broken" / "local.log").read_text()

    state = read_state(jobs_dir / "ghz3")
    assert state["schema_version"] == 1 and state["attempt"] == 1 and state["error"] is None
    assert state["submitted"] < state["started"] < state["finished"]
    # a manager of another job (another id) in the same folder is told so
    stranger = manager(jobs_dir, "ghz3", {"id": "someone-else", "host": "x"})
    assert stranger.get_status() is AsyncStatus.FAILED
    assert "another local job" in stranger.status_reason


def test_a_job_runs_to_the_end_after_the_submitting_process_exited(jobs_dir):
    script = textwrap.dedent(
        f"""
        import json
        from pathlib import Path
        from qat.lang.AQASM import CNOT, H, Program
        from quark_cli.jobs.base import JobContext
        from quark_cli.jobs.local import LocalAsyncJobManager

        program = Program()
        qubits = program.qalloc(4)
        H(qubits[0])
        for i in range(3):
            CNOT(qubits[i], qubits[i + 1])
        job = program.to_circ().to_job(nbshots=0)
        jobs = Path({str(jobs_dir)!r})
        print(json.dumps(LocalAsyncJobManager(JobContext("ghz4", jobs / "ghz4", {{}})).submit(job)))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=WAIT, cwd=REPO)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert read_state(jobs_dir / "ghz4")["state"] in ("queued", "running")
    result = wait_status(jobs_dir, "ghz4", info, AsyncStatus.DONE).get_result()
    assert distribution(result) == {"|0000>": 0.5, "|1111>": 0.5}


def test_a_worker_killed_mid_job_leaves_it_failed_and_the_pool_goes_on(jobs_dir):
    info, seconds = submit(jobs_dir, "slow", slow_job(), workers=1)
    assert seconds < 5
    wait_status(jobs_dir, "slow", info, AsyncStatus.RUNNING)
    pid = read_state(jobs_dir / "slow")["pid"]
    os.kill(pid, signal.SIGKILL)
    failed = wait_status(jobs_dir, "slow", info, AsyncStatus.FAILED, timeout=10)
    # the runner writes "(killed by signal SIGKILL)"; a poll that comes first "(killed or machine restarted)"
    assert failed.status_reason.startswith(f"worker process {pid} died (killed ")
    # the runner replaced the worker: later jobs still run
    info2, _ = submit(jobs_dir, "after", ghz_job(3), workers=1)
    wait_status(jobs_dir, "after", info2, AsyncStatus.DONE)
    assert read_state(jobs_dir / "after")["pid"] != pid


def test_a_dead_worker_is_noticed_by_get_status_when_no_runner_is_left(jobs_dir):
    """As after a reboot: worker and runner gone, the state file still says running."""
    info, _ = submit(jobs_dir, "slow", slow_job(), workers=1)
    wait_status(jobs_dir, "slow", info, AsyncStatus.RUNNING)
    pid = read_state(jobs_dir / "slow")["pid"]
    os.kill(read_runner_info(jobs_dir)["pid"], signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert read_state(jobs_dir / "slow")["state"] == "running"  # nobody left to write anything
    failed = wait_status(jobs_dir, "slow", info, AsyncStatus.FAILED, timeout=10)
    assert failed.status_reason == f"worker process {pid} died (killed or machine restarted)"
    assert read_state(jobs_dir / "slow")["state"] == "failed"


def test_queued_jobs_of_a_killed_runner_restart_on_the_next_get_status(jobs_dir):
    infos = {f"ghz{n}": submit(jobs_dir, f"ghz{n}", ghz_job(n), workers=1)[0] for n in (2, 3, 4)}
    old_runner = read_runner_info(jobs_dir)["pid"]
    os.kill(old_runner, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while runner_alive(jobs_dir) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not runner_alive(jobs_dir)
    # as if a submission had been interrupted between its state file and its queue entry
    (jobs_dir / ".local" / "queue" / read_state(jobs_dir / "ghz4")["queue_name"]).unlink(missing_ok=True)
    for key, info in infos.items():
        wait_status(jobs_dir, key, info, AsyncStatus.DONE)
    assert read_runner_info(jobs_dir)["pid"] != old_runner
    assert distribution(manager(jobs_dir, "ghz4", infos["ghz4"]).get_result()) == {"|0000>": 0.5, "|1111>": 0.5}


def test_a_queue_entry_lost_behind_a_running_job_runs_once_put_back_under_its_old_name(jobs_dir):
    slow, _ = submit(jobs_dir, "slow", slow_job(), workers=1)
    infos = {key: submit(jobs_dir, key, ghz_job(3), workers=1)[0] for key in ("first", "lost")}
    wait_status(jobs_dir, "slow", slow, AsyncStatus.RUNNING)  # the runner has listed the three
    (jobs_dir / ".local" / "queue" / read_state(jobs_dir / "lost")["queue_name"]).unlink()
    wait_status(jobs_dir, "first", infos["first"], AsyncStatus.DONE)
    time.sleep(0.3)  # some ticks: the runner has gone past the lost entry in its listing
    assert read_state(jobs_dir / "lost")["started"] is None
    wait_status(jobs_dir, "lost", infos["lost"], AsyncStatus.DONE)  # get_status puts the entry back
    assert read_state(jobs_dir / "lost")["attempt"] == 1
    assert distribution(manager(jobs_dir, "lost", infos["lost"]).get_result()) == {"|000>": 0.5, "|111>": 0.5}


def test_one_worker_runs_one_job_at_a_time(jobs_dir):
    keys = [f"job{i}" for i in range(4)]
    infos = {key: submit(jobs_dir, key, layered_job(12, 8), workers=1)[0] for key in keys}
    for key in keys:
        wait_status(jobs_dir, key, infos[key], AsyncStatus.DONE)
    states = [read_state(jobs_dir / key) for key in keys]
    spans = sorted((datetime.fromisoformat(s["started"]), datetime.fromisoformat(s["finished"])) for s in states)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start, spans
    assert len({s["pid"] for s in states}) == 1  # one worker process, reused
    assert [s["started"] for s in states] == sorted(s["started"] for s in states)  # in submission order
    assert read_runner_info(jobs_dir)["workers"] == 1


def test_cancel_a_queued_and_a_running_job(jobs_dir):
    slow, _ = submit(jobs_dir, "slow", slow_job(), workers=1)
    waiting, _ = submit(jobs_dir, "waiting", ghz_job(3), workers=1)
    last, _ = submit(jobs_dir, "last", ghz_job(3), workers=1)
    wait_status(jobs_dir, "slow", slow, AsyncStatus.RUNNING)
    pid = read_state(jobs_dir / "slow")["pid"]

    queued = manager(jobs_dir, "waiting", waiting)
    assert queued.cancel() is True
    assert queued.get_status() is AsyncStatus.CANCELLED
    running = manager(jobs_dir, "slow", slow)
    assert running.cancel() is True
    assert manager(jobs_dir, "slow", slow).get_status() is AsyncStatus.CANCELLED

    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(pid), "the cancelled job's worker is still running"
    wait_status(jobs_dir, "last", last, AsyncStatus.DONE)
    assert read_state(jobs_dir / "waiting")["started"] is None  # never ran
    assert manager(jobs_dir, "slow", slow).get_status() is AsyncStatus.CANCELLED
    assert manager(jobs_dir, "last", last).cancel() is False  # already done


def test_resubmitting_into_a_live_job_folder_is_refused_and_a_missing_folder_fails(jobs_dir):
    info, _ = submit(jobs_dir, "slow", slow_job(), workers=1)
    with pytest.raises(RuntimeError, match="cancel it first"):
        manager(jobs_dir, "slow", workers=1).submit(ghz_job(2))
    assert manager(jobs_dir, "slow", info).cancel() is True

    gone = manager(jobs_dir, "never-submitted", {"id": "x", "host": "y"})
    assert gone.get_status() is AsyncStatus.FAILED
    assert "no local job" in gone.status_reason
    with pytest.raises(ValueError, match="workers"):
        manager(jobs_dir, "bad", workers=-1).submit(ghz_job(2))
