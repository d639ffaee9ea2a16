"""A local job's files: its myQLM job and result without a pickle, its state file and the locks
around it, and the layout of the shared folder (see ``quark_cli.jobs.local`` for what each holds).

Used by the manager in the submitting and polling processes and by the runner's workers
(``quark_cli.jobs.local_worker``). Importing this module does not import myQLM.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from quark_cli.atomic import atomic_write_json, private_dirs
from quark_cli.disk import read_regular
from quark_cli.flock import LockTimeout
from quark_cli.stamps import now_iso
from quark_cli.state import file_lock

SCHEMA_VERSION = 1

STATE_FILE = "local.json"
JOB_FILE = "local.job"
RESULT_FILE = "local.result.json"
LOG_FILE = "local.log"
RUN_LOCK_FILE = "local.run.lock"
STATE_LOCK_FILE = "local.state.lock"

SHARED_DIR = ".local"
QUEUE_DIR = "queue"
RUNNER_LOCK_FILE = "runner.lock"
RUNNER_INFO_FILE = "runner.json"
RUNNER_LOG_FILE = "runner.log"

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
LIVE_STATES = (QUEUED, RUNNING)

STATE_LOCK_TIMEOUT = 30.0


def one_line(exc: BaseException, limit: int = 500) -> str:
    """``Type: message`` on one line, for ``status_reason`` and tables."""
    text = " ".join(str(exc).split()) or "(no message)"
    line = f"{type(exc).__name__}: {text}"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def job_bytes(job: Any) -> bytes:
    """A myQLM Job in myQLM's own Thrift binary form (what ``Job.dump`` writes), without its gate set.

    ``Job.dump`` pickles the circuit's ``gate_set`` into the file, and loading a pickle from a run
    directory would run whatever code it names; the circuit's gates carry their matrices anyway.
    The copy is made of the plain Thrift structs, field by field: detaching the gate set from the
    caller's circuit and putting it back would pickle it again (about 2 ms a job). ``Job.load``
    reads the bytes.
    """
    from qat.comm.datamodel.ttypes import Circuit as ThriftCircuit
    from qat.comm.shared.ttypes import Job as ThriftJob
    from thrift.protocol.TBinaryProtocol import TBinaryProtocolAcceleratedFactory
    from thrift.TSerialization import serialize

    def plain(value: Any, cls: type, **override: Any) -> Any:
        fields = (spec[2] for spec in cls.thrift_spec if spec)
        return cls(**{name: override.get(name, getattr(value, name, None)) for name in fields})

    circuit = job.circuit
    if circuit is not None:
        circuit = plain(circuit, ThriftCircuit, _gate_set=None, _serialized_gate_set=None)
    return serialize(plain(job, ThriftJob, circuit=circuit), TBinaryProtocolAcceleratedFactory())


def save_result(result: Any, path: Path) -> None:
    """Save a myQLM Result as JSON, atomically: its samples (state, probability, amplitude), no pickle."""
    samples = []
    for sample in result:
        probability = float(sample.probability or 0.0)
        amplitude = sample.amplitude
        if probability <= 0.0 and not amplitude:
            continue
        pair = None if amplitude is None else [float(complex(amplitude).real), float(complex(amplitude).imag)]
        samples.append([int(sample.state.int), probability, pair])
    registers = [
        {"start": int(reg.start), "length": int(reg.length), "msb": _plain(reg.msb), "key": _plain(reg.key)}
        for reg in result.qregs or []
    ]
    atomic_write_json(
        path,
        {
            "schema_version": SCHEMA_VERSION,
            "nbqbits": result.nbqbits,
            "lsb_first": bool(result.lsb_first),
            "qregs": registers,
            "samples": samples,
        },
    )


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, str)) else str(value)


def load_result(path: Path) -> Any:
    """The ``qat.core.Result`` saved by ``save_result``: the same samples, in the same order."""
    from qat.core import Result
    from qat.core.bits import DefaultRegister

    data = json.loads(read_regular(path))
    result = Result(lsb_first=data["lsb_first"], nbqbits=data["nbqbits"])
    for state, probability, pair in data["samples"]:
        result.add_sample(state, amplitude=None if pair is None else complex(*pair), probability=probability)
    if data["qregs"]:
        result.wrap_samples([DefaultRegister(**register) for register in data["qregs"]])
    return result


def read_state(job_dir: Path) -> dict[str, Any] | None:
    """The job's ``local.json``, or None when there is none (never submitted, or deleted)."""
    try:
        return json.loads(read_regular(job_dir / STATE_FILE))
    except FileNotFoundError:
        return None


def write_state(job_dir: Path, state: dict[str, Any]) -> None:
    """Replace ``local.json`` atomically (temporary file, fsync, rename: never half a file)."""
    atomic_write_json(job_dir / STATE_FILE, state)


def touch(path: Path) -> None:
    """Create an empty file (a queue entry), and its folder only the first time."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except FileNotFoundError:
        private_dirs(path.parent)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


@contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Take the lock if nobody holds it; yields whether we got it, and releases it afterwards."""
    lock = file_lock(path)
    try:
        lock.acquire(timeout=0)
    except LockTimeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def lock_is_held(path: Path) -> bool:
    """True when another process holds the lock on ``path`` (a probe: taken and dropped at once)."""
    with try_lock(path) as got:
        return not got


@contextmanager
def state_lock(job_dir: Path) -> Iterator[None]:
    """Serialise read-check-write changes of one job's ``local.json`` between processes."""
    lock = file_lock(job_dir / STATE_LOCK_FILE)
    lock.acquire(timeout=STATE_LOCK_TIMEOUT)
    try:
        yield
    finally:
        lock.release()


def process_start_token(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux ``/proc``), to tell a process from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]


def mark_worker_died(job_dir: Path, pid: int | None, how: str, queue_name: str | None = None) -> bool:
    """Mark the job FAILED because its worker is gone; False if it was not ours to mark.

    Called by ``get_status`` when a job says ``running`` but nobody holds its run lock (``pid`` is
    the recorded one), and by the runner when a worker dies: then ``pid`` is that worker and
    ``queue_name`` the queue entry it had been handed, so a job it died before starting fails too
    (rather than being handed to the next worker, which would die the same way).
    """
    with try_lock(job_dir / RUN_LOCK_FILE) as free:
        if not free:  # a live worker is running it after all
            return False
        with state_lock(job_dir):
            state = read_state(job_dir)
            if state is None:
                return False
            if state.get("state") == RUNNING and (pid is None or state.get("pid") == pid):
                reason = f"worker process {state.get('pid')} died ({how})"
            elif state.get("state") == QUEUED and queue_name is not None and state.get("queue_name") == queue_name:
                reason = (
                    f"worker process {pid} exited before running the job ({how}); see {SHARED_DIR}/{RUNNER_LOG_FILE}"
                )
                (queue_dir(job_dir.parent) / queue_name).unlink(missing_ok=True)
            else:
                return False
            state.update(state=FAILED, error=reason, finished=now_iso("microseconds"))
            write_state(job_dir, state)
            return True


def shared_dir(jobs_dir: Path) -> Path:
    """``<jobs>/.local``: the queue and the runner's files."""
    return jobs_dir / SHARED_DIR


def queue_dir(jobs_dir: Path) -> Path:
    """``<jobs>/.local/queue``: one empty file per waiting job, named so that sorting gives FIFO."""
    return jobs_dir / SHARED_DIR / QUEUE_DIR
