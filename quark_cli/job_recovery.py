"""Jobs a collect finds in doubt or failed: an interrupted submission asked about, a failed job
retried on request.

``JobRecovery`` is a part of ``quark_cli.engine.BenchmarkManager`` (which gives it ``run`` and
``_context``).
"""

from __future__ import annotations

import logging
from typing import Any

from quark_cli.errors import ServiceAuthError
from quark_cli.interrupts import raised_count, reraise_signal
from quark_cli.jobs.base import (
    AsyncStatus,
    SubmissionUnknownError,
    call_user,
    checked_status,
    load_job_manager_class,
)
from quark_cli.stamps import now_iso
from quark_cli.summary import Summary

log = logging.getLogger("quark_cli")


class JobRecovery:
    """The part of ``BenchmarkManager`` that recovers jobs: those in doubt asked about, failed ones retried."""

    def _resolve_uncertain(self, jobs: list[dict[str, Any]], summary: Summary) -> None:
        """Ask each uncertain job's service whether its interrupted submission arrived; act on it.

        Found: the job is adopted (SUBMITTED with the service's id), never submitted twice. Certainly
        not there: the stack's walk submits it (RETRY), or, if its submit had raised, it fails with
        that error like its stack did. The service cannot say, or asking failed: it stays SUBMITTING
        ("submission uncertain") and the user decides with ``--resubmit-uncertain``.
        """
        for job in jobs:
            signals = raised_count()
            try:
                cls = load_job_manager_class(job["job_manager"])
                info = cls.from_job_info({}, self._context(job)).find_submitted(job)
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # a job manager's code: SystemExit and its kin too
                reraise_signal(signals, error)  # a client that turned a Ctrl-C into its own error
                if isinstance(error, ServiceAuthError):
                    raise
                if isinstance(error, SubmissionUnknownError):
                    log.info("job %s: submission uncertain: %s", job["key"], error)
                else:
                    log.warning("job %s: cannot ask its service about the submission: %s", job["key"], error)
                    summary.errors[job["key"]] = (
                        f"submission uncertain; asking the service failed ({type(error).__name__}: {error})"
                    )
                continue
            if info is not None:
                job.update(status=AsyncStatus.SUBMITTED.value, info=info, error=None, status_since=now_iso())
                job.update(submitted_at=job.get("intent_at") or job["status_since"], adopted_at=job["status_since"])
                log.info("job %s: the interrupted submission reached the service (%s); adopted", job["key"], info)
            elif job.get("error"):
                job.update(status=AsyncStatus.FAILED.value, error=f"not submitted: {job['error']}")
                job.update(status_since=now_iso(), finished_at=now_iso())
            else:
                job.update(status="RETRY", status_since=now_iso())
                log.info("job %s: the interrupted submission never reached the service; submitting it", job["key"])
            self.run.write_job(job)
            summary.changed.append(job["key"])

    def _retry(self, job: dict[str, Any], summary: Summary) -> dict[str, Any]:
        """A failed job, before ``--retry-failed`` pays for it again: still failed on its service?

        A job the service knows is asked first. Reported done now (a result that showed up late): it is
        collected, not resubmitted; pending again (requeued): it is waited for. Still failed or
        cancelled, or never accepted: its attempt is retired and the walk submits it again. The service
        cannot be asked: it is left as it was.
        """
        if (job.get("info") or {}).get("id"):
            try:
                cls = load_job_manager_class(job["job_manager"])
                manager = call_user(
                    f"{cls.__name__}.from_job_info()", cls.from_job_info, job["info"], self._context(job)
                )
                status = checked_status(manager, call_user(f"{cls.__name__}.get_status()", manager.get_status))
            except Exception as error:
                summary.errors[job["key"]] = f"not resubmitted: asking its service failed ({error})"
                return job
            if status not in (AsyncStatus.FAILED, AsyncStatus.CANCELLED):
                job.update(status=status.value, error=None, info=manager.job_info, status_since=now_iso())
                self.run.write_job(job)
                log.info("job %s: its service reports it %s: not submitted again", job["key"], status.value)
                return job
        return self._retire(job)

    def _retire(self, job: dict[str, Any]) -> dict[str, Any]:
        """Keep a failed attempt (its files in ``attempts/<n>/``) and let the next walk submit it afresh."""
        attempt = job.get("attempt", 1)
        folder = self.run.archive_attempt(job["key"], attempt)
        attempts = job.setdefault("previous_attempts", [])
        fields = ("attempt", "status", "error", "info", "submitted_at", "finished_at")
        attempts.append({**{k: job.get(k) for k in fields}, "folder": folder})
        job.update(status="RETRY", info={}, error=None, attempt=attempt + 1)
        job.pop("warning", None)
        self.run.write_job(job)
        return job
