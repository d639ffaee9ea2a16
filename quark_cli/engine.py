"""``BenchmarkManager``: walks every stack of the backlog and resumes interrupted ones.

A stack is walked M1.preprocess -> ... -> Mn.preprocess -> Mn.postprocess -> ... -> M1.postprocess.
When an ``AsyncCore`` phase answers ``Instruction.INTERRUPT`` the stack stops there and its record
says INTERRUPTED; its job is saved in ``jobs/<key>.json``. A later ``collect`` polls the
pending jobs and walks again only the stacks whose jobs are now final: modules above the async point
recompute their (deterministic) preprocess, the async module receives its ``previous_job_info`` and
collects instead of submitting, and the walk goes on down and back up (the seed's continue-mode).
Finished and failed stacks are never walked again (``retry_failed`` resubmits failed jobs on request).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quark_cli.async_core import poll_delays
from quark_cli.cancelling import Cancelling
from quark_cli.collect_reads import CollectReads
from quark_cli.config import BacklogItem, BenchmarkConfig
from quark_cli.defaults import POLL_WORKERS, SUBMIT_WORKERS
from quark_cli.group_commit import GroupCommit, after_commit, checkpoint_staged, group_commit
from quark_cli.job_recovery import JobRecovery
from quark_cli.jobs.base import (
    JobContext,
    LazyJobContext,
)
from quark_cli.keys import stack_key, stack_keys
from quark_cli.module_cache import ModuleCache
from quark_cli.polling import JobPoller
from quark_cli.run_index import job_summary
from quark_cli.stamps import now_iso
from quark_cli.state import ITEMS_DIR, RunDir, file_name
from quark_cli.submitting import SubmissionPool
from quark_cli.summary import (
    CLOSED,
    FAILED_JOB_STATES,
    FINAL_JOB_STATES,
    LIVE_JOB_STATES,
    PENDING_JOB_STATES,
    Summary,
)
from quark_cli.walk import FAILED, FINISHED, INTERRUPTED, SUBMITTING, StackWalk, prefetch_revision

if TYPE_CHECKING:
    from quark_cli.contract import ModuleAdapter

log = logging.getLogger("quark_cli")
#: ``extra`` of a log line after which the run's log is written out (a stack's end).
FLUSH = {"flush_log": True}


def _still_waits(jobs: list[dict[str, Any]]) -> bool:
    """True if a stack's jobs are all live (none failed or to submit) and one is not done yet."""
    if len(jobs) == 1:
        return jobs[0].get("status") in PENDING_JOB_STATES
    statuses = [job.get("status") for job in jobs]
    return LIVE_JOB_STATES.issuperset(statuses) and not PENDING_JOB_STATES.isdisjoint(statuses)


class BenchmarkManager(CollectReads, Cancelling, JobRecovery):
    """Runs a validated config's backlog inside one run directory.

    Usable without the CLI: ``BenchmarkManager(RunDir.open(path), config).collect()``. The caller
    holds the run's lock.
    """

    def __init__(
        self,
        run: RunDir,
        config: BenchmarkConfig,
        wait_timeout: float | None = None,
        poll_workers: int = POLL_WORKERS,
        on_phase: Callable[[str, str, str], None] | None = None,
        submit_workers: int = SUBMIT_WORKERS,
    ) -> None:
        self.run = run
        self.config = config
        self.wait_timeout = wait_timeout
        self.poll_workers = max(1, poll_workers)
        #: Stacks a submit walks at once (``quark_cli.submitting``); 1 walks them one after another.
        self.submit_workers = max(1, submit_workers)
        self._submissions: SubmissionPool | None = None
        self._concurrent_seen = False
        self._index: dict[str, str] | None = None
        self._edited_stacks: set[str] | None = None
        #: ``_candidates``' last answer and what it was for: (index, open marks, retry_failed, answer)
        self._candidates_kept: tuple[dict[str, str], set[str], bool, set[str]] | None = None
        #: What ``check`` read (candidates, their jobs, their records), reused by the next collect.
        self._checked: tuple[set[str], list[dict[str, Any]], dict[str, Any], dict[str, Any]] | None = None
        self._records: dict[str, Any] = {}
        self._ahead: dict[str, Any] = {}  # records of waiting stacks read by ``check``, used once their jobs are in
        #: Results of done jobs fetched by the polling threads, by job key, until their walk takes them.
        self._fetched: dict[str, Any] = {}
        #: Records saved by this object, as results.json lines, by stack: results.json is rebuilt from
        #: them, not from disk (lines, not dicts: a 100,000-stack submit holds them all).
        self._stored: dict[str, bytes] = {}
        self._module_paths: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        self._module_cache = ModuleCache()
        self._stacks: dict[str, tuple[int, int]] | None = None
        self._jobs_dir: Path | None = None
        self._store_dirs: dict[int, str] = {}
        self._run_root: Path | None = None
        #: Told ``(stack key, module path, "pre" | "post")`` as each phase starts, for progress displays.
        self.on_phase = on_phase

    def module_paths(self, item: BacklogItem) -> list[tuple[str, str]]:
        """``(module path, its file-name-safe form)`` of each level of a backlog item, computed once
        per shape of stack (items differ in parameters, rarely in modules)."""
        names = tuple(item.module_names)
        paths = self._module_paths.get(names)
        if paths is None:
            paths = [(".".join(names[: i + 1]), file_name(".".join(names[: i + 1]))) for i in range(len(names))]
            self._module_paths[names] = paths
        return paths

    def kept_modules(self, item: BacklogItem) -> list[ModuleAdapter] | None:
        """The modules an earlier walk built for a stack of ``item``'s shape, when they all allow reuse
        (``Core.reusable``); None while stacks are walked at the same time (a submit's pool)."""
        return None if self._submissions is not None else self._module_cache.get(item)

    def keep_modules(self, item: BacklogItem, modules: list[ModuleAdapter]) -> None:
        """Keep the modules built for a stack of ``item`` for the next walks, if they allow it."""
        if self._submissions is None:
            self._module_cache.keep(item, modules)

    def stacks(self) -> dict[str, tuple[int, int]]:
        """Every stack's key with its (backlog item index, repetition); items are made when needed."""
        if self._stacks is None:
            self._stacks = stack_keys(len(self.config.backlog), self.config.repetitions)
        return self._stacks

    def start(
        self, sequential: bool, on_stack: Callable[[str, str], None] | None = None, failfast: bool = False
    ) -> Summary:
        """Walk every stack from the start: to the end (``sequential``) or to its first async point.

        With ``failfast`` (QUARK 2's ``--failfast``) the first stack that fails ends the pass; the
        stacks after it are not started (``collect`` starts them later) and the run stays consistent.
        """
        summary = Summary()
        prefetch_revision()
        pooled = not sequential and not failfast and self.submit_workers > 1
        with nullcontext() if sequential else group_commit(self.run.path) as group:
            for item in self.config.backlog:
                for repetition in range(1, self.config.repetitions + 1):
                    key = stack_key(item.index, repetition)
                    if pooled and self._concurrent_seen:  # the rest on threads, from this stack on
                        self._start_pooled(summary, on_stack, (item.index, repetition), group)
                        self._finish(summary)
                        return summary
                    status = self._walk(key, item, repetition, {}, sequential, summary)
                    if on_stack:
                        on_stack(key, status)
                    if failfast and status == FAILED:
                        summary.stopped_at = key
                        break
                if summary.stopped_at:
                    break
            self._finish(summary)
        return summary

    def _start_pooled(
        self,
        summary: Summary,
        on_stack: Callable[[str, str], None] | None,
        first: tuple[int, int],
        group: GroupCommit,
    ) -> None:
        """The rest of a submit from stack ``first`` (item index, repetition) on: each stack walked on
        a ``SubmissionPool`` thread, in backlog order, their submissions overlapping; ``on_stack`` is
        told in this thread as each stack ends.

        Only once a walk has met a job manager that allows concurrent submissions: a backlog without
        one (the local backend, a synchronous stack) is walked in the main thread, as ``run`` does.
        """
        with SubmissionPool(self.submit_workers) as pool:
            self._submissions = pool
            group.others_coming = pool.walks_coming  # a walk under way brings its intent soon
            try:
                for position in range(first[0], len(self.config.backlog)):
                    item = self.config.backlog[position]
                    for repetition in range(first[1] if item.index == first[0] else 1, self.config.repetitions + 1):
                        key = stack_key(item.index, repetition)
                        ended = pool.start(key, self._walk, key, item, repetition, {}, False, summary)
                        for done, status in ended:
                            if on_stack:
                                on_stack(done, status)
                for done, status in pool.close():
                    if on_stack:
                        on_stack(done, status)
            finally:
                self._submissions = None
                group.others_coming = None

    def submission_window(self, manager: Any) -> Any:
        """What a walk's submission runs in: outside the module lock of a ``SubmissionPool`` when one
        walks this stack and the job's manager allows concurrent submissions, else as it is."""
        if not getattr(type(manager), "concurrent_submissions", False):
            return nullcontext()
        self._concurrent_seen = True
        pool = self._submissions
        return nullcontext() if pool is None else pool.unlocked()

    def collect(
        self,
        retry_failed: bool = False,
        resubmit_uncertain: bool = False,
        on_stack: Callable[[str, str], None] | None = None,
    ) -> Summary:
        """Poll pending jobs once and continue every stack whose jobs are all final.

        Reads only the stacks that may have work left (open, not started, or failed with
        ``retry_failed``): the cost grows with the pending work, not with the finished stacks. A
        stack is continued as soon as the answers about its jobs are in, while other polls go on.
        """
        summary = Summary()
        index = self._index = self.run.read_index()
        current = self.run.index_current(self.run.read_index_detail())
        stacks = self.stacks()
        candidates = self._candidates(index, stacks.keys(), retry_failed)
        for key in stacks.keys() - candidates:
            summary.stacks[key] = index[key]
        if candidates:
            prefetch_revision()
        checked, self._checked = self._checked, None
        if checked and (checked[0] is candidates or checked[0] == candidates):
            candidate_jobs, self._records, self._ahead = checked[1], dict(checked[2]), dict(checked[3])
        else:
            candidate_jobs, self._records, self._ahead = self._jobs_of(candidates), {}, {}
        # one pass over the jobs, not a generator per stack: 100,000 stacks wait in a large sweep
        jobs_by_stack: dict[str, list[dict[str, Any]]] = {}
        waiting = dict.fromkeys(candidates, 0)
        pending, uncertain = [], []
        for job in candidate_jobs:
            stack = job["stack"]
            same = jobs_by_stack.get(stack)
            if same is None:
                jobs_by_stack[stack] = [job]
            else:
                same.append(job)
            status = job.get("status")
            if status in PENDING_JOB_STATES:
                pending.append(job)
                waiting[stack] += 1
            elif status == SUBMITTING:
                uncertain.append(job)
        if uncertain:
            self._resolve_uncertain(uncertain, summary)
            adopted = [job for job in uncertain if job.get("status") in PENDING_JOB_STATES]
            for job in adopted:
                waiting[job["stack"]] += 1
            if adopted:
                pending = sorted(pending + adopted, key=itemgetter("key"))

        def settle(key: str) -> None:
            position, repetition = stacks[key]
            item = self.config.backlog[position]
            self._settle(
                key, item, repetition, jobs_by_stack.get(key, []), index, summary, retry_failed, resubmit_uncertain
            )
            if on_stack:
                on_stack(key, summary.stacks[key])

        with group_commit(self.run.path):
            for key in sorted(key for key, count in waiting.items() if count == 0):
                settle(key)
            poller = JobPoller(self.run, self.poll_workers, self._context, self._fetched)
            records, statuses = self._records, summary.stacks
            for answered in poller.poll(pending, summary):
                for job in answered:
                    stack = job["stack"]
                    left = waiting[stack] - 1
                    waiting[stack] = left
                    if left:
                        continue
                    if (
                        current
                        and index.get(stack) == INTERRUPTED
                        and stack not in records
                        and _still_waits(jobs_by_stack[stack])
                    ):  # still waits for a job, as the current index says it did: nothing to read or write
                        statuses[stack] = INTERRUPTED
                        if on_stack:
                            on_stack(stack, INTERRUPTED)
                    else:
                        settle(stack)
            self._finish(summary)
        return summary

    def _settle(
        self,
        key: str,
        item: BacklogItem,
        repetition: int,
        jobs: list[dict[str, Any]],
        index: dict[str, str],
        summary: Summary,
        retry_failed: bool,
        resubmit_uncertain: bool,
    ) -> None:
        """Decide one open stack once its jobs are polled: close it, fail it, keep it, or walk it."""
        if key in self._records:
            record = self._records.pop(key)
        elif key in self._ahead:
            record = self._ahead.pop(key)
        else:  # a stack that waited for a job when the collect began, or one of many
            record = self.run.read_record(key)
            self._check_record(key, record, {job["key"]: job for job in jobs})
        state = record.get("quark_job_status") if record else None
        pending = any(job.get("status") in PENDING_JOB_STATES for job in jobs)
        uncertain = [job["key"] for job in jobs if job.get("status") == SUBMITTING]
        settled = state == FINISHED or (state == FAILED and not retry_failed)
        if settled:
            self.run.mark_closed(key)
            summary.stacks[key] = state
            if index.get(key) != state:
                summary.changed.append(key)
            return
        failed_job = any(job.get("status") in FAILED_JOB_STATES for job in jobs)
        # a stack with a failed job and none pending is failed, even if a kill stopped its record
        # from saying so (between a cancel's job and its record): walked again, as any failed stack
        if retry_failed and (state == FAILED or (failed_job and not pending)):
            self.run.mark_open(key)
            jobs = [self._retry(job, summary) if job.get("status") in FAILED_JOB_STATES else job for job in jobs]
        if uncertain and not resubmit_uncertain:
            summary.stacks[key] = INTERRUPTED
            summary.uncertain.extend(uncertain)
            return
        if pending and state == INTERRUPTED:
            summary.stacks[key] = INTERRUPTED
            return
        failed = [job for job in jobs if job.get("status") in FAILED_JOB_STATES]
        if failed and record is not None:
            self._fail_from_job(key, record, failed[0], summary)
        else:
            usable = {(job["level"], job["phase"]): job for job in jobs if job.get("status") != SUBMITTING}
            self._walk(key, item, repetition, usable, False, summary, record)

    def _store(self, key: str, record: dict[str, Any]) -> None:
        """Save a stack's record; a finished or failed stack is closed only once its record is in place."""
        self._stored[key] = self.run.write_record(key, record)
        if record["quark_job_status"] in CLOSED:
            after_commit(self.run.mark_closed, key)

    def _finish(self, summary: Summary) -> None:
        """End of a pass: results.json with this pass's changed records, and the stack index (after
        the records and jobs are durable, and the journal's room is given back)."""
        checkpoint_staged()
        changed = {key for key in summary.changed if key in summary.stacks}
        # records edited by hand since the index get their lines from their files too: the next
        # index makes them look unedited, and a later collect reads records from results.json
        changed.update(key for key in self._edited_stacks or () if key in summary.stacks)
        self.run.rebuild_results(changed, self._stored)
        self._write_index(summary)

    def _write_index(self, summary: Summary) -> None:
        """The index after this pass: the previous one, updated with what this pass saw and saved."""
        previous = self.run.read_index_detail()
        open_jobs = self.run.read_open_jobs(previous) if self.run.index_current(previous) else None
        unchanged = previous is not None and not self.run.written_jobs and previous["stacks"] == summary.stacks
        if unchanged and open_jobs is not None and self.run.results_written is None:
            return  # files edited by hand since the index stay newer than it: readers still read them
        edited = sorted(self._edited_stacks or ()) if open_jobs is not None else []
        changed_jobs = None
        if open_jobs is not None and not edited:
            final_jobs = previous["final_jobs"]
            changed_jobs = list(self.run.written_jobs)  # the rest is as read: the changes may do
        else:  # killed before its index, made by an earlier quark-cli, or files edited by hand since it:
            # the jobs from their files (the index written now vouches for the files as they are)
            known = [] if self.run.fresh else self.run.read_jobs()
            final_jobs = {job["key"]: job_summary(job) for job in known if job.get("status") in FINAL_JOB_STATES}
            open_jobs = {job["key"]: job for job in known if job.get("status") not in FINAL_JOB_STATES}
        errors = {}
        if previous is not None:
            errors = {key: error for key, error in previous["errors"].items() if summary.stacks.get(key) == FAILED}
        for key in edited:  # a record edited by hand and not walked since: its status and error as it says
            if key not in summary.stacks or key in summary.errors:
                continue
            record = self.run.read_record(key)
            if record and isinstance(record.get("quark_job_status"), str):
                summary.stacks[key] = record["quark_job_status"]
                errors.pop(key, None)
                if record["quark_job_status"] == FAILED and record.get("error"):
                    errors[key] = str(record["error"])
        errors.update((key, error) for key, error in summary.errors.items() if summary.stacks.get(key) == FAILED)
        for key, job in self.run.written_jobs.items():
            final_jobs.pop(key, None)
            open_jobs.pop(key, None)
            if job is None:  # removed: it never reached its service
                continue
            if job.get("status") in FINAL_JOB_STATES:
                final_jobs[key] = job_summary(job)
            else:
                open_jobs[key] = job
        self.run.write_index(summary.stacks, errors, final_jobs, open_jobs, changed_jobs)
        self.run.written_jobs.clear()

    def wait(
        self,
        timeout: float | None,
        retry_failed: bool = False,
        on_pass: Callable[[Summary], None] | None = None,
        on_stack: Callable[[str, str], None] | None = None,
        resubmit_uncertain: bool = False,
    ) -> Summary:
        """``collect`` repeatedly, backing off between passes, until nothing is pending or ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delays = poll_delays(first=0.2, cap=30.0)
        summary = self.collect(retry_failed=retry_failed, resubmit_uncertain=resubmit_uncertain, on_stack=on_stack)
        changed = list(summary.changed)
        while summary.pending and not summary.uncertain:
            if on_pass:
                on_pass(summary)
            delay = next(delays)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                delay = min(delay, remaining)
            time.sleep(delay)
            summary = self.collect(on_stack=on_stack)
            changed.extend(summary.changed)
        summary.changed = changed
        return summary

    def _fail_from_job(self, key: str, record: dict[str, Any], job: dict[str, Any], summary: Summary) -> None:
        reason = f"job {job['key']} {job['status'].lower()}: {job.get('error') or job['status']}"
        record.update(quark_job_status=FAILED, error=reason, timestamp=now_iso())
        record.get("module", {})["quark_job_status"] = FAILED
        self._store(key, record)
        summary.stacks[key] = FAILED
        summary.changed.append(key)
        summary.errors[key] = reason

    def _index_says_closed(self, key: str) -> bool:
        """True if the index read at this command's start has ``key`` finished or failed: walking it
        again needs an open mark, or a kill would leave it looking closed with work left."""
        if self._index is None:
            self._index = {} if self.run.fresh else self.run.read_index()
        return self._index.get(key) in CLOSED

    def _context(self, job: dict[str, Any]) -> JobContext:
        """``job_context`` of a saved job (called for each of 100,000 polled jobs: no call between)."""
        return LazyJobContext(job["key"], self._jobs_dir or self._absolute_jobs_dir(), job.get("module_config", {}))

    def job_context(self, key: str, config: dict[str, Any]) -> JobContext:
        """Job ``key``'s context: ``config`` and its absolute folder (a path, made by its backend when it
        needs one, and computed only when asked for)."""
        return LazyJobContext(key, self._absolute_jobs_dir(), config)

    def _absolute_jobs_dir(self) -> Path:
        if self._jobs_dir is None:
            self._jobs_dir = self.run.jobs_dir.absolute()
        return self._jobs_dir

    def store_dir(self, index: int, made: bool = True) -> str:
        """QUARK 2's ``store_dir`` of backlog item ``index``: its absolute folder, made on first use
        when ``made`` (a module of the stack may write there, ``Core.uses_store_dir``)."""
        folder = self._store_dirs.get(index)
        if folder is None:
            if self._run_root is None:
                self._run_root = self.run.path.absolute()
            folder = os.path.join(self._run_root, ITEMS_DIR, f"benchmark_{index}")
            if not made:
                return folder
            self.run.item_dir(index)
            self._store_dirs[index] = folder
        return folder

    def _walk(
        self,
        key: str,
        item: BacklogItem,
        repetition: int,
        jobs: dict[tuple[int, str], dict[str, Any]],
        sequential: bool,
        summary: Summary,
        previous: dict[str, Any] | None = None,
    ) -> str:
        """Walk one stack down and up, stopping at an interrupt; write its record.

        ``previous`` is the stack's saved record (collect), handed over: its levels go back to the
        modules, which may change them.
        """
        if self._index_says_closed(key):  # else the index makes it a candidate of collect already
            self.run.mark_open(key)
        walk = StackWalk(self, key, item, repetition, jobs, sequential, previous)
        record = walk.record(*walk.run())
        status, error = record["quark_job_status"], record["error"]
        if error:  # module code raised (or its metrics could not be read): its state is not to serve the next
            self._module_cache.drop(item)
        self._store(key, record)
        summary.stacks[key] = status
        summary.changed.append(key)
        if error:
            summary.errors[key] = error
        log.info("stack %s %s%s", key, status, f": {error}" if error else "", extra=FLUSH)
        return status
