"""``quark cancel``: pending jobs stopped on their services (or abandoned here), their stacks failed.

``Cancelling`` is a part of ``quark_cli.engine.BenchmarkManager`` (which gives it ``run``,
``_context``, ``_finish`` and ``_fail_from_job``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from quark_cli.errors import QuarkError
from quark_cli.jobs.base import AsyncStatus, call_user, checked_status, load_job_manager_class
from quark_cli.stamps import now_iso
from quark_cli.summary import CLOSED, PENDING_JOB_STATES, Summary
from quark_cli.walk import FAILED, INTERRUPTED, apply_status

log = logging.getLogger("quark_cli")


@dataclass
class Cancellation:
    """What ``cancel`` did: jobs cancelled, jobs that had ended first (their status), jobs left alone
    (why), jobs whose cancel failed."""

    cancelled: list[str] = field(default_factory=list)
    ended: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, Exception] = field(default_factory=dict)
    summary: Summary = field(default_factory=Summary)


class Cancelling:
    """The cancel part of ``BenchmarkManager``."""

    def cancel(self, selected: list[str] | None = None, forget: bool = False) -> Cancellation:
        """Cancel pending jobs on their services; their stacks fail as with any cancelled job.

        ``selected`` names job keys or stack keys (None: every pending job). A job that had already
        ended is left for ``collect``; a job whose cancel raised stays as it was and is reported.
        ``forget``: the service is not asked (it cannot cancel, or is gone); the jobs are recorded
        CANCELLED here with ``abandoned_at``, and the service may still run them.
        """
        result = Cancellation()
        self._edited()  # files edited by hand since the index: the index written at the end takes them in
        jobs = self.run.read_jobs()
        if selected:
            known = {job["key"] for job in jobs} | {job["stack"] for job in jobs}
            unknown = [key for key in selected if key not in known]
            if unknown:
                raise QuarkError(
                    f"{self.run.jobs_dir}: no job or stack with jobs is called {unknown[0]!r}; "
                    f"'quark status {self.run.path}' lists the job keys"
                )
            wanted = set(selected)  # a list given by a script can name thousands of the 100,000 jobs
            jobs = [job for job in jobs if job["key"] in wanted or job["stack"] in wanted]
        for job in jobs:
            if job.get("status") not in PENDING_JOB_STATES:
                result.skipped[job["key"]] = f"not pending ({job.get('status')})"
                continue
            if forget:
                self._abandon_job(job, result)
            else:
                self._cancel_job(job, result)
        index = self.run.read_index()
        for key in sorted(self.run.record_keys() - set(result.summary.stacks)):
            if index.get(key) in CLOSED:
                result.summary.stacks[key] = index[key]
            else:
                result.summary.stacks[key] = (self.run.read_record(key) or {}).get("quark_job_status", INTERRUPTED)
        self._finish(result.summary)
        return result

    def _abandon_job(self, job: dict[str, Any], result: Cancellation) -> None:
        """Record ``job`` CANCELLED without asking its service: quark stops following it."""
        reason = "abandoned with 'quark cancel --forget' (not cancelled on its service, which may still run it)"
        apply_status(job, AsyncStatus.CANCELLED, reason)
        job["abandoned_at"] = now_iso()
        self.run.write_job(job)
        log.info("job %s abandoned on request", job["key"])
        self._cancelled(job, result)

    def _cancel_job(self, job: dict[str, Any], result: Cancellation) -> None:
        try:
            cls = load_job_manager_class(job["job_manager"])
            manager = call_user(
                f"{cls.__name__}.from_job_info()", cls.from_job_info, job.get("info", {}), self._context(job)
            )
            stopped = call_user(f"{cls.__name__}.cancel()", manager.cancel)
            if not stopped:
                status = checked_status(manager, call_user(f"{cls.__name__}.get_status()", manager.get_status))
            else:
                status = AsyncStatus.CANCELLED
        except Exception as error:
            log.warning("cancelling job %s failed: %s", job["key"], error, exc_info=True)
            result.errors[job["key"]] = error
            return
        reason = (manager.status_reason or "cancelled on request") if stopped else manager.status_reason
        if apply_status(job, status, reason):
            job["info"] = manager.job_info
            self.run.write_job(job)
        if not stopped and not status.is_final:
            result.errors[job["key"]] = RuntimeError(f"the service did not cancel it (still {status.value})")
            return
        if not stopped:
            result.ended[job["key"]] = status.value
            return
        log.info("job %s cancelled on request", job["key"])
        self._cancelled(job, result)

    def _cancelled(self, job: dict[str, Any], result: Cancellation) -> None:
        """Count ``job`` as cancelled by this command and fail its stack, as any cancelled job does."""
        result.cancelled.append(job["key"])
        record = self.run.read_record(job["stack"])
        if record is not None and record.get("quark_job_status") != FAILED:
            self._fail_from_job(job["stack"], record, job, result.summary)
