"""``QaptivaAsyncJobManager``: jobs on an Eviden Qaptiva (QLMaaS) service through ``qat.qlmaas``.

Connection settings come from the module config (``hostname``, ``port``, ``check_host``, ``timeout``,
``qpu``); credentials from the client's own sources: ``QLM_USER`` / ``QLM_PASSWD`` or a ``~/.netrc``
entry for the host (which the client prefers when both exist). We check that one of them exists
before connecting, and run the client with an empty stdin, so it can never sit at a password prompt
under cron. Only the job id, host and port are saved; never a password or a token.

Status mapping (the client's status name -> AsyncStatus):
WAITING, PENDING, IN_BUCKET, SLURM_OFFLOAD, SLURM_SENT -> SUBMITTED; RUNNING -> RUNNING; DONE -> DONE;
CANCELLED -> CANCELLED; FAILED, STOPPED, DELETED, UNKNOWN_JOB -> FAILED, with the status name as the
reason. A status this list does not know is not an end: the job stays RUNNING, with a warning.
"""

from __future__ import annotations

import contextlib
import io
import logging
import netrc
import os
import random
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from quark_cli.errors import NotSubmittedError, ServiceAuthError
from quark_cli.jobs.base import AsyncJobManager, AsyncStatus, SubmissionUnknownError, TransientServiceError

log = logging.getLogger("quark_cli")

SUBMITTED_STATES = {"WAITING", "PENDING", "IN_BUCKET", "SLURM_OFFLOAD", "SLURM_SENT"}
STATUS_MAP = {
    **dict.fromkeys(SUBMITTED_STATES, AsyncStatus.SUBMITTED),
    "RUNNING": AsyncStatus.RUNNING,
    "DONE": AsyncStatus.DONE,
    "CANCELLED": AsyncStatus.CANCELLED,
}
DEFAULT_PORT = 443
DATE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # JobInfo dates, e.g. 2026-11-25 22:39:54.512000
DEFAULT_TIMEOUT = 30
RETRIES = 6  # with FIRST_DELAY doubling up to MAX_DELAY: about 3 s of a service's hiccup per call
FIRST_DELAY = 0.1
MAX_DELAY = 5.0
TAG = "quark_submission"  # our key in a batch's meta_data: the submission_id, reported back by get_jobs_info
TRANSIENT_MARKERS = (
    "Service Unavailable",
    "Could not connect",
    "timed out",
    "code 50",
    "Bad Gateway",
    "Gateway Timeout",
)

_connections: dict[tuple[str, int, bool], Any] = {}


FAILED_STATES = {"FAILED", "STOPPED", "DELETED", "UNKNOWN_JOB"}


def map_status(name: str) -> tuple[AsyncStatus, str | None, str | None]:
    """AsyncStatus, failure reason and warning for a QLMaaS status name such as ``'waiting'``."""
    upper = str(name).upper()
    if upper in FAILED_STATES:
        return AsyncStatus.FAILED, upper, None
    if upper not in STATUS_MAP:
        return AsyncStatus.RUNNING, None, f"Qaptiva status {upper} is not one quark knows; the job stays pending"
    status = STATUS_MAP[upper]
    return status, (upper if status is AsyncStatus.CANCELLED else None), None


def service_times(info: Any) -> dict[str, str]:
    """The dates of a client ``JobInfo`` as ISO 8601 (the service's clock, no zone), for ``set_info``."""
    times = {}
    for ours, theirs in (
        ("service_submitted", "submission_date"),
        ("service_started", "starting_date"),
        ("service_finished", "ending_date"),
    ):
        text = getattr(info, theirs, None)
        try:
            times[ours] = datetime.strptime(text, DATE_FORMAT).isoformat()
        except (TypeError, ValueError):
            continue
    return times


def has_credentials(hostname: str) -> bool:
    """True when the client will find a user and password without asking for them."""
    if os.environ.get("QLM_USER") and os.environ.get("QLM_PASSWD"):
        return True
    path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
    try:
        return netrc.netrc(path).authenticators(hostname) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def is_transient(error: BaseException) -> bool:
    """Errors worth another try: lost connections, time-outs and 5xx answers."""
    if isinstance(error, (TimeoutError, ConnectionError, OSError)) and not isinstance(error, FileNotFoundError):
        return True
    if type(error).__name__ in {"CannotSendRequest", "RemoteDisconnected", "BadStatusLine", "IncompleteRead"}:
        return True
    return isinstance(error, RuntimeError) and any(marker in str(error) for marker in TRANSIENT_MARKERS)


def backoff() -> Any:
    """Waits between tries: doubling from FIRST_DELAY up to MAX_DELAY, each with +-50 % jitter."""
    delay = FIRST_DELAY
    while True:
        yield delay * (0.5 + random.random())
        delay = min(delay * 2, MAX_DELAY)


class SubmittedJob:
    """What ``submit`` returns for a job found on the service instead of the client's AsyncResult."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id


@contextlib.contextmanager
def quiet_client():
    """Keep the client's prints off our stdout (--json must stay JSON) and its hands off stdin."""
    captured = io.StringIO()
    stdin = sys.stdin
    sys.stdin = io.StringIO("")
    try:
        with contextlib.redirect_stdout(captured):
            yield
    finally:
        sys.stdin = stdin
        for line in captured.getvalue().splitlines():
            log.info("qlmaas: %s", line)


class QaptivaAsyncJobManager(AsyncJobManager):
    """One job on a Qaptiva service; the seed's ``QaptivaAsyncJobManager``."""

    concurrent_submissions = False  # one QLMaaS connection per command, not checked for use from two threads

    @property
    def settings(self) -> dict[str, Any]:
        config = dict(self.context.config if self.context else {})
        return {
            "hostname": self._job_info.get("host") or config.get("hostname") or "localhost",
            "port": int(self._job_info.get("port") or config.get("port") or DEFAULT_PORT),
            "check_host": bool(config.get("check_host", True)),
            "timeout": int(config.get("timeout") or DEFAULT_TIMEOUT),
            "qpu": config.get("qpu") or "qat.qpus:LinAlg",
        }

    def connection(self) -> Any:
        """A logged-in client connection, shared by every job on the same service in this process."""
        s = self.settings
        key = (s["hostname"], s["port"], s["check_host"])
        if key in _connections:
            return _connections[key]
        if not has_credentials(s["hostname"]):
            raise NotSubmittedError(
                f"no Qaptiva credentials for {s['hostname']}: set QLM_USER and QLM_PASSWD, or add "
                f"'machine {s['hostname']} login USER password PASS' to ~/.netrc"
            )
        from qat.qlmaas import QLMaaSConnection

        try:
            with quiet_client():
                connection = self._retry(
                    "connect",
                    QLMaaSConnection,
                    hostname=s["hostname"],
                    port=s["port"],
                    check_host=s["check_host"],
                    timeout=s["timeout"],
                )
        except RuntimeError as error:
            if "401" in str(error) or "Unauthorized" in str(error):
                raise ServiceAuthError(
                    f"Qaptiva at {s['hostname']}:{s['port']} refused the credentials; check QLM_USER / "
                    "QLM_PASSWD or ~/.netrc"
                ) from None
            raise
        _connections[key] = connection
        return connection

    def _retry(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Call the client, retrying transient faults with capped exponential backoff and jitter.

        Only for calls that are safe to repeat (reads, cancel): never for a submission. Raises
        TransientServiceError when the service still has not answered after ``RETRIES`` tries.
        """
        delays = backoff()
        for attempt in range(1, RETRIES + 1):
            try:
                return function(*args, **kwargs)
            except Exception as error:
                if not is_transient(error):
                    raise
                if attempt == RETRIES:
                    raise TransientServiceError(f"{what}: {error} (after {RETRIES} tries)") from error
                log.warning("qlmaas %s failed (%s), attempt %d of %d", what, error, attempt, RETRIES)
                time.sleep(next(delays))
        raise AssertionError("unreachable")

    def submit(self, job: Any) -> Any:
        """Submit a myQLM job to the configured remote QPU; returns the client's ``AsyncResult``.

        The job goes as a one-job batch tagged with the engine's ``submission_id``, so that the
        service's job list tells whether a submission that failed on the way (or whose process was
        killed) arrived. A submission is repeated only after that list shows it did not; duplicates
        the client makes itself (it resends a request after a 503) are cancelled.
        """
        s = self.settings
        try:
            connection = self.connection()
        except (RuntimeError, TransientServiceError) as error:
            raise NotSubmittedError(f"cannot reach Qaptiva at {s['hostname']}:{s['port']}: {error}") from None
        from qat.core import Batch

        tag = self.context.submission_id if self.context else None
        batch = Batch(jobs=[job], meta_data={TAG: tag} if tag else None)
        delays = backoff()
        failed: Exception | None = None
        for attempt in range(1, RETRIES + 1):
            with quiet_client():
                # read-only, and right before the submission: it absorbs the request the client
                # resends after a fault, so the submission itself is never sent twice
                qpu = self._retry("get_qpu", lambda: connection.get_qpu(s["qpu"])())
            try:
                with quiet_client():
                    answer = qpu.submit(batch)
            except Exception as error:
                if not is_transient(error):
                    raise
                failed = error
            else:
                if failed is not None:
                    self._cancel_duplicates(tag, keep=answer.job_id)
                return answer
            if tag is None:
                raise TransientServiceError(f"submit: {failed}; cannot tell whether the job arrived") from failed
            arrived = self._tagged(tag, "submit")
            if arrived:
                self._cancel_duplicates(tag, keep=arrived[0].id, infos=arrived)
                return SubmittedJob(arrived[0].id)
            log.warning("qlmaas submit failed (%s), attempt %d of %d; the job did not arrive", failed, attempt, RETRIES)
            time.sleep(next(delays))
        raise NotSubmittedError(
            f"Qaptiva at {s['hostname']}:{s['port']} did not take the job after {RETRIES} tries ({failed}); "
            "'quark collect' submits it later"
        )

    def _tagged(self, tag: str, what: str) -> list[Any]:
        """The service's jobs carrying our tag, oldest first; SubmissionUnknownError if it reports no tags."""
        connection = self.connection()
        with quiet_client():
            infos = self._retry(f"{what}: get_jobs_info", connection.get_jobs_info)
        if infos and not any(info.meta_data for info in infos):
            raise SubmissionUnknownError(
                f"Qaptiva at {self.settings['hostname']} does not report job tags; compare 'quark status' "
                "ids with its job list"
            )
        found = [info for info in infos if (info.meta_data or {}).get(TAG) == tag]
        return sorted(found, key=lambda info: (info.submission_date or "", info.id))

    def _cancel_duplicates(self, tag: str | None, keep: str, infos: list[Any] | None = None) -> None:
        """Cancel the jobs with our tag other than ``keep``: copies of one submission, made by retries."""
        if tag is None:
            return
        try:
            infos = self._tagged(tag, "submit") if infos is None else infos
            copies = [info.id for info in infos if info.id != keep]
            connection = self.connection()
            for job_id in copies:
                log.warning("qlmaas: job %s duplicates %s (one submission sent twice); cancelling it", job_id, keep)
                with quiet_client():
                    self._retry("cancel_job", connection.cancel_job, job_id)
        except Exception as error:  # a leftover copy costs queue time, not correctness
            log.warning("qlmaas: could not check for duplicates of %s: %s", keep, error)

    def find_submitted(self, intent: dict[str, Any]) -> dict[str, Any] | None:
        """The service's job list, by our tag: the job if the submission arrived, None if it did not."""
        tag = intent.get("submission_id")
        if not tag:
            raise SubmissionUnknownError("the intent has no submission_id (saved by an older quark-cli)")
        arrived = self._tagged(tag, "find_submitted")
        if not arrived:
            return None
        self._cancel_duplicates(tag, keep=arrived[0].id, infos=arrived)
        s = self.settings
        return {"id": arrived[0].id, "host": s["hostname"], "port": s["port"]}

    def _handle_submit_info(self, value: Any) -> None:
        """Keep the job id, host and port only: touching any other AsyncResult attribute blocks."""
        self.set_info(id=value.job_id, host=self.settings["hostname"], port=self.settings["port"])

    def get_status(self) -> AsyncStatus:
        connection = self.connection()
        with quiet_client():
            name = self._retry("get_status", connection.get_status, self._job_info["id"])
        status, self.status_reason, self.status_warning = map_status(name)
        return status

    @classmethod
    def get_statuses(cls, managers: list[AsyncJobManager]) -> list[AsyncStatus]:
        """One ``get_jobs_info`` call per service for all its jobs, instead of one call per job."""
        by_service: dict[tuple[str, int], list[QaptivaAsyncJobManager]] = {}
        for manager in managers:
            s = manager.settings
            by_service.setdefault((s["hostname"], s["port"]), []).append(manager)
        statuses: dict[int, AsyncStatus] = {}
        for jobs in by_service.values():
            connection = jobs[0].connection()
            with quiet_client():
                infos = jobs[0]._retry("get_jobs_info", connection.get_jobs_info)
            from qat.comm.qlmaas.ttypes import JobStatus

            known = {info.id: info for info in infos}
            for manager in jobs:
                info = known.get(manager._job_info["id"])
                name = JobStatus._VALUES_TO_NAMES.get(info.status, str(info.status)) if info else "UNKNOWN_JOB"
                status, manager.status_reason, manager.status_warning = map_status(name)
                if info is not None:
                    manager.set_info(**service_times(info))
                statuses[id(manager)] = status
        for manager in managers:
            if statuses[id(manager)] is AsyncStatus.FAILED and manager.status_reason == "UNKNOWN_JOB":
                statuses[id(manager)] = manager.get_status()  # missing from the list: ask once more, alone
        return [statuses[id(manager)] for manager in managers]

    def get_result(self) -> Any:
        """The job's ``Result`` (unwrapped from the one-job batch it was submitted as)."""
        from qat.core import BatchResult

        connection = self.connection()
        with quiet_client():
            job = self._retry("get_job", connection.get_job, self._job_info["id"])
            result = self._retry("get_result", job.get_result)
        return result.results[0] if isinstance(result, BatchResult) and len(result.results) == 1 else result

    def cancel(self) -> bool:
        connection = self.connection()
        with quiet_client():
            return bool(self._retry("cancel_job", connection.cancel_job, self._job_info["id"]))
