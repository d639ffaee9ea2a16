"""``LocalAsyncJobManager``: the embedded default backend, myQLM jobs run detached on this machine.

``quark submit`` must return at once and the circuits must keep running after it exits, so a job is
handed to a background *runner* through files, and every later process reads its state from disk.

One job folder (``context.job_dir``, i.e. ``<run-dir>/jobs/<job-key>/``; the job file
``jobs/<job-key>.json`` beside it is the engine's)::

    local.json         our state: schema_version, id, state, pid of the worker, attempt, times, error
    local.job          the qat.core.Job, myQLM's own (Thrift binary) serialisation, without a pickle
    local.result.json  the job's result once it is done: states, probabilities, amplitudes (JSON)
    local.log          what the worker printed while running this job (tracebacks included)
    local.run.lock     flock held by the worker for as long as it runs the job
    local.state.lock   flock held for a moment around every change of local.json

Shared by all jobs of a run (``<run-dir>/jobs/.local/``, ignored by the engine as a dot folder)::

    queue/<time_ns>-<job-key>   one empty file per queued job, removed when it leaves ``queued``
    runner.lock                 flock held by the runner for its whole life: one runner per folder
    runner.json                 pid, start time and pool size of the last runner
    runner.log                  the runner's and its workers' own messages

State machine of ``local.json`` (``state``)::

    queued ──worker claims──▶ running ──▶ done
      │                          ├──────▶ failed     (myQLM raised; or the worker died)
      └──────── cancel() ────────┴──────▶ cancelled

A worker moves a job ``queued -> running -> done | failed`` only while it holds
``local.run.lock``, and every change is a read-check-write under ``local.state.lock``: a late worker
never overwrites a cancellation, and two workers never run the same job. Jobs run on myQLM's
``qat.qpus.get_default_qpu()``.

A worker that dies (kill -9, OOM killer, reboot) leaves its job FAILED with the reason, never
``running`` forever: the runner marks it at once when it sees its child die, and ``get_status`` marks
it when the state says ``running`` but nobody holds ``local.run.lock`` (an flock dies with its
process, so pid reuse cannot fool it). We do not rerun such a job ourselves: a job that killed its
worker (memory) would likely do it again, and ``quark collect --retry-failed`` is the explicit way.

Queued jobs whose runner is gone (killed, reboot) start again as soon as a ``get_status`` sees them:
it restarts the runner (and puts the job back in the queue folder if its entry was lost).

A job starts as soon as it is submitted and a worker is free, not when ``quark submit`` ends: its
files are staged in the engine's group commit like every other write, and ``submit`` commits the
group (everything staged so far, in order: the job's intent, its files, then its queue entry) unless
a commit happened less than ``FLUSH_INTERVAL_SECONDS`` ago. So a pass of slow stacks (a QAOA
optimisation per job) queues each job at once, and a burst of cheap ones pays one file system sync
per ``FLUSH_INTERVAL_SECONDS``, not one per job; a job left staged by that limit is queued by the next
submission's commit or at the end of the pass. Committing early changes no guarantee: a kill leaves
at most staged writes unwritten, as before, and the job's intent is in place before its queue entry.

Parallelism is bounded by the runner: at most ``workers`` worker processes (``context.config
["workers"]``, default ``os.cpu_count()``, taken from the submission that started the runner), each
running one job at a time. Workers are long-lived (importing myQLM costs ~2 s, too much to pay per
job) and are replaced after ``MAX_JOBS_PER_WORKER`` jobs or when they die. The bound is per run
directory, and workers of a killed runner finish their job uncounted by its successor.

The files are read and written by ``quark_cli.jobs.local_files``; the runner and its workers are
``quark_cli.jobs.local_worker``. POSIX only (flock, sessions, pipes in ``selectors``). Importing
this module does not import myQLM.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

from quark_cli.atomic import json_bytes, private_dirs
from quark_cli.disk import open_regular, read_regular
from quark_cli.group_commit import after_commit, commit_staged, staged_write
from quark_cli.jobs.base import AsyncJobManager, AsyncStatus, SubmissionUnknownError
from quark_cli.jobs.local_files import (
    CANCELLED,
    DONE,
    FAILED,
    JOB_FILE,
    LIVE_STATES,
    LOG_FILE,
    QUEUED,
    RESULT_FILE,
    RUN_LOCK_FILE,
    RUNNER_INFO_FILE,
    RUNNER_LOCK_FILE,
    RUNNER_LOG_FILE,
    RUNNING,
    SCHEMA_VERSION,
    STATE_FILE,
    job_bytes,
    load_result,
    lock_is_held,
    mark_worker_died,
    one_line,
    process_start_token,
    queue_dir,
    read_state,
    shared_dir,
    state_lock,
    touch,
    write_state,
)
from quark_cli.stamps import now_iso

log = logging.getLogger("quark_cli")

_STATUS = {
    QUEUED: AsyncStatus.SUBMITTED,
    RUNNING: AsyncStatus.RUNNING,
    DONE: AsyncStatus.DONE,
    FAILED: AsyncStatus.FAILED,
    CANCELLED: AsyncStatus.CANCELLED,
}

RUNNER_START_TIMEOUT = 15.0
#: Least time between two commits made by ``submit`` (seconds): a job submitted sooner after the last
#: one is queued by the next commit (the next submission's, or the end of the pass).
FLUSH_INTERVAL_SECONDS = 0.05

_last_flush = -FLUSH_INTERVAL_SECONDS  # time.monotonic() of the last commit made by submit()

_SPAWNED: list[subprocess.Popen] = []  # runners started by this process, kept so they are reaped


# ---------------------------------------------------------------------------------------------------
# the runner of a jobs folder


def runner_alive(jobs_dir: Path) -> bool:
    """True when a runner serves ``jobs_dir`` (it holds ``runner.lock``); costs one flock probe."""
    return lock_is_held(shared_dir(jobs_dir) / RUNNER_LOCK_FILE)


def read_runner_info(jobs_dir: Path) -> dict[str, Any] | None:
    """``runner.json`` of the last runner that started in ``jobs_dir`` (it may have exited since)."""
    try:
        return json.loads(read_regular(shared_dir(jobs_dir) / RUNNER_INFO_FILE))
    except (FileNotFoundError, ValueError):
        return None


def ensure_runner(jobs_dir: Path, workers: int) -> bool:
    """Start the detached runner of ``jobs_dir`` unless one is alive; True if this call started one.

    Waits until the new runner holds its lock and has written ``runner.json``, so that the next
    submission of this process sees it and does not start a second one. A runner that cannot get the
    lock within 2 s exits, so a race between two submitting processes costs one short-lived process.
    """
    jobs_dir = jobs_dir.resolve()
    shared = shared_dir(jobs_dir)
    private_dirs(shared)
    lock_path = shared / RUNNER_LOCK_FILE
    if lock_is_held(lock_path):
        return False
    _SPAWNED[:] = [proc for proc in _SPAWNED if proc.poll() is None]
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # the same quark_cli as ours, even uninstalled
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "quark_cli.jobs.local_worker", "runner", str(jobs_dir), "--workers", str(workers)]
    # a FIFO in the log's place must not block the command: refused (NotRegularFileError) instead
    with os.fdopen(open_regular(shared / RUNNER_LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND), "ab") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(jobs_dir),
            env=env,
            close_fds=True,
            start_new_session=True,  # not killed with our terminal or process group
        )
    _SPAWNED.append(proc)
    deadline = time.monotonic() + RUNNER_START_TIMEOUT
    while time.monotonic() < deadline:
        if lock_is_held(lock_path) and (read_runner_info(jobs_dir) or {}).get("pid") == proc.pid:
            return True
        if proc.poll() is not None:  # lost the race to another runner, or crashed (see runner.log)
            return False
        time.sleep(0.01)
    return True


# ---------------------------------------------------------------------------------------------------
# the job manager


def _enqueue(jobs_dir: Path, queue_name: str, workers: int) -> None:
    """Queue a job whose files are in place, and make sure a runner serves the queue.

    Run after the engine's group commit has moved ``local.job`` and ``local.json`` into place (at
    once outside one): a runner never sees a queue entry before its job. A runner that cannot be
    started is not an error of the submission: the job is queued, and the next ``get_status``
    starts a runner again.
    """
    touch(queue_dir(jobs_dir) / queue_name)
    try:
        ensure_runner(jobs_dir, workers)
    except OSError as error:
        log.warning("cannot start the local runner of %s (the next collect tries again): %s", jobs_dir, error)


def _flush_soon() -> None:
    """Commit the active group commit now, so that the job just staged is queued at once; at most
    once per ``FLUSH_INTERVAL_SECONDS`` (a no-op outside a group commit, where nothing is staged)."""
    global _last_flush
    if time.monotonic() - _last_flush < FLUSH_INTERVAL_SECONDS:
        return
    commit_staged()
    _last_flush = time.monotonic()


def default_workers() -> int:
    """One worker per core: myQLM's simulators use one core per job here."""
    return os.cpu_count() or 1


class LocalAsyncJobManager(AsyncJobManager):
    """Runs myQLM jobs in detached processes on this machine; state and results live in the job folder.

    A device module calls ``self.job_manager.submit(job)`` in its ``submit_XXXprocess`` and returns
    the answer (``{"id", "host"}``); any later process rebuilds the manager with ``from_job_info``
    and the same ``JobContext`` and reads the status from disk.
    """

    durable_intent = False  # the job lives in the run directory: a power cut loses it with the intent
    concurrent_submissions = False  # a local submission is a file write: threads would only add hand-offs

    @property
    def job_dir(self) -> Path:
        """The job's own folder (``context.job_dir``); everything of the job is kept there."""
        if self.context is None or self.context.job_dir is None:
            raise ValueError("LocalAsyncJobManager needs a JobContext with the job's folder (job_dir)")
        return Path(self.context.job_dir)

    @property
    def jobs_dir(self) -> Path:
        """The folder of all jobs of the run: one runner and one queue serve it."""
        return self.job_dir.parent

    @property
    def workers(self) -> int:
        """Size of the worker pool: ``config["workers"]``, or the number of cores when unset or 0."""
        value = (self.context.config or {}).get("workers") if self.context else None
        if value is None or value == 0:
            return default_workers()
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"workers must be a positive integer, not {value!r}")
        return value

    def submit(self, job: Any) -> dict[str, str]:
        """Queue a ``qat.core.Job`` and make sure a runner will execute it; returns at once.

        Returns ``{"id": ..., "host": ...}``, the value a module's ``submit_XXXprocess`` returns.
        """
        from qat.core import Job

        if not isinstance(job, Job):
            raise TypeError(f"LocalAsyncJobManager.submit needs a qat.core.Job, not {type(job).__name__}")
        workers = self.workers
        job_dir = self.job_dir
        private_dirs(job_dir)
        previous = read_state(job_dir)
        if previous and previous.get("state") in LIVE_STATES and self._is_live(previous):
            raise RuntimeError(f"{job_dir} already holds a {previous['state']} local job; cancel it first")
        for stale in (RESULT_FILE, LOG_FILE):
            (job_dir / stale).unlink(missing_ok=True)
        staged_write(job_dir / JOB_FILE, job_bytes(job))
        host = socket.gethostname()
        state = {
            "schema_version": SCHEMA_VERSION,
            "id": uuid.uuid4().hex,
            "key": self.context.key if self.context else job_dir.name,
            "host": host,
            "state": QUEUED,
            "queue_name": f"{time.time_ns():020d}-{job_dir.name}",
            "workers": workers,
            "attempt": 0,
            "pid": None,
            "pid_start": None,
            "submitted": now_iso("microseconds"),
            "started": None,
            "finished": None,
            "error": None,
            "submission_id": self.context.submission_id if self.context else None,
        }
        staged_write(job_dir / STATE_FILE, json_bytes(state))
        after_commit(_enqueue, self.jobs_dir, state["queue_name"], workers)
        _flush_soon()  # the job starts now if a worker is free, not when the whole submission ends
        info = {"id": state["id"], "host": host}
        self.set_info(**info)
        return info

    def find_submitted(self, intent: dict[str, Any]) -> dict[str, Any] | None:
        """An interrupted submission reached us if ``local.json`` carries its ``submission_id``.

        ``local.json`` is written (atomically) before the job is queued and a worker runs only the job
        it names, so without our id there the job never ran and never will: submitting is safe.
        """
        wanted = intent.get("submission_id")
        if not wanted:
            raise SubmissionUnknownError("the intent has no submission_id (saved by an older quark-cli)")
        state = read_state(self.job_dir)
        if state is None or state.get("submission_id") != wanted:
            return None
        return {"id": state["id"], "host": state["host"]}

    def read_local_state(self) -> dict[str, Any] | None:
        """The job's ``local.json`` as it is on disk (pid, times, error), or None."""
        return read_state(self.job_dir)

    def get_status(self) -> AsyncStatus:
        """Status from ``local.json``; also restarts a missing runner and fails jobs of dead workers."""
        self.status_reason = None
        state = self._read_own_state()
        if state is None:
            return AsyncStatus.FAILED
        name = state.get("state")
        on_this_host = state.get("host") == socket.gethostname()
        if name == QUEUED and on_this_host:
            self._requeue_if_lost(state)
            ensure_runner(self.jobs_dir, int(state.get("workers") or default_workers()))
        elif name == RUNNING and on_this_host and not self._is_live(state):
            mark_worker_died(self.job_dir, state.get("pid"), "killed or machine restarted")
            state = self._read_own_state()
            if state is None:
                return AsyncStatus.FAILED
            name = state.get("state")
        if name not in _STATUS:
            self.status_reason = f"unknown local job state {name!r} in {self.job_dir / STATE_FILE}"
            return AsyncStatus.FAILED
        if name in (FAILED, CANCELLED):
            self.status_reason = state.get("error") or name
        times = {"service_submitted": "submitted", "service_started": "started", "service_finished": "finished"}
        self.set_info(**{ours: state[theirs] for ours, theirs in times.items() if state.get(theirs)})
        return _STATUS[name]

    def get_result(self) -> Any:
        """The ``qat.core.Result`` the worker saved; only once the status is DONE."""
        state = self._read_own_state()
        if state is None or state.get("state") != DONE:
            found = state.get("state") if state else self.status_reason
            raise RuntimeError(f"the local job in {self.job_dir} is not done ({found})")
        return load_result(self.job_dir / RESULT_FILE)

    def cancel(self) -> bool:
        """Stop the job if it is queued or running; True if this call cancelled it.

        A running job's worker gets SIGTERM while we hold the state lock: the worker cannot finish and
        move on to another job meanwhile (its last step needs that lock), so we never hit the wrong job.
        """
        job_dir = self.job_dir
        with state_lock(job_dir):
            state = read_state(job_dir)
            if state is None or state.get("state") not in LIVE_STATES or not self._same_job(state):
                return False
            if state["state"] == QUEUED:
                (queue_dir(self.jobs_dir) / str(state.get("queue_name"))).unlink(missing_ok=True)
            elif state.get("host") == socket.gethostname() and self._is_live(state):
                pid = int(state["pid"])
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            state.update(state=CANCELLED, error="cancelled on request", finished=now_iso("microseconds"))
            write_state(job_dir, state)
        self.status_reason = "cancelled on request"
        return True

    # -- helpers -----------------------------------------------------------------------------------

    def _read_own_state(self) -> dict[str, Any] | None:
        """``local.json`` if it belongs to this job (same id); sets ``status_reason`` otherwise."""
        try:
            state = read_state(self.job_dir)
        except (OSError, ValueError) as exc:
            self.status_reason = f"cannot read {self.job_dir / STATE_FILE}: {one_line(exc)}"
            return None
        if state is None:
            self.status_reason = f"no local job in {self.job_dir} (folder deleted or never submitted)"
            return None
        if not self._same_job(state):
            self.status_reason = f"{self.job_dir} holds another local job ({state.get('id')})"
            return None
        return state

    def _same_job(self, state: dict[str, Any]) -> bool:
        expected = self._job_info.get("id")
        return expected is None or expected == state.get("id")

    def _is_live(self, state: dict[str, Any]) -> bool:
        """Whether the job is queued, or running in a process that still holds its run lock."""
        if state.get("state") == QUEUED:
            return True
        if not lock_is_held(self.job_dir / RUN_LOCK_FILE):
            return False
        recorded, current = state.get("pid_start"), None
        if state.get("pid") is not None:
            current = process_start_token(int(state["pid"]))
        return recorded is None or current is None or recorded == current

    def _requeue_if_lost(self, state: dict[str, Any]) -> None:
        """Recreate the queue entry of a queued job if it is missing (a submit interrupted midway).

        A queue entry is removed only when its job leaves ``queued``, so this never loses or doubles
        work: should the job have just been claimed, the worker that gets the entry drops it.
        """
        marker = queue_dir(self.jobs_dir) / str(state.get("queue_name"))
        if state.get("queue_name") and not marker.exists():
            touch(marker)
