"""``AsyncCore``: a module whose pre- and/or postprocess runs as a job on an asynchronous service.

The module implements ``submit_XXXprocess`` (hand work to the service, return the service's answer)
and optionally ``collect_XXXprocess`` (turn the service's result into the phase's output). The
mode of each call:

* submit mode (no saved job for this phase): submit and return ``(Instruction.INTERRUPT, manager)``;
* collect mode (the engine hands the phase's saved job as ``async_job``; outside quark-cli's engine,
  a QUARK 2 style ``previous_job_info`` holding the ``job_info`` the module saved): rebuild the
  manager, and if the job is done return ``(Instruction.PROCEED, result)``, if still pending
  ``(Instruction.INTERRUPT, manager)``;
* sequential mode (``sequential=True``, used by ``quark run``): submit, wait with a backed-off and
  bounded poll, then collect.

Every phase of an AsyncCore returns ``(Instruction, payload, time)``, the time in the unit of the
module's dialect: seconds for quark-cli modules, milliseconds for an upgraded QUARK 2 module.

``AsyncCore`` is a mixin: in ``class X(AsyncCore, Existing)`` everything of ``Existing`` that the
dispatch does not replace (parameters, submodules, depending parameters, requirements, metrics,
and the phase that is not interruptable) stays ``Existing``'s, whatever ``Existing`` derives from.
"""

from __future__ import annotations

import inspect
import time
from contextlib import nullcontext
from typing import Any, Protocol

from quark_cli.core import Core, Instruction
from quark_cli.errors import NotSubmittedError
from quark_cli.jobs.base import (
    AsyncJobManager,
    AsyncStatus,
    JobContext,
    JobFailedError,
    SubmitError,
    call_user,
    checked_status,
    short_repr,
)
from quark_cli.quark2 import speaks_quark2

PHASES = {"PRE": ("pre",), "POST": ("post",), "PREPOST": ("pre", "post")}
FIRST_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 10.0
DEFAULT_WAIT_SECONDS = 3600.0
_FINAL_VALUES = frozenset(status.value for status in AsyncStatus if status.is_final)


class JobListener(Protocol):
    """Told by AsyncCore about each job so that the engine can save it at the right moments."""

    def submitting(self, manager: AsyncJobManager) -> None: ...

    def submitted(self, manager: AsyncJobManager, submit_ms: float) -> None: ...

    def not_submitted(self, manager: AsyncJobManager) -> None: ...

    def polled(self, manager: AsyncJobManager, status: AsyncStatus) -> None: ...


def poll_delays(first: float = FIRST_POLL_SECONDS, cap: float = MAX_POLL_SECONDS):
    """Waits between polls: start short for fast local jobs, grow by half each time up to ``cap``."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * 1.5)


class AsyncCore(Core):
    """Base of modules that submit work to an asynchronous service.

    Set ``JobManager`` to the job-manager class of the service and call
    ``AsyncCore.__init__(self, interruptable="PRE" | "POST" | "PREPOST", name=name)``. To upgrade an
    existing module, inherit from both (``class Mine(AsyncCore, ExistingModule)``) and call both
    constructors; AsyncCore defines nothing but the phase dispatch, and ``Core``'s defaults come
    after ``ExistingModule`` in the method order (see ``quark_cli.core._CoreType``), so the existing
    module's parameter options, submodules and metrics stay as they were, QUARK 2 modules included.
    """

    JobManager: type[AsyncJobManager] | None = None

    def __init__(self, interruptable: str = "POST", name: str | None = None) -> None:
        if interruptable not in PHASES:
            raise ValueError(f"interruptable must be one of {sorted(PHASES)}, not {interruptable!r}")
        Core.__init__(self, name)
        self.interruptable = interruptable
        cls = type(self)
        missing = [
            f"submit_{phase}process" for phase in PHASES[interruptable] if not hasattr(self, f"submit_{phase}process")
        ]
        if missing:
            raise TypeError(
                f"{cls.__name__} is interruptable={interruptable!r} but does not define {', '.join(missing)}"
            )
        if not (isinstance(cls.JobManager, type) and issubclass(cls.JobManager, AsyncJobManager)):
            raise TypeError(f"{cls.__name__}.JobManager must be set to an AsyncJobManager subclass")
        self.job_manager: AsyncJobManager | None = None

    def preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, ...]:
        if "pre" in PHASES[self.interruptable]:
            return self._dispatch("pre", input_data, config, kwargs)
        return super().preprocess(input_data, config, **kwargs)

    def postprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, ...]:
        if "post" in PHASES[self.interruptable]:
            return self._dispatch("post", input_data, config, kwargs)
        return super().postprocess(input_data, config, **kwargs)

    def sequential_run(self, phase: str, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, ...]:
        """collect(submit()): submit, wait until the job is final (or ``wait_timeout``), collect."""
        start = time.perf_counter()
        _, manager, _ = self._submit(phase, input_data, config, kwargs)
        timeout = kwargs.get("wait_timeout")
        timeout = DEFAULT_WAIT_SECONDS if timeout is None else timeout  # 0: look once, do not wait
        deadline = time.monotonic() + timeout
        delays = poll_delays()
        status = self._poll(manager, kwargs)
        while not status.is_final:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Instruction.INTERRUPT, manager, self._elapsed(start)
            time.sleep(min(next(delays), remaining))
            status = self._poll(manager, kwargs)
        output = self._collect_result(phase, manager, status, input_data, config, kwargs)
        return Instruction.PROCEED, output, self._elapsed(start)

    def _elapsed(self, start: float, earlier_ms: float = 0.0) -> float:
        """Time since ``start`` plus ``earlier_ms``, in this module's dialect's unit (seconds, or ms for QUARK 2)."""
        milliseconds = (time.perf_counter() - start) * 1000 + earlier_ms
        return milliseconds if speaks_quark2(type(self)) else milliseconds / 1000

    def _dispatch(self, phase: str, input_data: Any, config: dict[str, Any], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        if "async_job" in kwargs:  # quark-cli's engine says which saved job, if any, this phase has
            job = kwargs["async_job"]
        else:  # another manager: QUARK 2 hands the module its own saved level of the record
            saved = (kwargs.get("previous_job_info") or {}).get("job_info")
            job = {"info": saved} if isinstance(saved, dict) and saved else None
        if job:
            return self._collect(phase, job, input_data, config, kwargs)
        if kwargs.get("sequential", True):
            return self.sequential_run(phase, input_data, config, **kwargs)
        return self._submit(phase, input_data, config, kwargs)

    def _context(self, config: dict[str, Any], kwargs: dict[str, Any]) -> JobContext | None:
        return kwargs.get("job_context") or None

    def _submit(self, phase: str, input_data: Any, config: dict[str, Any], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        start = time.perf_counter()
        manager = self.JobManager(context=self._context(config, kwargs))
        self.job_manager = manager
        listener: JobListener | None = kwargs.get("job_listener")
        window = getattr(listener, "window", None)
        with window(manager) if window else nullcontext():  # other stacks may walk while this one submits
            if listener:
                listener.submitting(manager)
            hook = f"{type(self).__name__}.submit_{phase}process"
            submit = getattr(self, f"submit_{phase}process")
            try:
                response = call_user(hook, submit, input_data, config, error=SubmitError, **_module_kwargs(kwargs))
            except NotSubmittedError:
                if listener:
                    listener.not_submitted(manager)
                raise
            try:
                manager._handle_submit_info(response)
            except Exception as error:
                raise SubmitError(
                    f"{hook} returned {short_repr(response)}, which {type(manager).__name__}._handle_submit_info "
                    f"cannot read ({type(error).__name__}: {error}); a submit hook returns the service's answer"
                ) from error
            self.metrics.add_metric("job_info", manager.job_info)
            if listener:
                listener.submitted(manager, (time.perf_counter() - start) * 1000)
        return Instruction.INTERRUPT, manager, self._elapsed(start)

    def _collect(
        self, phase: str, job: dict[str, Any], input_data: Any, config: dict[str, Any], kwargs: dict[str, Any]
    ) -> tuple[Any, ...]:
        """Collect mode: ``job`` is the phase's saved job (``info`` as set by ``set_info``, ``status``, ``error``).

        The time returned counts the submission too (``submit_ms``, saved with the job when it was
        submitted), so the phase's time means the same whether it ran in one walk or in submit and collect.
        """
        start = time.perf_counter()
        submitted = float(job.get("submit_ms") or 0.0)
        manager = self.JobManager.from_job_info(job.get("info") or {}, context=self._context(config, kwargs))
        self.job_manager = manager
        self.metrics.add_metric("job_info", manager.job_info)
        known = job.get("status")
        status = AsyncStatus(known) if known in _FINAL_VALUES else None
        if status is None:
            status = self._poll(manager, kwargs)
        if not status.is_final:
            return Instruction.INTERRUPT, manager, self._elapsed(start, submitted)
        if status is not AsyncStatus.DONE:
            manager.status_reason = manager.status_reason or job.get("error")
        output = self._collect_result(phase, manager, status, input_data, config, kwargs)
        return Instruction.PROCEED, output, self._elapsed(start, submitted)

    def _poll(self, manager: AsyncJobManager, kwargs: dict[str, Any]) -> AsyncStatus:
        status = checked_status(manager, call_user(f"{type(manager).__name__}.get_status()", manager.get_status))
        listener: JobListener | None = kwargs.get("job_listener")
        if listener:
            listener.polled(manager, status)
        return status

    def _collect_result(
        self,
        phase: str,
        manager: AsyncJobManager,
        status: AsyncStatus,
        input_data: Any,
        config: dict[str, Any],
        kwargs: dict[str, Any],
    ) -> Any:
        if status is not AsyncStatus.DONE:
            raise JobFailedError(manager, status)
        if "job_result" in kwargs:
            server_result = kwargs["job_result"]
        else:
            server_result = call_user(f"{type(manager).__name__}.get_result()", manager.get_result)
        collect = getattr(self, f"collect_{phase}process", None)
        if collect is None:
            return server_result
        extra = {**_module_kwargs(kwargs), "input_data": input_data}
        signature = inspect.signature(collect)
        for args, named in (((server_result, config), extra), ((server_result, config), {}), ((server_result,), {})):
            try:
                signature.bind(*args, **named)
            except TypeError:
                continue
            # if it raises, the job is still done and paid for: 'collect --retry-failed' collects it again
            return call_user(f"{type(self).__name__}.collect_{phase}process", collect, *args, **named)
        raise TypeError(
            f"{type(self).__name__}.collect_{phase}process{signature} takes neither (server_result) "
            "nor (server_result, config, **kwargs)"
        )


ENGINE_KWARGS = {"sequential", "job_listener", "job_context", "wait_timeout", "job_result", "async_job"}


def _module_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments a module's own hooks see: the engine's plumbing left out."""
    return {name: value for name, value in kwargs.items() if name not in ENGINE_KWARGS}
