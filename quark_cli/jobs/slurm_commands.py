"""The SLURM client commands and what they answer: ``run_slurm`` runs one, the others read job
states and times out of ``squeue``, ``sacct`` and ``scontrol`` (see ``quark_cli.jobs.slurm`` for how
the backend uses them)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from quark_cli.errors import QuarkError
from quark_cli.jobs.base import AsyncStatus, TransientServiceError

COMMAND_TIMEOUT = 120.0

WAITING_STATES = {
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESV_DEL_HOLD",
    "SUSPENDED",
    "RESIZING",
    "SPECIAL_EXIT",
}
RUNNING_STATES = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}
FINAL_STATES = {
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "REVOKED",
}
SLURM_ERRORS = (QuarkError, TransientServiceError)  # what run_slurm raises
INSTALL_HINT = "install the SLURM client commands, or run quark on a login node of the cluster"


def slurm_state(text: str) -> str:
    """``CANCELLED`` from ``CANCELLED by 0`` (sacct) or ``CANCELLED+`` (squeue on some versions)."""
    words = text.split()
    return words[0].rstrip("+").upper() if words else "UNKNOWN"


def map_state(state: str, has_result: bool) -> AsyncStatus:
    """The AsyncStatus of a SLURM job state; a COMPLETED job is DONE only once its result exists.

    A state not listed here is not taken for an end: the job stays RUNNING (``SlurmAsyncJobManager._status_from``
    warns).
    """
    if state in WAITING_STATES:
        return AsyncStatus.SUBMITTED
    if state in RUNNING_STATES or state not in FINAL_STATES:
        return AsyncStatus.RUNNING
    if state == "COMPLETED" and has_result:
        return AsyncStatus.DONE
    if state == "CANCELLED":
        return AsyncStatus.CANCELLED
    return AsyncStatus.FAILED


def run_slurm(
    command: str,
    args: Sequence[str],
    error: type[Exception] = TransientServiceError,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run a SLURM command (with ``env`` added to this process's environment) and return its stdout.

    Raises ``error`` with the command's own message when it fails, ``TransientServiceError`` when
    it does not answer in time, and a ``QuarkError`` (``error`` if it is one) when it is not on PATH.
    """
    path = shutil.which(command)
    if path is None:
        missing = error if issubclass(error, QuarkError) else QuarkError
        raise missing(f"{command} not found on PATH: {INSTALL_HINT}")
    try:
        done = subprocess.run(
            [path, *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            env={**os.environ, **env} if env else None,
        )
    except subprocess.TimeoutExpired:
        raise TransientServiceError(
            f"{command} did not answer within {COMMAND_TIMEOUT:.0f} s; is the SLURM controller up?"
        ) from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        for prefix in (f"{command}: error: ", f"{command}: "):
            lines = [line.removeprefix(prefix) for line in lines]
        raise error(f"{command} failed: {'; '.join(lines) or f'exit code {done.returncode}'}")
    return done.stdout


#: What squeue and sacct are asked to print times as: seconds since the epoch, a zone-free instant.
#: Their default (``2026-10-25T02:30:00``, local time without offset) is ambiguous in the hour a
#: daylight-saving change repeats: a job queued across it read as queued for 0 s or -40 min.
TIME_FORMAT_ENV = {"SLURM_TIME_FORMAT": "%s"}


def slurm_stamp(value: str) -> str | None:
    """A SLURM time as ISO 8601 in UTC with offset; None for ``N/A``, ``Unknown``, ``None`` or 0.

    ``1792889400`` (epoch seconds, as asked for with TIME_FORMAT_ENV) is exact. A SLURM that ignored
    the request prints local time without offset (``2026-11-25T22:49:12``): read in this machine's
    zone, right except within the hour a daylight-saving change repeats.
    """
    value = value.strip()
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC).isoformat() if int(value) > 0 else None
    try:
        return datetime.fromisoformat(value).astimezone(UTC).isoformat()
    except ValueError:
        return None


def cluster_name() -> str | None:
    """``ClusterName`` of the cluster the commands talk to (asked once per process and SLURM_CONF)."""
    return _cluster_name(os.environ.get("SLURM_CONF"))


@functools.cache
def _cluster_name(slurm_conf: str | None) -> str | None:
    for line in run_slurm("scontrol", ["show", "config"]).splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "ClusterName":
            return value.strip() or None
    return None


def squeue(ids: list[str]) -> dict[str, dict[str, str]]:
    """State, reason and times of the jobs the controller still holds (finished ones included)."""
    if not ids:
        return {}
    try:
        out = run_slurm(
            "squeue", ["-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T|%l|%V|%S|%e"], env=TIME_FORMAT_ENV
        )
    except TransientServiceError as error:
        if "Invalid job id" in str(error):  # asked for one job only, and SLURM has forgotten it
            return {}
        raise
    rows = {}
    for line in out.splitlines():
        fields = line.split("|")
        if len(fields) == 6:
            rows[fields[0]] = dict(zip(("id", "state", "time_limit", "submit", "start", "end"), fields, strict=True))
    return rows


def sacct(ids: list[str]) -> dict[str, dict[str, str]]:
    """Jobs the controller forgot: from accounting, else from the job completion log (``sacct -c``)."""
    fields = "JobID,State,ExitCode,Timelimit,Submit,Start,End"
    args = ["-n", "-P", "-X", "-j", ",".join(ids), "-o", fields]
    try:
        out = run_slurm("sacct", args, env=TIME_FORMAT_ENV)
    except SLURM_ERRORS:
        try:
            out = run_slurm("sacct", ["-c", *args], env=TIME_FORMAT_ENV)
        except SLURM_ERRORS:
            return {}  # no accounting and no completion log: such jobs count as unknown
    rows = {}
    for line in out.splitlines():
        values = line.split("|")
        if len(values) == 7:
            names = ("id", "state", "exit_code", "time_limit", "submit", "start", "end")
            rows[values[0]] = dict(zip(names, values, strict=True))
    return rows


def scontrol_exit_code(job_id: str) -> str | None:
    """``3:0`` (exit code, signal) from ``scontrol show job``, or None once SLURM forgot the job."""
    try:
        out = run_slurm("scontrol", ["show", "job", "-o", job_id])
    except SLURM_ERRORS:
        return None
    for word in out.split():
        if word.startswith("ExitCode="):
            return word.partition("=")[2]
    return None
