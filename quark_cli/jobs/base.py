"""The job-manager contract: ``AsyncJobManager`` and ``AsyncStatus``.

A job manager knows how to talk to one kind of service (a local worker pool, Qaptiva, SLURM). It is
created fresh for a submission, or rebuilt from the ``job_info`` saved in the run directory when a
later process collects. Everything it must remember between processes goes through ``set_info``.
"""

from __future__ import annotations

import importlib
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from quark_cli.errors import QuarkError
from quark_cli.interrupts import raised_count, reraise_signal
from quark_cli.plain import NotJSON, plain


class AsyncStatus(Enum):
    """Where an asynchronous job stands.

    SUBMITTED: accepted by the service, waiting in its queue.
    RUNNING: the service reports it is executing.
    DONE: finished; ``get_result`` returns the service's result.
    FAILED: finished without a result (error, lost, unknown to the service); see ``status_reason``.
    CANCELLED: stopped on request before it finished.
    """

    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        """True once the status can no longer change."""
        return self in (AsyncStatus.DONE, AsyncStatus.FAILED, AsyncStatus.CANCELLED)


@dataclass
class JobContext:
    """Where a job lives and what it was configured with.

    ``job_dir`` is the job's own folder in the run directory (backends may keep files there);
    ``config`` is the module's configuration for this stack, e.g. a service's host and port;
    ``submission_id`` is a fresh random id that the engine saves with the intent to submit, before
    the service is called: a backend that stores it with the job (in its own files, or as a tag the
    service reports back) can later tell whether an interrupted submission reached it.
    """

    key: str
    job_dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    submission_id: str | None = None


class LazyJobContext(JobContext):
    """A ``JobContext`` whose ``job_dir`` is made on first use: a collect polls 100,000 jobs and walks
    their stacks, and most job managers never ask for their folder (a Path each cost more than a
    second there)."""

    def __init__(self, key: str, jobs_dir: Path, config: dict[str, Any]) -> None:
        self.key = key
        self.config = config
        self.submission_id = None
        self._jobs_dir = jobs_dir
        self._job_dir: Path | None = None

    @property
    def job_dir(self) -> Path:  # type: ignore[override]
        if self._job_dir is None:
            self._job_dir = self._jobs_dir / self.key
        return self._job_dir

    @job_dir.setter
    def job_dir(self, value: Path) -> None:
        self._job_dir = value


class SubmissionUnknownError(Exception):
    """A job manager cannot tell whether an interrupted submission reached its service.

    The job stays "submission uncertain"; the user decides (``quark collect --resubmit-uncertain``).
    """


class TransientServiceError(Exception):
    """The service did not answer (time-out, lost connection, 5xx), even after the manager's retries.

    Nothing is known to have changed: the engine leaves the job as it was (never FAILED for it) and
    the next ``collect`` asks again.
    """


class JobManagerError(Exception):
    """A job manager, or its module's submit hook, answered something quark cannot use.

    The message names the class, the call and the value. The job it concerns is not failed for it:
    a poll answer leaves the job as it was; a submission answer fails the job only when the service
    cannot be asked whether the job arrived (``can_find_submitted``).
    """


class SubmitError(JobManagerError):
    """A submit hook raised, or returned an answer the manager's ``_handle_submit_info`` cannot read."""


class JobFailedError(Exception):
    """A job reached FAILED or CANCELLED; the stack that waited for it cannot go on."""

    def __init__(self, manager: AsyncJobManager, status: AsyncStatus) -> None:
        self.manager = manager
        self.status = status
        reason = manager.status_reason or status.value
        super().__init__(f"job {manager.job_info.get('id', '?')} {status.value.lower()}: {reason}")


class AsyncJobManager(ABC):
    """Base class of every job manager.

    Subclasses implement ``get_status`` and ``get_result`` and usually ``_handle_submit_info``,
    which receives whatever the module's ``submit_XXXprocess`` returned and keeps, through
    ``set_info``, what identifies the job later (an id, a host). Only JSON values set with
    ``set_info`` are saved; anything else placed in ``_job_info`` lives in memory for this process.

    Timestamps: a manager that learns from its service when the job was queued, started and ended
    sets them as ``service_submitted``, ``service_started`` and ``service_finished`` (ISO 8601, the
    service's clock); ``quark report`` computes queue wait and run time from them.
    """

    #: True when the service keeps its jobs elsewhere: the intent to submit must survive a power cut
    #: before the service is called, or a job it accepted could be forgotten and submitted again. A
    #: backend whose jobs live in the run directory itself loses them with the intent, so needs not.
    durable_intent: bool = True
    #: True when submit hooks of this manager may run in several threads at once (each for its own
    #: job and module instance): ``quark submit`` then waits for many submissions together. Set it to
    #: False for a service client that must not be called from two threads.
    concurrent_submissions: bool = True

    def __init__(self, context: JobContext | None = None, job_info: dict[str, Any] | None = None) -> None:
        self.context = context
        self._job_info: dict[str, Any] = dict(job_info or {})
        self.status_reason: str | None = None
        #: Set by ``get_status`` when the job is not final but something is off (a state the manager does
        #: not know, a result not visible yet); ``quark status`` shows it, and the next good poll clears it.
        self.status_warning: str | None = None

    @classmethod
    def from_job_info(cls, job_info: dict[str, Any], context: JobContext | None = None) -> AsyncJobManager:
        """Rebuild the manager of a job submitted by an earlier process from its saved info."""
        return cls(context=context, job_info=job_info)

    @classmethod
    def class_path(cls) -> str:
        """``package.module:ClassName``, stored in the job file to rebuild the manager."""
        return f"{cls.__module__}:{cls.__qualname__}"

    def set_info(self, **values: Any) -> None:
        """Remember values that identify the job; they are saved with the job."""
        self._job_info.update(values)

    @property
    def job_info(self) -> dict[str, Any]:
        """The saved part of ``_job_info``: each value in its strict JSON form (``quark_cli.plain``: a
        numpy id becomes a number); a value with none, or a non-finite number, is left out."""
        saved = {}
        for name, value in self._job_info.items():
            nonfinite: dict[str, str] = {}
            try:
                converted = plain(value, str(name), nonfinite)
            except NotJSON:
                continue
            if not nonfinite:
                saved[str(name)] = converted
        return saved

    def _handle_submit_info(self, value: Any) -> None:
        """Keep what identifies the job from the service's answer to a submission.

        The default accepts a dict of JSON values; override it for a service's own response type.
        """
        if not isinstance(value, dict):
            raise TypeError(
                f"{type(self).__name__} cannot read a submission answer of type {type(value).__name__}; "
                "override _handle_submit_info"
            )
        self.set_info(**value)

    @abstractmethod
    def get_status(self) -> AsyncStatus:
        """Ask the service where the job stands; set ``status_reason`` when it failed."""

    @abstractmethod
    def get_result(self) -> Any:
        """Return the object the service produced; only called once the status is DONE."""

    def cancel(self) -> bool:
        """Ask the service to stop the job; True if this call stopped it, False if it had already ended.

        Backends that can cancel override this; the default says plainly that this one cannot.
        """
        raise QuarkError(
            f"{type(self).__name__} cannot cancel jobs (this backend has no cancel); stop the job on its service, "
            "then 'quark cancel --forget KEY' abandons it here"
        )

    def find_submitted(self, intent: dict[str, Any]) -> dict[str, Any] | None:
        """Did an interrupted submission reach the service? Used by ``collect`` on uncertain jobs.

        ``intent`` is the saved job (``submission_id``, ``intent_at``, ``previous_attempts``, ...) of
        a process that stopped after recording its intent to submit and before recording the answer;
        ``self`` is a fresh manager with the job's ``context``. Return the info to save (what
        ``set_info`` would hold: id, host...) if the service has the job: it is adopted, never
        submitted again. Return None only if the service certainly does not have it: it is then
        submitted. Raise ``SubmissionUnknownError`` when the service cannot say (the default), or any
        other error when asking failed; the job then stays uncertain and the user decides.
        """
        raise SubmissionUnknownError(f"{type(self).__name__} cannot ask its service about interrupted submissions")

    @classmethod
    def get_statuses(cls, managers: list[AsyncJobManager]) -> list[AsyncStatus]:
        """Statuses of many jobs of this manager class; override where the service has a batch call."""
        return [manager.get_status() for manager in managers]


def load_job_manager_class(path: str) -> type[AsyncJobManager]:
    """The job-manager class named ``package.module:ClassName`` in a saved job_info.

    A job file is data, not a config the user pointed at: it may name quark-cli's own backends
    or a class whose module the run's config has already imported, never a module to import anew.
    """
    module_name, _, class_name = path.partition(":")
    if module_name not in sys.modules and not module_name.startswith("quark_cli."):
        raise ValueError(f"{path!r} is not the job manager of a module in the run's config")
    module = importlib.import_module(module_name)
    cls: Any = module
    for part in class_name.split("."):
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and issubclass(cls, AsyncJobManager)):
        raise TypeError(f"{path} is not an AsyncJobManager")
    return cls


def checked_status(manager: AsyncJobManager, value: Any, call: str = "get_status") -> AsyncStatus:
    """``value`` if it is an ``AsyncStatus``; else a JobManagerError naming the manager, the call and the value."""
    if isinstance(value, AsyncStatus):
        return value
    raise JobManagerError(
        f"{type(manager).__name__}.{call}() returned {short_repr(value)}, not an AsyncStatus "
        f"(one of {', '.join(status.name for status in AsyncStatus)})"
    )


def call_user(
    what: str, function: Any, *args: Any, error: type[JobManagerError] = JobManagerError, **kwargs: Any
) -> Any:
    """``function(*args, **kwargs)``: code of a user's module or job manager, called where quark uses
    its answer. What it raises becomes ``error`` naming ``what`` (``"Manager.get_status()"``), except
    a service's own errors (``TransientServiceError``, a ``QuarkError``), which keep their meaning.
    What it raised after a Ctrl-C or SIGTERM reached it is that signal's exception
    (``interrupts.reraise_signal``)."""
    signals = raised_count()
    try:
        return function(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as raised:  # SystemExit, GeneratorExit, ... from user code end no command
        reraise_signal(signals, raised)
        if isinstance(raised, TransientServiceError | QuarkError):
            raise
        raise error(f"{what} raised {type(raised).__name__}: {raised}") from raised


def can_find_submitted(cls: type[AsyncJobManager]) -> bool:
    """True when ``cls`` overrides ``find_submitted``: its service can say whether a submission arrived."""
    return cls.find_submitted is not AsyncJobManager.find_submitted


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: a value quoted in a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
