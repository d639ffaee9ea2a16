"""``IBMAsyncJobManager``: jobs on IBM Quantum Platform through the real ``qiskit-ibm-runtime`` client.

One job is one SamplerV2 job (program ``sampler``) of one ISA circuit. What is saved of it: the job
id, backend, instance and url (``_handle_submit_info``), the transpiled circuit's figures, and any
duplicate the client's own retry made and we cancelled. Never a token.

Status mapping (the client's ``job.status()`` -> AsyncStatus): QUEUED, INITIALIZING, VALIDATING ->
SUBMITTED; RUNNING -> RUNNING; DONE -> DONE; CANCELLED -> CANCELLED; ERROR (which includes a job
cancelled for running too long, reason code 1305) -> FAILED with the service's reason. A job the
service does not know (404) is FAILED. A status this list does not know is not an end: the job
stays RUNNING, with a warning.

Collect asks once per service which of its jobs are pending (``service.jobs(pending=True)``) and
asks about the others one by one. The listing carries no status, so a job still pending is shown
SUBMITTED unless a poll of its own saw it RUNNING.

Submission is idempotent: every job carries the tag ``quark-submission-<submission_id>``. The client
resends ``POST /jobs`` by itself after a 5xx, and a lost answer then makes two jobs: after every
submission the tag is looked up, and copies other than the job the client returned are cancelled
and recorded (``duplicates_cancelled``). A submit killed after ``POST /jobs`` is adopted by tag by
the next collect (``find_submitted``).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from quark_cli.errors import NotSubmittedError
from quark_cli.jobs.base import AsyncJobManager, AsyncStatus, SubmissionUnknownError, TransientServiceError
from quark_cli.jobs.ibm_service import DEFAULT_CHANNEL, DEFAULT_TIMEOUT, call, once, service_for

log = logging.getLogger("quark_cli")

TAG_PREFIX = "quark-submission-"
STATUS_MAP = {
    "QUEUED": AsyncStatus.SUBMITTED,
    "INITIALIZING": AsyncStatus.SUBMITTED,
    "VALIDATING": AsyncStatus.SUBMITTED,
    "RUNNING": AsyncStatus.RUNNING,
    "DONE": AsyncStatus.DONE,
    "CANCELLED": AsyncStatus.CANCELLED,
    "ERROR": AsyncStatus.FAILED,
}
#: The service's timestamps (``job.metrics()["timestamps"]``) -> ours, for queue and run times.
TIMESTAMPS = {"created": "service_submitted", "running": "service_started", "finished": "service_finished"}


def map_status(name: str) -> tuple[AsyncStatus, str | None]:
    """AsyncStatus and warning for a status name of ``job.status()``, e.g. ``'QUEUED'``."""
    upper = str(name).upper()
    if upper in STATUS_MAP:
        return STATUS_MAP[upper], None
    return AsyncStatus.RUNNING, f"IBM Quantum status {upper} is not one quark knows; the job stays pending"


def job_tag(submission_id: str) -> str:
    """The tag that names one submission on the service."""
    return TAG_PREFIX + submission_id


class IBMAsyncJobManager(AsyncJobManager):
    """One SamplerV2 job on IBM Quantum Platform."""

    concurrent_submissions = False  # its shared services and their caches are not checked for use from two threads

    def __init__(self, context: Any = None, job_info: dict[str, Any] | None = None) -> None:
        super().__init__(context=context, job_info=job_info)
        self._job: Any = None

    @property
    def settings(self) -> dict[str, Any]:
        """channel, url, instance, backend, timeout (seconds): the saved job's first, then the config's."""
        config = dict(self.context.config if self.context else {})
        return {
            "channel": config.get("channel") or DEFAULT_CHANNEL,
            "url": self._job_info.get("url") or config.get("url") or "",
            "instance": self._job_info.get("instance") or config.get("instance") or "",
            "backend": self._job_info.get("backend") or config.get("backend") or "",
            "timeout": float(config.get("timeout") or DEFAULT_TIMEOUT),
        }

    def service(self, submitting: bool = False) -> Any:
        """The command's ``QiskitRuntimeService`` for this job's channel, url and instance."""
        return service_for(self.settings, submitting)

    def backend(self) -> Any:
        """The configured backend, with its ``target`` (what circuits are transpiled to) already fetched.

        Nothing has reached the service yet, so every failure here is ``NotSubmittedError`` (the
        command stops, a later collect submits): a backend the instance does not offer (naming those
        it does), or a service that did not answer (its configuration or properties).
        """
        s = self.settings
        service = self.service(submitting=True)
        try:
            return once(service, "backend", s["backend"], lambda: self._fetch_backend(service))
        except TransientServiceError as error:
            raise NotSubmittedError(f"IBM Quantum at {s['url'] or 'the account url'}: {error}") from None

    def _fetch_backend(self, service: Any) -> Any:
        from qiskit.providers.exceptions import QiskitBackendNotFoundError

        s = self.settings
        try:
            backend = call(f"backend {s['backend']}", s, service.backend, s["backend"])
        except QiskitBackendNotFoundError:
            offered = sorted(candidate.name for candidate in call("backends", s, service.backends))
            raise NotSubmittedError(
                f"backend {s['backend']!r} is not available on instance {s['instance'] or '(the account default)'}; "
                f"available: {', '.join(offered) or 'none'}"
            ) from None
        call(f"backend {s['backend']} properties", s, lambda: backend.target)
        return backend

    def submit(self, circuit: Any, shots: int, backend: Any) -> Any:
        """Submit one ISA circuit to ``backend`` as a SamplerV2 job of ``shots`` shots; returns the job.

        The one place that knows the program: a later client's executor program replaces this. Raises
        ``TransientServiceError`` when the answer did not come (the next collect looks the tag up),
        ``ServiceAuthError`` for refused credentials.
        """
        from qiskit_ibm_runtime import SamplerV2

        s = self.settings
        tag = job_tag(self.context.submission_id) if self.context and self.context.submission_id else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # SamplerV2's successor is the executor
            sampler = SamplerV2(mode=backend)
        if tag:
            sampler.options.environment.job_tags = [tag]
        job = call("submit", s, sampler.run, [circuit], shots=shots)
        if tag:
            self._cancel_duplicates(tag, keep=job.job_id())
        return job

    def _tagged(self, tag: str) -> list[Any]:
        """The service's jobs carrying ``tag``, oldest first."""
        s = self.settings
        jobs = call("jobs by tag", s, self.service().jobs, job_tags=[tag], limit=None)
        return sorted(jobs, key=lambda job: (str(job.creation_date or ""), job.job_id()))

    def _cancel_duplicates(self, tag: str, keep: str, jobs: list[Any] | None = None) -> None:
        """Cancel the jobs tagged ``tag`` other than ``keep`` (copies of one submission) and record them."""
        try:
            jobs = self._tagged(tag) if jobs is None else jobs
            copies = [job for job in jobs if job.job_id() != keep]
            for copy in copies:
                log.warning(
                    "IBM Quantum job %s duplicates %s (one submission sent twice); cancelling it", copy.job_id(), keep
                )
                try:
                    call("cancel duplicate", self.settings, copy.cancel)
                except Exception as error:  # already ended: nothing left to stop
                    log.warning("IBM Quantum: could not cancel duplicate %s: %s", copy.job_id(), error)
            if copies:
                self.set_info(duplicates_cancelled=[copy.job_id() for copy in copies])
        except Exception as error:  # a leftover copy costs queue time, not correctness
            log.warning("IBM Quantum: could not check for duplicates of %s: %s", keep, error)

    def find_submitted(self, intent: dict[str, Any]) -> dict[str, Any] | None:
        """The job carrying the intent's tag if the submission arrived (copies cancelled), else None."""
        submission_id = intent.get("submission_id")
        if not submission_id:
            raise SubmissionUnknownError("the intent has no submission_id (saved by an older quark-cli)")
        arrived = self._tagged(job_tag(submission_id))
        if not arrived:
            return None
        self._cancel_duplicates(job_tag(submission_id), keep=arrived[0].job_id(), jobs=arrived)
        self._remember(arrived[0])
        return self.job_info

    def _handle_submit_info(self, value: Any) -> None:
        """Keep the job id, backend, instance and url: what re-attaches to the job from another process."""
        self._remember(value)

    def _remember(self, job: Any) -> None:
        s = self.settings
        backend = job.backend()
        instance = s["instance"] or (self.service().active_account() or {}).get("instance") or ""
        backend_name = getattr(backend, "name", None) or s["backend"]
        self.set_info(id=job.job_id(), backend=backend_name, instance=instance, url=s["url"])
        self._job = job

    def _runtime_job(self) -> Any:
        """The client's job object, fetched once (``service.job(id)``); RuntimeJobNotFound if unknown."""
        if self._job is None:
            service, job_id = self.service(), self._job_info["id"]
            self._job = once(service, "job", job_id, lambda: call("job", self.settings, service.job, job_id))
        return self._job

    def get_status(self) -> AsyncStatus:
        from qiskit_ibm_runtime.exceptions import RuntimeJobNotFound

        s = self.settings
        try:
            job = self._runtime_job()
        except RuntimeJobNotFound:
            self.status_reason = f"IBM Quantum does not know job {self._job_info['id']} (deleted or lost)"
            return AsyncStatus.FAILED
        name = call("status", s, job.status)
        status, self.status_warning = map_status(name)
        if status is AsyncStatus.RUNNING and self.status_warning is None:
            self.set_info(seen_running=True)
        if status is AsyncStatus.FAILED:
            self.status_reason = " ".join(str(call("error_message", s, job.error_message) or "ERROR").split())
        elif status is AsyncStatus.CANCELLED:
            self.status_reason = "CANCELLED"
        if status.is_final:
            self._service_times(job)
        return status

    def _service_times(self, job: Any) -> None:
        """Queue and run times from the service's own timestamps (UTC, with offset)."""
        try:
            metrics = call("metrics", self.settings, job.metrics)
        except Exception as error:  # the times are for the report: the job is not worse off without them
            log.info("IBM Quantum: no timestamps for job %s: %s", self._job_info.get("id"), error)
            return
        stamps = (metrics or {}).get("timestamps") or {}
        self.set_info(**{ours: str(stamps[theirs]) for theirs, ours in TIMESTAMPS.items() if stamps.get(theirs)})
        usage = (metrics or {}).get("usage") or {}
        if isinstance(usage.get("quantum_seconds"), int | float):
            self.set_info(quantum_seconds=usage["quantum_seconds"])

    @classmethod
    def get_statuses(cls, managers: list[AsyncJobManager]) -> list[AsyncStatus]:
        """One ``service.jobs(pending=True)`` listing per service; one look at each job that is no longer pending."""
        by_service: dict[tuple[str, str, str], list[IBMAsyncJobManager]] = {}
        for manager in managers:
            assert isinstance(manager, IBMAsyncJobManager)
            s = manager.settings
            by_service.setdefault((s["channel"], s["url"], s["instance"]), []).append(manager)
        statuses: dict[int, AsyncStatus] = {}
        for jobs in by_service.values():
            first = jobs[0]
            listing = call("pending jobs", first.settings, first.service().jobs, pending=True, limit=None)
            pending = {job.job_id() for job in listing}
            for manager in jobs:
                if manager._job_info.get("id") in pending:
                    manager.status_warning = None
                    running = bool(manager._job_info.get("seen_running"))
                    statuses[id(manager)] = AsyncStatus.RUNNING if running else AsyncStatus.SUBMITTED
                else:
                    statuses[id(manager)] = manager.get_status()
        return [statuses[id(manager)] for manager in managers]

    def get_result(self) -> Any:
        """The job's ``PrimitiveResult`` (one ``SamplerPubResult`` per circuit)."""
        job = self._runtime_job()
        return call("result", self.settings, job.result)

    def cancel(self) -> bool:
        from qiskit_ibm_runtime.exceptions import RuntimeInvalidStateError

        job = self._runtime_job()
        try:
            call("cancel", self.settings, job.cancel)
        except RuntimeInvalidStateError:
            return False
        return True
