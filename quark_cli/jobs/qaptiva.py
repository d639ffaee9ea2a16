"""``QaptivaAsyncJobManager``: jobs on an Eviden Qaptiva (QLMaaS) service through ``qat.qlmaas``.

Connection settings come from the module config (``hostname``, ``port``, ``check_host``, ``timeout``,
``qpu``); credentials from the client's own sources: ``QLM_USER`` / ``QLM_PASSWD`` or a ``~/.netrc``
entry for the host (which the client prefers when both exist). We check that one of them exists
before connecting, and run the client with an empty stdin, so it can never sit at a password prompt
under cron. Only the job id, host and port are saved; never a password or a token.

Status mapping (the client's status name -> AsyncStatus):
WAITING, PENDING, IN_BUCKET, SLURM_OFFLOAD, SLURM_SENT -> SUBMITTED; RUNNING -> RUNNING; DONE -> DONE;
CANCELLED -> CANCELLED; FAILED, STOPPED, DELETED, UNKNOWN_JOB and anything unknown -> FAILED, with the
status name as the reason.
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
from pathlib import Path
from typing import Any

from quark_cli.errors import NotSubmittedError, ServiceAuthError
from quark_cli.jobs.base import AsyncJobManager, AsyncStatus

log = logging.getLogger("quark_cli")

SUBMITTED_STATES = {"WAITING", "PENDING", "IN_BUCKET", "SLURM_OFFLOAD", "SLURM_SENT"}
STATUS_MAP = {
    **dict.fromkeys(SUBMITTED_STATES, AsyncStatus.SUBMITTED),
    "RUNNING": AsyncStatus.RUNNING,
    "DONE": AsyncStatus.DONE,
    "CANCELLED": AsyncStatus.CANCELLED,
}
DEFAULT_PORT = 443
DEFAULT_TIMEOUT = 30
RETRIES = 4
TRANSIENT_MARKERS = (
    "Service Unavailable",
    "Could not connect",
    "timed out",
    "code 50",
    "Bad Gateway",
    "Gateway Timeout",
)

_connections: dict[tuple[str, int, bool], Any] = {}


def map_status(name: str) -> tuple[AsyncStatus, str | None]:
    """AsyncStatus and failure reason for a QLMaaS status name such as ``'waiting'``."""
    upper = str(name).upper()
    status = STATUS_MAP.get(upper, AsyncStatus.FAILED)
    return status, (upper if status in (AsyncStatus.FAILED, AsyncStatus.CANCELLED) else None)


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
        """Call the client, retrying transient faults with capped exponential backoff and jitter."""
        delay = 0.2
        for attempt in range(1, RETRIES + 1):
            try:
                return function(*args, **kwargs)
            except Exception as error:
                if attempt == RETRIES or not is_transient(error):
                    raise
                log.warning("qlmaas %s failed (%s), attempt %d of %d", what, error, attempt, RETRIES)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def submit(self, job: Any) -> Any:
        """Submit a myQLM job to the configured remote QPU; returns the client's ``AsyncResult``."""
        try:
            connection = self.connection()
        except RuntimeError as error:
            s = self.settings
            raise NotSubmittedError(f"cannot reach Qaptiva at {s['hostname']}:{s['port']}: {error}") from None
        with quiet_client():
            qpu = connection.get_qpu(self.settings["qpu"])()
            return qpu.submit(job)

    def _handle_submit_info(self, value: Any) -> None:
        """Keep the job id, host and port only: touching any other AsyncResult attribute blocks."""
        self.set_info(id=value.job_id, host=self.settings["hostname"], port=self.settings["port"])

    def get_status(self) -> AsyncStatus:
        connection = self.connection()
        with quiet_client():
            name = self._retry("get_status", connection.get_status, self._job_info["id"])
        status, self.status_reason = map_status(name)
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

            known = {info.id: JobStatus._VALUES_TO_NAMES.get(info.status, str(info.status)) for info in infos}
            for manager in jobs:
                status, manager.status_reason = map_status(known.get(manager._job_info["id"], "UNKNOWN_JOB"))
                statuses[id(manager)] = status
        return [statuses[id(manager)] for manager in managers]

    def get_result(self) -> Any:
        connection = self.connection()
        with quiet_client():
            job = self._retry("get_job", connection.get_job, self._job_info["id"])
            return self._retry("get_result", job.get_result)

    def cancel(self) -> bool:
        connection = self.connection()
        with quiet_client():
            return bool(self._retry("cancel_job", connection.cancel_job, self._job_info["id"]))
