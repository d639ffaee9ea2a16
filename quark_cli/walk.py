"""One walk of one stack: M1.preprocess -> ... -> Mn.preprocess -> Mn.postprocess -> ... -> M1.postprocess.

The walk stops where a phase answers ``Instruction.INTERRUPT`` (an ``AsyncCore`` handed a job to its
service) and builds the stack's QUARK 2 style record. Every module is called through
``quark_cli.contract.ModuleAdapter``, so quark-cli modules and QUARK 2 modules walk alike; the
``_JobRecorder`` saves each job at every step of its life. ``BenchmarkManager`` (``engine.py``) decides
which stacks to walk and with which saved jobs.
"""

from __future__ import annotations

import logging
import os
import traceback
import uuid
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from quark_cli.config import BacklogItem, Level, module_search_path
from quark_cli.contract import ModuleAdapter, build_module
from quark_cli.core import Instruction, Metrics
from quark_cli.errors import ConfigError, QuarkError
from quark_cli.group_commit import commit_staged
from quark_cli.interrupts import raised_count, reraise_signal
from quark_cli.jobs.base import (
    AsyncJobManager,
    AsyncStatus,
    JobFailedError,
    JobManagerError,
    SubmitError,
    TransientServiceError,
    can_find_submitted,
    load_job_manager_class,
)
from quark_cli.plain import NONFINITE_KEY, NotJSON, plain, plain_key
from quark_cli.quark2 import git_revision, prefetch_git_revision
from quark_cli.stamps import now_iso
from quark_cli.state import RunDir

if TYPE_CHECKING:
    from quark_cli.engine import BenchmarkManager

log = logging.getLogger("quark_cli")

#: quark-cli's own folder, whose git checkout (if any) the records name.
SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))

FINISHED = "FINISHED"
INTERRUPTED = "INTERRUPTED"
FAILED = "FAILED"
SUBMITTING = "SUBMITTING"


def prefetch_revision() -> None:
    """Ask git about quark-cli's checkout in the background, for the records about to be written."""
    prefetch_git_revision(SOURCE_DIR)


def apply_status(job: dict[str, Any], status: AsyncStatus, reason: Any) -> bool:
    """Update a job with a polled status; True (and the job needs saving) when the status changed.

    ``reason`` is what the manager set as ``status_reason``, kept as text whatever its type.
    """
    changed = job.get("status") != status.value
    if not changed:
        return False
    job["status"] = status.value
    job["status_since"] = now_iso()
    if status.is_final:
        job["finished_at"] = job["status_since"]
    if status in (AsyncStatus.FAILED, AsyncStatus.CANCELLED):
        job["error"] = str(reason) if reason else status.value
    return changed


class _JobRecorder:
    """The engine's JobListener for one async phase: saves the job at each step of its life."""

    def __init__(self, run: RunDir, job: dict[str, Any], window: Any = None) -> None:
        self.run = run
        self.job = job
        self.before = dict(job) if job.get("job_manager") else None
        self._window = window

    def window(self, manager: AsyncJobManager) -> Any:
        """The context a submission runs in, from intent to id (``BenchmarkManager.submission_window``)."""
        return self._window(manager) if self._window else nullcontext()

    def not_submitted(self, manager: AsyncJobManager) -> None:
        """The service refused before accepting anything: put the job file back as it was."""
        commit_staged(self.run.job_file(self.job["key"]))  # the staged intent must not land after this
        if self.before is None:
            self.run.remove_job(self.job["key"])
        else:
            self.run.write_job(self.before)
        self.job.clear()
        self.job.update(self.before or {})

    def submitting(self, manager: AsyncJobManager) -> None:
        """Save the intent; its fresh ``submission_id`` is made here, for jobs that are submitted only."""
        if manager.context is not None and manager.context.submission_id is None:
            manager.context.submission_id = uuid.uuid4().hex
        self.job.update(
            status=SUBMITTING,
            job_manager=type(manager).class_path(),
            info={},
            submitted_at=None,
            error=None,
            finished_at=None,
            status_since=None,
            submission_id=manager.context.submission_id if manager.context else None,
            intent_at=now_iso(),
        )
        self.job.pop("adopted_at", None)
        self.run.write_job(self.job, durable=type(manager).durable_intent)

    def submitted(self, manager: AsyncJobManager, submit_ms: float) -> None:
        """Save the id (and how long the submission took, ms), staged: it lands before the next
        intent (``RunDir.write_job``); the local backend's own files, staged with it, tell the next
        collect about the job if a kill loses it."""
        self.job.update(
            status=AsyncStatus.SUBMITTED.value, info=manager.job_info, submitted_at=now_iso(), submit_ms=submit_ms
        )
        self.run.write_job(self.job)

    def polled(self, manager: AsyncJobManager, status: AsyncStatus) -> None:
        if apply_status(self.job, status, manager.status_reason):
            self.job["info"] = manager.job_info
            self.run.write_job(self.job)


def record_levels(module_record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A saved record's module levels, top first: what each module gets back as ``previous_job_info``."""
    levels = []
    node = module_record
    while isinstance(node, dict) and node:
        levels.append(node)
        node = node.get("submodule")
    return levels


def awaited_jobs(record: dict[str, Any] | None) -> list[str]:
    """The jobs a stack's saved record names while the stack is unfinished: each must keep its job
    file, or collecting the stack would submit it again ([] for no record or a finished stack)."""
    if record is None or record.get("quark_job_status") == FINISHED:
        return []
    return record.get("jobs") or []


class StackWalk:
    """One walk of one stack: the modules, their metrics and where the walk stopped.

    ``jobs`` are the stack's saved jobs by ``(level, phase)`` (collect mode); ``previous`` is the
    stack's saved record, whose levels the modules receive as ``previous_job_info`` (QUARK 2's resume).
    It is handed over, not copied: the modules may change the parts they receive.
    """

    def __init__(
        self,
        manager: BenchmarkManager,
        key: str,
        item: BacklogItem,
        repetition: int,
        jobs: dict[tuple[int, str], dict[str, Any]],
        sequential: bool,
        previous: dict[str, Any] | None = None,
    ) -> None:
        self.manager = manager
        self.key = key
        self.item = item
        self.repetition = repetition
        self.jobs = jobs
        self.sequential = sequential
        # one tree for the walk, shared by a module's phases and nested as saved: QUARK 2's manager
        # hands every module a part of the same tree, pre and post alike
        self.previous_levels = record_levels((previous or {}).get("module"))
        self.modules: list[ModuleAdapter] = []
        self.job_keys: list[str] = []
        self.uncertain: list[str] = []  # jobs whose submit raised: they may or may not be on their service
        self.deepest = -1
        self._where = ""  # the step under way, for messages: its module's name as the step began
        self._paths = manager.module_paths(item)
        self.store_dir = ""
        self._signals = raised_count()  # a signal after this, whatever module code made of it, ends the walk

    def run(self) -> tuple[str, str | None]:
        """Walk the stack; ``(status, error)``. Module code that raises anything but KeyboardInterrupt (even
        ``SystemExit``) fails the stack."""
        try:
            self._build()
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # module code; SystemExit and its kin included
            reraise_signal(self._signals, error)
            log.error("stack %s: cannot build its modules\n%s", self.key, traceback.format_exc())
            what = str(error) if isinstance(error, ConfigError) else f"{type(error).__name__}: {error}"
            return FAILED, f"cannot build modules: {what}"
        levels = self.item.levels
        data: Any = None
        try:
            made = any(module.uses_store_dir for module in self.modules)
            self.store_dir = self.manager.store_dir(self.item.index, made)
            for level in range(len(levels)):
                instruction, data = self._phase(level, "pre", data)
                if instruction is Instruction.INTERRUPT:
                    return INTERRUPTED, None
            for level in reversed(range(len(levels))):
                instruction, data = self._phase(level, "post", data)
                if instruction is Instruction.INTERRUPT:
                    return INTERRUPTED, None
        except (JobFailedError, JobManagerError) as error:
            reraise_signal(self._signals, error)
            if self.uncertain:  # stays open: the next collect asks the service whether the submission arrived
                log.error("stack %s: %s", self.key, error)
                return INTERRUPTED, f"{error} (submission uncertain: the next collect asks the service)"
            return FAILED, str(error)
        except QuarkError:
            raise
        except TransientServiceError as error:
            log.warning("stack %s: %s: service unavailable: %s", self.key, self._where, error)
            return INTERRUPTED, f"{self._where}: service unavailable, the next collect tries again ({error})"
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # module code; SystemExit and its kin included
            reraise_signal(self._signals, error)
            if self.uncertain:  # stays open: collect asks the service whether the submission arrived
                log.error("stack %s: submitting failed\n%s", self.key, traceback.format_exc())
                return INTERRUPTED, f"{self._where}: {type(error).__name__}: {error} (submission uncertain)"
            log.error("stack %s failed\n%s", self.key, traceback.format_exc())
            return FAILED, f"{self._where}: {type(error).__name__}: {error}{self._store_dir_hint(error)}"
        return FINISHED, None

    def _store_dir_hint(self, error: BaseException) -> str:
        """Why a module found no ``store_dir``: every module of the stack said it writes no files."""
        where = getattr(error, "filename", None)
        if not isinstance(error, FileNotFoundError) or not isinstance(where, str):
            return ""
        if not self.store_dir or os.path.isdir(self.store_dir):  # none yet: making it is what failed
            return ""
        if os.path.commonpath([os.path.abspath(where), self.store_dir]) != self.store_dir:
            return ""
        return (
            " (store_dir is not made for this stack: its modules all set uses_store_dir = False; "
            "the module that writes there must not)"
        )

    def _build(self) -> None:
        kept = self.manager.kept_modules(self.item)
        if kept is not None:
            for module, level in zip(kept, self.item.levels, strict=True):
                module.begin(level.config)
            self.modules = list(kept)
            return
        config = self.manager.config
        parent = None
        with module_search_path(config.search_path):
            for level in self.item.levels:
                module = build_module(
                    level.name, level.module, level.args, parent, config.module_entries, config.source, level.path
                )
                module.begin(level.config)
                self.modules.append(module)
                parent = module
        self.manager.keep_modules(self.item, self.modules)

    def _phase(self, level: int, phase: str, data: Any) -> tuple[Instruction, Any]:
        module = self.modules[level]
        config = self.item.levels[level].config
        self._where = f"{module.label}.{phase}process"
        module_path, safe_path = self._paths[level]
        job_key = f"{self.key}-{safe_path}-{phase}"
        saved = self.jobs.get((level, phase))
        if self.manager.on_phase:
            self.manager.on_phase(self.key, module_path, phase)
        if level < len(self.previous_levels):
            previous_level = self.previous_levels[level]
        else:  # as QUARK 2's manager: the application gets {} on a fresh walk, its submodules None
            previous_level = {} if level == 0 else None
        kwargs: dict[str, Any] = {
            "store_dir": self.store_dir,
            "rep_count": self.repetition,
            "previous_job_info": previous_level,
        }
        self.deepest = max(self.deepest, level)  # a level whose phase raised is recorded too
        job: dict[str, Any] = {}
        if module.is_async:
            job = (
                dict(saved)
                if saved
                else {
                    "key": job_key,
                    "stack": self.key,
                    "backlog_item": self.item.index,
                    "repetition": self.repetition,
                    "module_path": module_path,
                    "level": level,
                    "phase": phase,
                    "module_config": config,
                    "attempt": 1,
                }
            )
            fetched = self.manager._fetched
            if job_key in fetched:
                kwargs["job_result"] = fetched.pop(job_key)
            kwargs.update(
                sequential=self.sequential,
                job_listener=_JobRecorder(self.manager.run, job, self.manager.submission_window),
                job_context=self.manager.job_context(job_key, config),
                wait_timeout=self.manager.wait_timeout,
                async_job=saved if saved and saved.get("status") != "RETRY" else None,
            )
        try:
            instruction, output = module.phase(phase, data, config, kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            reraise_signal(self._signals, error)  # a submission cut by a signal stays uncertain, as by Ctrl-C
            if job.get("status") == SUBMITTING and not isinstance(error, QuarkError):
                self._submission_failed(job, error)
            raise
        finally:
            if job.get("job_manager"):
                self.job_keys.append(job_key)
        if level == 0 and phase == "pre":
            self._where = f"{module.label}.save"
            module.save(self.store_dir, self.repetition)
        return instruction, output

    def _submission_failed(self, job: dict[str, Any], error: BaseException) -> None:
        """A submission raised (or its answer could not be read): did the job reach the service?

        A transient service error, or a manager whose service can be asked (``find_submitted``):
        perhaps; the job stays "submission uncertain" and the next collect asks. Otherwise nothing
        can ever tell, so the job fails with the error (``collect --retry-failed`` submits it again).
        """
        reason = str(error) if isinstance(error, SubmitError) else f"{type(error).__name__}: {error}"
        if isinstance(error, TransientServiceError) or can_find_submitted(load_job_manager_class(job["job_manager"])):
            self.uncertain.append(job["key"])
            if not isinstance(error, TransientServiceError):
                job["error"] = reason
                self.manager.run.write_job(job)
            return
        job.update(status=AsyncStatus.FAILED.value, error=reason, status_since=now_iso(), finished_at=now_iso())
        self.manager.run.write_job(job)

    def record(self, status: str, error: str | None) -> dict[str, Any]:
        """The stack's record: QUARK 2's fields and nested module levels, then quark-cli's own fields.

        Every level is made strict JSON (``quark_cli.plain``). A metric with no faithful JSON form is
        written as null and fails a stack that had finished, naming the module and the metric: its
        other metrics are kept, and the stack is no longer counted as a result.
        """
        from quark_cli import __version__

        module_record: dict[str, Any] | None = None
        problems: list[str] = []
        for index in reversed(range(min(self.deepest + 1, len(self.modules)))):
            try:
                module_record = self.modules[index].level(index, module_record)
            except KeyboardInterrupt:
                raise
            except BaseException as failure:  # the module's metrics cannot even be read (a lock, a cycle)
                reraise_signal(self._signals, failure)
                problems.append(
                    f"{self.modules[index].label}: its metrics cannot be read ({type(failure).__name__}: {failure})"
                )
                module_record = _config_level(self.item.levels[index], index, module_record)
        if module_record is None:  # not even the application was built: its level from the config
            module_record = _config_level(self.item.levels[0], 0, None)
        problems += _make_plain(module_record)
        if problems:
            log.error("stack %s: %s", self.key, "; ".join(problems))
            if status == FINISHED:
                status, error = FAILED, problems[0]
            elif status == INTERRUPTED:
                error = error or problems[0]
        # as QUARK 2 has it: the application's status among its metrics, before module_level and submodule
        tail = {name: module_record.pop(name) for name in ("module_level", "submodule")}
        module_record.update(quark_job_status=status, **tail)
        total = 0.0
        for level in record_levels(module_record):
            total += level.get("total_time") or 0.0
        revision, uncommitted = git_revision(SOURCE_DIR)
        return {
            "benchmark_backlog_item_number": self.item.index,
            "timestamp": now_iso(),
            "config_hash": self.manager.config.config_hash,
            "total_time": total,
            "total_time_unit": "ms",
            "git_revision_number": revision,
            "git_uncommitted_changes": uncommitted,
            "repetition": self.repetition,
            "total_repetitions": self.manager.config.repetitions,
            "module": module_record,
            "quark_job_status": status,
            "error": error,
            "stack": self.key,
            "jobs": sorted(set(self.job_keys)),
            "quark_cli_version": __version__,
        }


def _config_level(level: Level, index: int, submodule: dict[str, Any] | None) -> dict[str, Any]:
    """A record level made from the config alone, for a module whose own metrics are not to be had."""
    metrics = Metrics(level.name)
    metrics.set_module_config(level.config)
    return {**metrics.get(), "module_level": index, "submodule": submodule or {}}


def _make_plain(module_record: dict[str, Any]) -> list[str]:
    """Turn every level of a record into strict JSON in place; the problems, naming module and metric."""
    problems = []
    for level in record_levels(module_record):
        module = level.get("module_name")
        nonfinite: dict[str, str] = {}
        submodule = level.pop("submodule", {})
        metrics = list(level.items())
        level.clear()
        for name, value in metrics:
            try:
                key = plain_key(name, "metric name")
                level[key] = plain(value, key, nonfinite)
            except NotJSON as error:
                problems.append(f"{module}: metric {error}")
                level[str(name)] = None
        if nonfinite:
            level[NONFINITE_KEY] = nonfinite
        level["module_level"] = level.pop("module_level", None)
        level["submodule"] = submodule
    return problems
