"""``SlurmAsyncJobManager``: myQLM jobs in the queue of a SLURM cluster.

``quark submit`` writes the job into its folder of the run directory and hands a small batch script
to ``sbatch --parsable``; the node runs ``python -m quark_cli.jobs.slurm_worker`` with the same
interpreter as the submitting ``quark``, which writes the result next to the job. So the cluster
needs the run directory on a filesystem that the nodes share, and the same Python environment (the
path of ``sys.executable``) on the nodes: the usual set-up of a login node and its cluster.

One job folder (``context.job_dir``; the job file ``jobs/<job-key>.json`` beside it is the engine's)::

    slurm.sh        the batch script, kept for the user to read or to submit again by hand
    slurm.job       the qat.core.Job, myQLM's own serialisation
    slurm.result.json  the qat.core.Result as JSON (no pickle), written atomically by the worker
    slurm.log       what the job printed (SLURM's --output), tracebacks included

Status (SLURM state -> AsyncStatus): PENDING, CONFIGURING, REQUEUED, SUSPENDED and the other waiting
states -> SUBMITTED; RUNNING, COMPLETING -> RUNNING; COMPLETED with a result file -> DONE; CANCELLED ->
CANCELLED; FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, PREEMPTED, BOOT_FAIL, DEADLINE, a job SLURM no
longer knows and that left no result -> FAILED. Not taken for an end: a state we do not know (STOPPED,
...) stays RUNNING with a warning; COMPLETED without a result stays RUNNING with a warning until
``result_grace`` seconds (default 300) after the job's end, then FAILED (a shared filesystem may show
the worker's result file late). The SLURM state is the first word of ``status_reason``, which the
engine saves as the job's ``error`` and puts in the stack's record.

One ``squeue`` call per collect covers every pending job of a run (``get_statuses``); ``squeue -t
all`` still lists finished jobs for ``MinJobAge`` seconds. Jobs it no longer lists cost one more
call for all of them, ``sacct`` (then ``sacct -c``, the job completion log, on clusters without
accounting); a FAILED job costs one ``scontrol show job`` for its exit code.

Each submission is tagged (``--comment=quark-submission:<id>``, and the first line of its log), so
that ``find_submitted`` tells whether a ``quark`` process killed during ``sbatch`` got its job queued:
such a job is adopted, never submitted twice.

Submission errors (no ``sbatch``, no controller, a job ``sbatch`` refuses) raise
``NotSubmittedError``: nothing reached the queue, the engine drops the job's intent and a later
``collect`` submits it; an ``sbatch`` that timed out may have queued the job, so it raises
``TransientServiceError`` and the next ``collect`` looks for the job by its tag. While polling, a
controller that does not answer raises ``TransientServiceError`` (the jobs stay as they were, the
next collect asks again) and a missing command ``QuarkError``. The commands are run and their
answers read in ``quark_cli.jobs.slurm_commands``. Importing this module does not import myQLM.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any, cast

from quark_cli.atomic import atomic_write_bytes
from quark_cli.disk import open_regular, read_regular
from quark_cli.errors import NotSubmittedError, QuarkError
from quark_cli.jobs.base import AsyncJobManager, AsyncStatus, SubmissionUnknownError, TransientServiceError
from quark_cli.jobs.slurm_commands import (
    FINAL_STATES,
    RUNNING_STATES,
    SLURM_ERRORS,
    WAITING_STATES,
    cluster_name,
    map_state,
    run_slurm,
    sacct,
    scontrol_exit_code,
    slurm_stamp,
    slurm_state,
    squeue,
)
from quark_cli.stamps import interval, now_iso

SCRIPT_FILE = "slurm.sh"
JOB_FILE = "slurm.job"
RESULT_FILE = "slurm.result.json"
LOG_FILE = "slurm.log"

#: Seconds after a COMPLETED job's end during which its result file is waited for: an NFS client may
#: see a file another node wrote only after its attribute cache expires (60 s by default).
DEFAULT_RESULT_GRACE = 300.0  # sbatch and squeue retry an unreachable controller for about MessageTimeout

SUBMISSION_TAG = "quark-submission:"
#: sbatch options quark-cli sets itself: the job's files, its folder and its tag depend on them.
RESERVED_OPTIONS = {"--output": "-o", "--error": "-e", "--chdir": "-D", "--comment": None}


class SlurmAsyncJobManager(AsyncJobManager):
    """One myQLM job in a SLURM queue; the module config holds the ``#SBATCH`` settings.

    Config keys: ``partition``, ``time_limit``, ``cpus``, ``memory``, ``account`` (empty: the
    cluster's default) and ``extra_sbatch`` (a list of further sbatch options, one per line).
    """

    @property
    def job_dir(self) -> Path:
        if self.context is None:
            raise RuntimeError("SlurmAsyncJobManager needs a JobContext: its job lives in a folder")
        return Path(self.context.job_dir).resolve()

    @property
    def slurm_id(self) -> str:
        return str(self._job_info["id"])

    @property
    def submission_tag(self) -> str | None:
        """``quark-submission:<id>``: the job's ``--comment`` and first log line, found again by ``find_submitted``."""
        submission_id = self.context.submission_id if self.context else None
        return f"{SUBMISSION_TAG}{submission_id}" if submission_id else None

    # -- submission ---------------------------------------------------------------------------------

    def batch_script(self) -> str:
        """The job script: ``#SBATCH`` lines from the config, then the worker on this interpreter.

        Values are checked only so far as the script's shape needs (one line each); ``sbatch``
        judges the rest and its refusal reaches the user as it is.
        """
        config = dict(self.context.config if self.context else {})
        job_dir = self.job_dir
        if '"' in str(job_dir):
            raise ValueError(
                f"the run directory {job_dir} has a double quote in its path, which #SBATCH lines cannot hold"
            )
        key = self.context.key if self.context else job_dir.name
        tag = self.submission_tag
        options = [
            f"--job-name=quark-{key}",
            f'--output="{job_dir / LOG_FILE}"',
            f'--chdir="{job_dir}"',
            "--ntasks=1",
            *([f"--comment={tag}"] if tag else []),
        ]
        for name, flag in (
            ("cpus", "cpus-per-task"),
            ("partition", "partition"),
            ("time_limit", "time"),
            ("memory", "mem"),
            ("account", "account"),
        ):
            value = config.get(name)
            if value not in (None, ""):
                options.append(f"--{flag}={_word(value, name)}")
        options.extend(_extra_option(line) for line in config.get("extra_sbatch") or [])
        worker = shlex.join(
            [sys.executable, "-m", "quark_cli.jobs.slurm_worker", str(job_dir / JOB_FILE), str(job_dir / RESULT_FILE)]
        )
        lines = [
            "#!/bin/sh",
            *(f"#SBATCH {option}" for option in options),
            f"# quark-cli job {key}. The nodes need this folder on a filesystem they share with the",
            "# submitting machine, and the same Python environment at the same path.",
            *([f'echo "{tag} is SLURM job $SLURM_JOB_ID"'] if tag else []),
            f"exec {worker}",
        ]
        return "\n".join(lines) + "\n"

    def submit(self, job: Any) -> dict[str, str | None]:
        """Write the job and its script into the job folder and ``sbatch`` them; returns id and cluster."""
        from quark_cli.jobs.local_files import job_bytes

        try:
            script = self.batch_script()
        except ValueError as error:
            raise NotSubmittedError(f"SlurmSampler config: {error}") from None
        job_dir = self.job_dir
        job_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in (RESULT_FILE, LOG_FILE):  # an earlier attempt's, on --retry-failed
            (job_dir / stale).unlink(missing_ok=True)
        atomic_write_bytes(job_dir / JOB_FILE, job_bytes(job))
        atomic_write_bytes(job_dir / SCRIPT_FILE, script.encode())
        try:
            answer = run_slurm("sbatch", ["--parsable", SCRIPT_FILE], NotSubmittedError, cwd=job_dir).strip()
        except NotSubmittedError as error:
            if "timed out" not in str(error):  # e.g. "Socket timed out on send/recv": it may be queued
                raise
            raise TransientServiceError(f"{error}; the job may be queued: the next collect looks for it") from None
        job_id, _, cluster = answer.splitlines()[-1].partition(";") if answer else ("", "", "")
        if not job_id.isdigit():
            raise QuarkError(f"sbatch answered {answer!r}, not a job id; the job may be queued: check squeue")
        if not cluster:
            with contextlib.suppress(*SLURM_ERRORS):
                cluster = cluster_name() or ""
        return {"id": job_id, "cluster": cluster or None}

    def find_submitted(self, intent: dict[str, Any]) -> dict[str, str | None] | None:
        """Whether an interrupted ``quark`` process got its job into the queue, by the job's tag.

        ``slurm.sh`` holds the submission's tag before ``sbatch`` runs: without it, sbatch never saw
        this submission. With it, a job that started says so in its log's first line, and SLURM
        lists a queued job (or one that ended less than ``MinJobAge`` ago) with the tag as its
        ``--comment``. Neither: sbatch did not accept it.
        """
        wanted = intent.get("submission_id")
        if not wanted:
            raise SubmissionUnknownError("the intent has no submission_id (saved by an older quark-cli)")
        tag = f"{SUBMISSION_TAG}{wanted}"
        try:
            script = read_regular(self.job_dir / SCRIPT_FILE).decode()
        except FileNotFoundError:
            return None
        if f"--comment={tag}\n" not in script:
            return None
        found = re.findall(rf"^{re.escape(tag)} is SLURM job (\d+)$", _first_line(self.job_dir / LOG_FILE) or "")
        if not found:
            out = run_slurm("squeue", ["-h", "-t", "all", "--me", "-o", "%i|%k"])
            found = [
                job_id for job_id, _, comment in (line.partition("|") for line in out.splitlines()) if comment == tag
            ]
        if not found:
            return None
        cluster = None
        with contextlib.suppress(*SLURM_ERRORS):
            cluster = cluster_name()
        return {"id": found[0], "cluster": cluster}

    def _handle_submit_info(self, value: Any) -> None:
        """Keep the SLURM job id and cluster name: all that later processes need to find the job."""
        self.set_info(id=value["id"], cluster=value["cluster"])

    # -- status ------------------------------------------------------------------------------------

    def get_status(self) -> AsyncStatus:
        return self.get_statuses([self])[0]

    @classmethod
    def get_statuses(cls, managers: list[AsyncJobManager]) -> list[AsyncStatus]:
        """One ``squeue`` for all jobs; one ``sacct`` for those it no longer lists (see the module doc)."""
        jobs = cast(list[SlurmAsyncJobManager], managers)
        rows = squeue([job.slurm_id for job in jobs])
        forgotten = [job.slurm_id for job in jobs if job.slurm_id not in rows]
        accounted = sacct(forgotten) if forgotten else {}
        statuses = []
        for job in jobs:
            row = rows.get(job.slurm_id) or accounted.get(job.slurm_id)
            statuses.append(job._status_from(row))
        return statuses

    def _status_from(self, row: dict[str, str] | None) -> AsyncStatus:
        self.status_reason = None
        self.status_warning = None
        has_result = (self.job_dir / RESULT_FILE).exists()
        if row is None:
            if has_result:  # ended long ago and forgotten; the worker writes a result only on success
                return AsyncStatus.DONE
            self.status_reason = f"UNKNOWN: SLURM no longer knows job {self.slurm_id} and it left no result"
            return AsyncStatus.FAILED
        state = slurm_state(row["state"])
        status = map_state(state, has_result)
        self._note_times(row, status)
        if state not in FINAL_STATES | WAITING_STATES | RUNNING_STATES:
            self.status_warning = f"SLURM state {state} is not one quark knows; the job stays pending"
        elif state == "COMPLETED" and not has_result and self._within_grace(row):
            self.status_warning = (
                f"COMPLETED, but its result is not visible in {self.job_dir / RESULT_FILE} yet (a shared "
                f"filesystem may show it late); waited for until {self.result_grace:g} s after the job's end"
            )
            return AsyncStatus.RUNNING
        if status in (AsyncStatus.FAILED, AsyncStatus.CANCELLED):
            self.status_reason = self._reason(state, row, has_result)
        return status

    @property
    def result_grace(self) -> float:
        """Seconds after a job's end during which a missing result is waited for (``result_grace``)."""
        config = self.context.config if self.context else {}
        return float(config.get("result_grace", DEFAULT_RESULT_GRACE))

    def _within_grace(self, row: dict[str, str]) -> bool:
        """True while the job ended less than ``result_grace`` seconds ago by the cluster's clock, or when
        its end time is unknown (the wait then starts when quark first sees it COMPLETED)."""
        ended = slurm_stamp(row.get("end") or "")
        if ended is None:
            ended = self._job_info.setdefault("completed_seen", now_iso())
        waited = interval(ended, now_iso()).seconds
        return waited is None or waited < self.result_grace  # None: an end ahead of our clock

    def _note_times(self, row: dict[str, str], status: AsyncStatus) -> None:
        """SLURM's submit, start and end times; a waiting job's start and end are only forecasts."""
        times = {"service_submitted": row.get("submit")}
        if status is not AsyncStatus.SUBMITTED:
            times["service_started"] = row.get("start")
        if status.is_final:
            times["service_finished"] = row.get("end")
        self.set_info(**{name: stamp for name, value in times.items() if (stamp := slurm_stamp(value or ""))})

    def _reason(self, state: str, row: dict[str, str], has_result: bool) -> str:
        """The SLURM state first, then what helps: exit code and last log line, or the time limit."""
        if state == "COMPLETED":
            return (
                f"COMPLETED without a result in {self.job_dir / RESULT_FILE}: is the run directory on a "
                "filesystem the nodes share?"
            )
        if state not in FINAL_STATES:
            return f"{state}: a SLURM state quark-cli does not know"
        if state == "TIMEOUT" and row.get("time_limit"):
            return f"TIMEOUT (time limit {row['time_limit']})"
        if state != "FAILED":
            return state
        code, _, signal = (row.get("exit_code") or scontrol_exit_code(self.slurm_id) or "").partition(":")
        how = f"exit code {code}" if code not in ("", "0") else f"signal {signal}" if signal not in ("", "0") else ""
        last = _last_line(self.job_dir / LOG_FILE)
        return "FAILED" + (f" ({how})" if how else "") + (f": {last}" if last else "")

    # -- result and cancel -------------------------------------------------------------------------

    def get_result(self) -> Any:
        """The ``qat.core.Result`` the worker saved; only once the status is DONE."""
        from quark_cli.jobs.local_files import load_result

        return load_result(self.job_dir / RESULT_FILE)

    def cancel(self) -> bool:
        """``scancel`` the job if SLURM still runs or queues it; True if this call cancelled it."""
        row = squeue([self.slurm_id]).get(self.slurm_id)
        if row is None or slurm_state(row["state"]) in FINAL_STATES:
            return False
        run_slurm("scancel", [self.slurm_id])
        self.status_reason = "CANCELLED"
        return True


def _first_line(path: Path) -> str | None:
    """The job log's first line (at most 1,024 bytes of it); None if there is no such regular file."""
    try:
        fd = open_regular(path)  # a FIFO in the log's place does not hang the poll, a device is not read on
    except OSError:
        return None
    try:
        return os.read(fd, 1024).split(b"\n", 1)[0].decode(errors="replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)


def _last_line(path: Path, limit: int = 300) -> str | None:
    """The job log's last non-empty line (the worker ends a failure with its one-line error), out
    of its last 4,096 bytes; None if there is none or no such regular file."""
    try:
        fd = open_regular(path)
    except OSError:
        return None
    try:
        tail = os.pread(fd, 4096, max(0, os.fstat(fd).st_size - 4096))
    except OSError:
        return None
    finally:
        os.close(fd)
    lines = [line.strip() for line in tail.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        return None
    return lines[-1] if len(lines[-1]) <= limit else lines[-1][: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------------
# config values


def _word(value: Any, name: str) -> str:
    """A value for one ``#SBATCH --flag=value`` line: one word, no line break."""
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"{name} must be one word without spaces, not {value!r}")
    return text


def _extra_option(line: Any) -> str:
    """An ``extra_sbatch`` entry as an sbatch option: ``--qos=debug`` or ``#SBATCH --qos=debug``."""
    text = str(line).strip()
    if text.startswith("#SBATCH"):
        text = text[len("#SBATCH") :].strip()
    if not text.startswith("-") or "\n" in text or "\r" in text:
        raise ValueError(f"extra_sbatch: {line!r} is not one sbatch option such as '--qos=debug'")
    name = re.match(r"--[\w-]+|-\w", text)
    for long, short in RESERVED_OPTIONS.items():
        if name and name.group() in (long, short):
            raise ValueError(
                f"extra_sbatch: {line!r}: quark-cli sets {long} itself (the job's files are in its folder)"
            )
    return text
