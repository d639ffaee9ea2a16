"""What ``collect`` reads before it writes: the stacks it may touch, their jobs and records, checked.

``CollectReads`` is a part of ``quark_cli.engine.BenchmarkManager`` (which gives it ``run``,
``stacks`` and the attributes ``_checked``, ``_edited_stacks`` and ``_candidates_kept``). While the
run's index is current (``quark_cli.run_index``) the jobs come from it, and only files changed since
are read.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from quark_cli.errors import RunDirError
from quark_cli.jobs.base import load_job_manager_class
from quark_cli.summary import CLOSED, PENDING_JOB_STATES
from quark_cli.walk import FAILED, awaited_jobs

#: Records that ``check`` reads and keeps for the collect after it; the others are read again when
#: their stack is walked (100,000 records held at once took 500 MB).
KEPT_RECORDS = 2000


class CollectReads:
    """The reading part of ``BenchmarkManager``."""

    def check(self) -> None:
        """Refuse a damaged run before anything is written (RunDirError naming file and field).

        Reads the records and jobs of every stack ``collect`` may touch (their files are checked as
        they are read), and refuses an unfinished stack whose record names a job without its
        job file: collecting it would submit that job a second time.
        """
        self.run.start_edit_scan()  # if ``runs.collect`` has not: beside the index parse, for ``_edited``
        candidates = self._candidates(self.run.read_index(), self.stacks().keys())
        jobs = {job["key"]: job for job in self._jobs_of(candidates)}
        waiting = {job["stack"] for job in jobs.values() if job.get("status") in PENDING_JOB_STATES}
        # a stack that still waits for a job is read when its jobs are done (``_settle``), not now,
        # unless its record changed after a current index (by hand): a damaged run is refused before
        # anything is written; of the others, the first KEPT_RECORDS are kept for the collect
        edited = self._edited()
        waiting = set() if edited is None else waiting - edited
        # few enough to hold: the records of waiting stacks are read now too (``ahead``), before the
        # poll's threads start; read between their wake-ups, each read waited 0.3 ms for the GIL
        read_ahead = len(candidates) <= KEPT_RECORDS
        records, ahead = {}, {}
        keys = sorted(candidates if read_ahead else candidates - waiting)
        saved = {} if edited is None else self.run.saved_records(set(keys) - edited)  # one file, not one a stack
        for key in keys:
            record = saved.pop(key) if key in saved else self.run.read_record(key)
            self._check_record(key, record, jobs)
            if key in waiting:
                ahead[key] = record
            elif len(records) < KEPT_RECORDS:
                records[key] = record
        self._checked = (candidates, list(jobs.values()), records, ahead)
        loaded = set()
        for job in jobs.values():
            if job["job_manager"] in loaded:  # one class for 100,000 jobs, looked up once
                continue
            try:
                load_job_manager_class(job["job_manager"])
                loaded.add(job["job_manager"])
            except Exception as error:
                raise RunDirError(
                    f"{self.run.job_file(job['key'])}: job_manager: {error}; the file was edited or damaged: "
                    "restore it or remove the run"
                ) from None

    def _jobs_of(self, stacks: set[str]) -> list[dict[str, Any]]:
        """The jobs of ``stacks``, in key order: from the index while it is current (a job not final
        is kept whole there, a final one is read from its file), else from their files."""
        edited = self._edited()
        if edited is None:
            return self.run.jobs_of(stacks)
        index = self.run.read_index_detail()
        jobs = [job for job in self.run.jobs_of(stacks & edited)]  # changed by hand: the files win
        for key, summary in index["final_jobs"].items():
            stack = summary.get("stack")
            if stack in stacks and stack not in edited:
                jobs.append(self.run.read_job(key))
        for job in self.run.read_open_jobs(index).values():  # changed in place by the poll, and written then
            stack = job.get("stack")
            if stack in stacks and stack not in edited:
                jobs.append(job)
        return sorted(jobs, key=itemgetter("key"))

    def _edited(self) -> set[str] | None:
        """Stacks whose files changed after the current index (by hand), read from the files all the
        same; None when the index is not current (every file is read). Asked once a command."""
        if self._edited_stacks is None:
            index = self.run.read_index_detail()
            current = self.run.index_current(index) and self.run.read_open_jobs(index) is not None
            if current:
                keys = index["final_jobs"].keys() | self.run.read_open_jobs(index).keys()
                self._edited_stacks = self.run.changed_since_index(keys)
            else:
                self.run.drop_edit_scan()
        return self._edited_stacks

    def _check_record(self, key: str, record: dict[str, Any] | None, jobs: dict[str, Any]) -> None:
        """RunDirError if an unfinished stack's record names a job that has no job file."""
        for job_key in awaited_jobs(record):
            if job_key not in jobs:
                raise RunDirError(
                    f"{self.run.job_file(job_key)}: missing, yet jobs in {self.run.record_file(key)} names it; "
                    "restore it (collecting without it would submit the job again)"
                )

    def _candidates(self, index: dict[str, str], stacks: Any, retry_failed: bool = False) -> set[str]:
        """The stacks collect may touch: open, not closed in the index, or failed with ``retry_failed``.

        Not to be changed by the caller: the answer is kept for the next call with the same index
        (the same object), open marks and ``retry_failed``, as ``check``'s is for the collect after
        it (0.05 s at 100,000 stacks)."""
        opened = self.run.open_stacks()
        kept = self._candidates_kept
        if kept is not None and kept[0] is index and kept[1] == opened and kept[2] == retry_failed:
            return kept[3]
        candidates = {key for key in stacks if index.get(key) not in CLOSED}
        candidates.update(key for key in opened if key in stacks)
        if retry_failed:
            candidates.update(key for key, status in index.items() if status == FAILED and key in stacks)
        self._candidates_kept = (index, opened, retry_failed, candidates)
        return candidates
