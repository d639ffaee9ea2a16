"""The detached side of the local backend: the runner of a jobs folder and its worker processes.

``python -m quark_cli.jobs.local_worker runner JOBS_DIR --workers N`` is started by
``LocalAsyncJobManager`` in its own session, so it outlives the CLI. It holds ``.local/runner.lock``
for its whole life (one runner per folder; the kernel drops the lock if it dies), hands the entries of
``.local/queue`` oldest first to at most N worker processes, and exits after ``RUNNER_IDLE_SECONDS``
with nothing queued or running.

``python -m quark_cli.jobs.local_worker worker JOBS_DIR`` is one of those workers. It imports myQLM
once, then reads queue entry names on stdin, one per line, runs each job and answers with the same
name on its stdout. Its pid goes into the job's ``local.json``, and it holds the job's
``local.run.lock`` while running it, so that anyone can tell a dead worker from a live one.

A small pool of our own rather than ``concurrent.futures`` or ``multiprocessing.Pool``: those
treat a killed worker as a broken pool (or hang on its task), and do not tell which job it held.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quark_cli.atomic import atomic_write_json
from quark_cli.disk import open_regular
from quark_cli.flock import LockTimeout
from quark_cli.jobs.local_files import (
    DONE,
    FAILED,
    JOB_FILE,
    LOG_FILE,
    QUEUED,
    RESULT_FILE,
    RUN_LOCK_FILE,
    RUNNER_INFO_FILE,
    RUNNER_LOCK_FILE,
    RUNNING,
    mark_worker_died,
    one_line,
    process_start_token,
    queue_dir,
    read_state,
    save_result,
    shared_dir,
    state_lock,
    write_state,
)
from quark_cli.stamps import now_iso
from quark_cli.state import file_lock

RUNNER_IDLE_SECONDS = 3.0  # linger a little: the next submissions of a burst find the pool warm
TICK_SECONDS = 0.05  # how often the runner looks at the queue folder: a new job waits at most this
#: How long the runner hands out the entries of one listing of the queue folder before it lists it
#: again (sooner once they are all handed out): a job put back in the queue waits at most this.
RELIST_SECONDS = 2.0
MAX_JOBS_PER_WORKER = 200  # then a fresh process, so that a leak in a simulator cannot pile up
RUN_LOCK_WAIT_SECONDS = 1.0  # a probe holds a run lock for microseconds; a worker holds it for a job


def log(message: str) -> None:
    """One timestamped line in the runner's log (stderr of runner and workers)."""
    print(f"{now_iso('microseconds')} [{os.getpid()}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# worker


_QPU: Any = None


def get_qpu() -> Any:
    """myQLM's default QPU, built once per worker process (the import alone takes seconds)."""
    global _QPU
    if _QPU is None:
        from qat.qpus import get_default_qpu

        _QPU = get_default_qpu()
    return _QPU


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send fds 1 and 2 (Python and C prints alike) to ``path`` for the duration of one job."""
    sys.stdout.flush()
    sys.stderr.flush()
    target = open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # a FIFO there would block the worker
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


def execute(job_dir: Path) -> dict[str, Any]:
    """Run the job's myQLM Job on the default QPU and save the Result; the final state fields."""
    try:
        from qat.core import Job

        job = Job.load(str(job_dir / JOB_FILE))
        result = get_qpu().submit(job)
        save_result(result, job_dir / RESULT_FILE)
    except Exception as exc:
        traceback.print_exc()
        return {"state": FAILED, "error": one_line(exc)}
    return {"state": DONE, "error": None}


def run_job(jobs_dir: Path, queue_name: str) -> str:
    """Claim and run the job of one queue entry; returns its final state, or "skipped".

    Skipped when another worker holds the job's run lock, or the job is no longer queued under this
    entry (cancelled, already run, resubmitted): then the stale entry is removed.
    """
    job_dir = jobs_dir / queue_name.partition("-")[2]
    marker = queue_dir(jobs_dir) / queue_name
    if not job_dir.is_dir():
        marker.unlink(missing_ok=True)
        return "skipped"
    run_lock = file_lock(job_dir / RUN_LOCK_FILE)
    try:
        run_lock.acquire(timeout=RUN_LOCK_WAIT_SECONDS)
    except LockTimeout:
        return "skipped"
    pid = os.getpid()
    claimed = False
    outcome: dict[str, Any] = {"state": FAILED, "error": "the worker stopped before recording an outcome"}
    try:
        with state_lock(job_dir):
            state = read_state(job_dir)
            if state is None or state.get("queue_name") != queue_name or state.get("state") != QUEUED:
                marker.unlink(missing_ok=True)
                return "skipped"
            state.update(
                state=RUNNING,
                pid=pid,
                pid_start=process_start_token(pid),
                started=now_iso("microseconds"),
                attempt=int(state.get("attempt") or 0) + 1,
            )
            write_state(job_dir, state)
            marker.unlink(missing_ok=True)
            claimed = True
        with output_to(job_dir / LOG_FILE):
            log(f"runs {job_dir.name}")
            outcome = execute(job_dir)
            log(f"{outcome['state']} {job_dir.name}")
        return outcome["state"]
    except Exception as exc:
        outcome = {"state": FAILED, "error": one_line(exc)}
        raise
    finally:
        try:
            if claimed:
                with state_lock(job_dir):
                    state = read_state(job_dir)
                    # a cancel() may have come first: never overwrite it
                    if state and state.get("state") == RUNNING and state.get("pid") == pid:
                        state.update(outcome, finished=now_iso("microseconds"))
                        write_state(job_dir, state)
        finally:
            run_lock.release()


def run_worker(jobs_dir: Path) -> int:
    """Serve the runner: a queue entry name in on stdin, the same name out on stdout when done."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # prints (ours or myQLM's) go to the log, never into the channel
    get_qpu()  # import myQLM before the first job, so that its seconds do not count as job time
    while True:
        line = sys.stdin.readline()
        if not line:
            return 0
        name = line.strip()
        if not name:
            continue
        try:
            run_job(jobs_dir, name)
        except Exception:
            log(f"error on {name}:\n{traceback.format_exc()}")
        try:
            channel.write(name + "\n")
        except BrokenPipeError:  # the runner is gone; nobody will send more
            return 0


# ---------------------------------------------------------------------------------------------------
# runner


@dataclass
class _Worker:
    proc: subprocess.Popen
    current: str | None = None  # the queue entry it is running
    jobs_run: int = 0
    buffer: bytes = b""
    retiring: bool = False


@dataclass
class _Pool:
    """At most ``size`` worker processes; knows which queue entry each one holds."""

    jobs_dir: Path
    size: int
    workers: dict[int, _Worker] = field(default_factory=dict)  # by stdout fd
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)

    @property
    def in_flight(self) -> set[str]:
        return {w.current for w in self.workers.values() if w.current}

    def busy(self) -> bool:
        return any(w.current for w in self.workers.values())

    def room(self) -> int:
        """How many queue entries ``dispatch`` can hand out now: idle workers and workers to start."""
        return self.size - len(self.workers) + sum(1 for _ in self._idle())

    def _idle(self) -> Iterator[_Worker]:
        return (w for w in self.workers.values() if w.current is None and not w.retiring)

    def _spawn(self) -> _Worker:
        proc = subprocess.Popen(
            [sys.executable, "-m", "quark_cli.jobs.local_worker", "worker", str(self.jobs_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        worker = _Worker(proc)
        fd = proc.stdout.fileno()
        self.workers[fd] = worker
        self.selector.register(fd, selectors.EVENT_READ, worker)
        log(f"started worker {proc.pid}")
        return worker

    def dispatch(self, names: list[str]) -> None:
        """Hand queue entries to idle workers, starting workers while below ``size``."""
        for name in names:
            worker = next(self._idle(), None)
            if worker is None:
                if len(self.workers) >= self.size:
                    return
                worker = self._spawn()
            worker.current = name
            try:
                worker.proc.stdin.write(name.encode() + b"\n")
                worker.proc.stdin.flush()
            except OSError:  # it died; wait() will see its end and deal with the entry
                pass

    def wait(self, timeout: float) -> None:
        """Wait for workers to answer or die, for at most ``timeout`` seconds."""
        if not self.workers:
            time.sleep(timeout)
            return
        for key, _ in self.selector.select(timeout):
            worker: _Worker = key.data
            data = os.read(key.fd, 65536)
            if not data:
                self._ended(key.fd, worker)
                continue
            worker.buffer += data
            *lines, worker.buffer = worker.buffer.split(b"\n")
            for line in lines:
                if line.decode() == worker.current:
                    worker.current = None
                    worker.jobs_run += 1
            if worker.current is None and worker.jobs_run >= MAX_JOBS_PER_WORKER and not worker.retiring:
                worker.retiring = True
                worker.proc.stdin.close()

    def _ended(self, fd: int, worker: _Worker) -> None:
        self.selector.unregister(fd)
        del self.workers[fd]
        worker.proc.stdout.close()
        with contextlib.suppress(OSError):
            worker.proc.stdin.close()
        code = worker.proc.wait()
        if worker.current is None:
            return
        how = f"killed by signal {_signal_name(-code)}" if code < 0 else f"exit code {code}"
        log(f"worker {worker.proc.pid} ended while holding {worker.current} ({how})")
        job_dir = self.jobs_dir / worker.current.partition("-")[2]
        try:
            mark_worker_died(job_dir, worker.proc.pid, how, queue_name=worker.current)
        except Exception:
            log(f"could not record the end of {worker.current}:\n{traceback.format_exc()}")

    def close(self) -> None:
        """End idle workers (EOF on stdin); a busy one finishes its job first, then sees EOF."""
        for worker in self.workers.values():
            with contextlib.suppress(OSError):
                worker.proc.stdin.close()
        for worker in self.workers.values():
            if worker.current is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.proc.wait(timeout=5)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def pending(jobs_dir: Path, skip: set[str]) -> list[str]:
    """Queue entries not yet handed to a worker, oldest first."""
    return sorted(name for name in os.listdir(queue_dir(jobs_dir)) if not name.startswith(".") and name not in skip)


class _Queue:
    """The runner's view of the queue folder: the entries to hand out, oldest first.

    The folder is listed again once every entry of the last listing was handed out, or
    ``RELIST_SECONDS`` after it (a job a collect puts back in the queue keeps its old name). Listed
    at every tick with a free worker, as it was, a queue of 100,000 jobs cost 0.1 s a tick (the
    listing and its sort), and handing out n jobs took time in n squared.
    """

    def __init__(self, jobs_dir: Path) -> None:
        self.jobs_dir = jobs_dir
        self.folder = os.fspath(queue_dir(jobs_dir))
        self.names: list[str] = []
        self.next = 0  # the position in ``names`` of the first entry not handed out
        self.listed_at = float("-inf")  # time.monotonic() of the listing, seconds

    def take(self, room: int, skip: set[str]) -> list[str]:
        """Up to ``room`` entries to hand out now, oldest first: still in the folder (not run,
        cancelled or removed since the listing) and not in ``skip`` (those workers hold)."""
        relisted = False
        if self.next >= len(self.names) or time.monotonic() - self.listed_at >= RELIST_SECONDS:
            self._list(skip)
            relisted = True
        taken: list[str] = []
        while len(taken) < room:
            if self.next >= len(self.names):  # run out: what came since is looked for now, not a tick later
                if relisted:
                    break
                self._list(skip | set(taken))
                relisted = True
                continue
            name = self.names[self.next]
            self.next += 1
            if name not in skip and os.path.exists(os.path.join(self.folder, name)):
                taken.append(name)
        return taken

    def _list(self, skip: set[str]) -> None:
        """List the folder again: its entries but ``skip``, oldest first, none handed out yet."""
        self.names, self.next, self.listed_at = pending(self.jobs_dir, skip), 0, time.monotonic()


def run_runner(jobs_dir: Path, workers: int, idle_seconds: float = RUNNER_IDLE_SECONDS) -> int:
    """Serve the queue of ``jobs_dir`` with at most ``workers`` processes until it stays empty."""
    shared = shared_dir(jobs_dir)
    lock = file_lock(shared / RUNNER_LOCK_FILE)
    try:
        lock.acquire(timeout=2.0)
    except LockTimeout:
        return 0  # another runner serves this folder
    atomic_write_json(
        shared / RUNNER_INFO_FILE,
        {
            "pid": os.getpid(),
            "pid_start": process_start_token(os.getpid()),
            "started": now_iso("microseconds"),
            "workers": workers,
        },
    )
    log(f"runner serves {jobs_dir} with at most {workers} workers")
    pool = _Pool(jobs_dir, workers)
    queue = _Queue(jobs_dir)
    idle_since: float | None = None
    try:
        while True:
            room = pool.room()
            if room:
                pool.dispatch(queue.take(room, pool.in_flight))
            if pool.busy():
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= idle_seconds:
                # Release first, then look once more: a submission that saw the lock still held
                # wrote its queue entry before looking, so it is seen here or it starts a runner.
                lock.release()
                if not pending(jobs_dir, set()):
                    break
                try:
                    lock.acquire(timeout=0)
                except LockTimeout:
                    break
                idle_since = None
            pool.wait(TICK_SECONDS)
    except FileNotFoundError:
        log(f"{jobs_dir} is gone; stopping")
    finally:
        pool.close()
        if lock.is_locked:
            lock.release()
        log("runner stops")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m quark_cli.jobs.local_worker``."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # started by a quark that blocks it
    parser = argparse.ArgumentParser(prog="python -m quark_cli.jobs.local_worker")
    sub = parser.add_subparsers(dest="role", required=True)
    runner = sub.add_parser("runner", help="serve the queue of a jobs folder")
    runner.add_argument("jobs_dir", type=Path)
    runner.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    worker = sub.add_parser("worker", help="run jobs named on stdin (started by the runner)")
    worker.add_argument("jobs_dir", type=Path)
    args = parser.parse_args(argv)
    if args.role == "runner":
        return run_runner(args.jobs_dir.resolve(), max(1, args.workers))
    return run_worker(args.jobs_dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
