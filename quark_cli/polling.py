"""Polling: ask the services about pending jobs, concurrently or in one batch call, and save the answers.

``JobPoller.poll`` yields jobs as soon as their answers are in, so ``BenchmarkManager.collect`` can
continue its stack while other polls go on. A poll that fails leaves its job as it was: one lost
answer never fails a job.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from quark_cli.errors import ServiceAuthError
from quark_cli.jobs.base import (
    AsyncJobManager,
    AsyncStatus,
    JobContext,
    JobManagerError,
    TransientServiceError,
    call_user,
    checked_status,
    load_job_manager_class,
)
from quark_cli.state import RunDir
from quark_cli.walk import apply_status

if TYPE_CHECKING:
    from quark_cli.summary import Summary

log = logging.getLogger("quark_cli")


def _has_batch_status(cls: type[AsyncJobManager]) -> bool:
    """True when the class overrides ``get_statuses`` with a call that serves many jobs at once."""
    return getattr(cls.get_statuses, "__func__", None) is not AsyncJobManager.get_statuses.__func__


def _status_or_error(manager: AsyncJobManager) -> Any:
    """The manager's status, or the error its ``get_status`` raised (an unexpected one naming the manager)."""
    try:
        return call_user(f"{type(manager).__name__}.get_status()", manager.get_status)
    except Exception as error:
        return error


def _checked(manager: AsyncJobManager, status: Any, call: str) -> Any:
    """``status`` if it is an AsyncStatus, else the JobManagerError that says what the manager answered."""
    try:
        return checked_status(manager, status, call)
    except JobManagerError as error:
        return error


def _message(error: BaseException) -> str:
    return str(error) if isinstance(error, JobManagerError) else f"{type(error).__name__}: {error}"


#: A first status call this slow (seconds) is a remote one: the other jobs of its class are polled
#: on threads at once. Quicker ones are polled in the calling thread, which costs less than
#: starting threads for them, as long as they take under QUICK_POLL_SECONDS on average (a poll's
#: time here also counts waiting for the interpreter while the disk writes: one alone says little).
REMOTE_POLL_SECONDS = 0.01
QUICK_POLL_SECONDS = 0.001
#: Polls made inline before their average decides.
PROBES = 8


class JobPoller:
    """Polls one command's pending jobs; saves each job whose status changed.

    ``context`` builds a job's ``JobContext`` (where its folder is); ``fetched`` receives the results
    of done jobs fetched from the polling threads, by job key, for the walks that collect them.
    """

    def __init__(
        self, run: RunDir, workers: int, context: Callable[[dict[str, Any]], JobContext], fetched: dict[str, Any]
    ) -> None:
        self.run = run
        self.workers = max(1, workers)
        self.context = context
        self.fetched = fetched

    def poll(self, pending: list[dict[str, Any]], summary: Summary) -> Iterator[list[dict[str, Any]]]:
        """Ask the services about pending jobs; yield them in lists, each job once its answer is in
        (and saved): a batch call's jobs together, others one or a thread's chunk at a time.

        A job-manager class with a batch ``get_statuses`` gets one call for all its jobs; others are
        polled concurrently, ``poll_workers`` at a time; the threads only call the services, and
        each answer is saved in the calling thread before its job is yielded. A poll that fails
        leaves its job as it was (reported in ``summary.errors``): one lost answer never fails a job.
        """
        by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for job in pending:
            by_class[job["job_manager"]].append(job)
        batches: list[tuple[type[AsyncJobManager], list[tuple[dict[str, Any], AsyncJobManager]]]] = []
        for class_path, jobs in by_class.items():
            try:
                cls = load_job_manager_class(class_path)
            except Exception as error:
                log.warning("cannot rebuild %d job(s) of %s: %s", len(jobs), class_path, error, exc_info=True)
                for job in jobs:
                    summary.errors[job["key"]] = f"{type(error).__name__}: {error}"
                yield jobs
                continue
            what = f"{cls.__name__}.from_job_info()"
            pairs = self._rebuilt(cls, jobs)
            if pairs is None:
                pairs = []
                for job in jobs:  # one job whose saved info its manager cannot read holds up no other
                    try:
                        pairs.append((job, call_user(what, cls.from_job_info, job.get("info", {}), self.context(job))))
                    except Exception as error:
                        log.warning("job %s: %s", job["key"], error)
                        summary.errors[job["key"]] = _message(error)
                        if self._warn(job, f"last poll failed: {_message(error)}"):
                            self.run.write_job(job)
                        yield [job]
            if pairs:
                batches.append((cls, pairs))
        if not batches:
            return
        quick: list[tuple[dict[str, Any], AsyncJobManager]] = []
        slow: list[tuple[type[AsyncJobManager] | None, list[tuple[dict[str, Any], AsyncJobManager]]]] = []
        for cls, pairs in batches:
            if _has_batch_status(cls):
                slow.append((cls, pairs))
                continue
            # the first job's poll, timed, tells whether threads pay: a call of a local file service
            # costs less than handing it to a thread, one over the network a thousand times more
            start = time.perf_counter()
            outcomes = self._poll_batch(None, pairs[:1])
            remote = time.perf_counter() - start >= REMOTE_POLL_SECONDS
            yield from self._report(outcomes, summary)
            if remote:
                if len(pairs) > 1:
                    slow.append((None, pairs[1:]))
            else:
                quick.extend(pairs[1:])
        spent = 0.0
        for position, pair in enumerate(quick):
            start = time.perf_counter()
            outcomes = self._poll_batch(None, [pair])
            spent += time.perf_counter() - start
            yield from self._report(outcomes, summary)
            if position >= PROBES and spent / (position + 1) >= QUICK_POLL_SECONDS and position + 1 < len(quick):
                slow.append((None, quick[position + 1 :]))  # slower than it looked: threads for the rest
                break
        if not slow:
            return
        chunks = sum(len(pairs) for cls, pairs in slow if cls is None)
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, chunks + len(slow)))) as pool:
            futures = []
            for cls, pairs in slow:
                if cls is not None:
                    futures.append(pool.submit(self._poll_batch, cls, pairs))
                else:  # small chunks: a future per job costs more in thread hand-offs than a poll
                    size = max(1, -(-len(pairs) // (self.workers * 4)))
                    futures.extend(
                        pool.submit(self._poll_batch, None, pairs[i : i + size]) for i in range(0, len(pairs), size)
                    )
            reported = set()
            try:
                for future in as_completed(futures):
                    reported.add(future)
                    yield from self._report(future.result(), summary)
            finally:  # a refused login, a failed walk, Ctrl-C: what the threads answered is saved all the same
                for other in futures:
                    other.cancel()
                pool.shutdown(wait=True)
                for future in futures:
                    if future not in reported and not future.cancelled() and future.exception() is None:
                        self._save(future.result())

    def _report(
        self, outcomes: list[tuple[dict[str, Any], Any, bool]], summary: Summary
    ) -> Iterator[list[dict[str, Any]]]:
        """Save, log and count what ``_poll_batch`` answered; yield its jobs. A refused login ends the poll.

        The saves are made here, in the thread that runs the collect, not in the polling threads:
        a save that filled a batch of the group commit made a polling thread commit it, and with a
        hundred threads waking for the interpreter lock that commit held its thread's next polls up
        for over half a second (collect of 1,000 jobs at 50 ms a poll).
        """
        self._save(outcomes)  # all of them first: a refused login below ends the poll part-way
        answered = []
        for job, outcome, _ in outcomes:
            if outcome is not False:  # most polls: nothing new
                if isinstance(outcome, ServiceAuthError):
                    if answered:
                        yield answered
                    raise outcome
                if isinstance(outcome, BaseException):
                    log.warning("polling job %s failed: %s", job["key"], outcome)
                    summary.errors[job["key"]] = _message(outcome)
                else:
                    summary.changed.append(job["key"])
                    log.info("job %s is now %s", job["key"], job["status"])
            answered.append(job)
        yield answered

    def _save(self, outcomes: list[tuple[dict[str, Any], Any, bool]]) -> None:
        """Save each job of ``_poll_batch``'s outcomes that must be saved."""
        for job, _, save in outcomes:
            if save:
                self.run.write_job(job)

    def _rebuilt(
        self, cls: type[AsyncJobManager], jobs: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], AsyncJobManager]] | None:
        """``(job, its manager from its saved info)`` for every job, in one guarded call: a batch of
        100,000 rebuilt one call at a time took a quarter of a large collect. None if any of them
        raised, for the caller to rebuild them one by one and tell which."""
        context, rebuild = self.context, cls.from_job_info
        try:
            managers = call_user(
                f"{cls.__name__}.from_job_info()",
                lambda: [rebuild(job.get("info", {}), context(job)) for job in jobs],
            )
        except Exception:
            return None
        return list(zip(jobs, managers, strict=True))

    def _poll_batch(
        self, cls: type[AsyncJobManager] | None, pairs: list[tuple[dict[str, Any], AsyncJobManager]]
    ) -> list[tuple[dict[str, Any], Any, bool]]:
        """Poll (one batch call with ``cls``, else each manager in turn) and update the jobs in memory.

        Returns ``(job, True if its status changed | False | the exception its poll raised, whether
        the job must be saved)``, for ``_report`` to save.
        """
        managers = [manager for _, manager in pairs]
        try:
            if cls is None:
                statuses: list[Any] = [_status_or_error(manager) for manager in managers]
            else:
                statuses = list(call_user(f"{cls.__name__}.get_statuses()", cls.get_statuses, managers))
                if len(statuses) != len(managers):
                    raise JobManagerError(
                        f"{cls.__name__}.get_statuses() answered {len(statuses)} statuses for {len(managers)} jobs"
                    )
        except (TransientServiceError, ServiceAuthError) as error:
            statuses = [error] * len(managers)
        except Exception as error:
            if len(managers) == 1:
                statuses = [error]
            else:  # one bad job must not hide the others: ask about each alone
                statuses = [_status_or_error(manager) for manager in managers]
        outcomes = []
        for (job, manager), status in zip(pairs, statuses, strict=True):
            if not isinstance(status, AsyncStatus):
                if not isinstance(status, BaseException):
                    status = _checked(manager, status, "get_status" if cls is None else "get_statuses")
                outcomes.append((job, status, self._warn(job, f"last poll failed: {_message(status)}")))
                continue
            changed = apply_status(job, status, manager.status_reason)
            if manager.status_warning is not None or "warning" in job:  # most jobs: neither
                changed = self._warn(job, manager.status_warning) or changed
            if changed:
                job["info"] = manager.job_info
            if cls is None and status is AsyncStatus.DONE:
                self._fetch_result(job, manager)
            outcomes.append((job, changed, changed))
        return outcomes

    @staticmethod
    def _warn(job: dict[str, Any], warning: Any) -> bool:
        """Set (or with None clear) the job's ``warning`` (as text), shown by ``status``; True if it changed."""
        warning = None if warning is None else str(warning)
        if job.get("warning") == warning:
            return False
        if warning is None:
            job.pop("warning", None)
        else:
            job["warning"] = warning
        return True

    def _fetch_result(self, job: dict[str, Any], manager: AsyncJobManager) -> None:
        """Fetch a done job's result from the polling thread, for the walk that collects it.

        A result is a service call too: fetched one after another by the walk, 1,000 of them at
        50 ms would take 50 s. Only for managers polled job by job, whose calls therefore already
        run in these threads; a failed fetch is left to the walk, which asks again.
        """
        try:
            self.fetched[job["key"]] = call_user(f"{type(manager).__name__}.get_result()", manager.get_result)
        except Exception as error:
            log.info("job %s: fetching its result failed (the walk asks again): %s", job["key"], error)
