"""A run's stacks and jobs on disk: job files, records, and the marks of stacks that may have work left.

``StackFiles`` is a part of ``quark_cli.state.RunDir`` (which sets the attributes it uses and says
where each file lies). Writes go through the group commit (``quark_cli.group_commit``); reads are
checked against the files' schema (``quark_cli.schema``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from quark_cli.atomic import defer_dir_sync, fsync_dir, json_bytes, private_dirs
from quark_cli.group_commit import checkpoint_staged, committed_write, staged_write, staging
from quark_cli.keys import is_job_key, job_key_of, stack_of
from quark_cli.schema import SCHEMA_VERSION, read_json


class StackFiles:
    """The stacks' and jobs' files part of ``RunDir``."""

    path: Path
    jobs_dir: Path
    records_dir: Path
    _records_prefix: str
    flat_jobs: bool
    fresh: bool
    written_jobs: dict[str, dict[str, Any] | None]
    _known_open: set[str]
    _open_listed: bool

    def job_file(self, key: str) -> Path:
        """Where job ``key``'s job_info is saved: ``jobs/<key>.json`` (``jobs/<key>/job_info.json`` in
        a run of run.json version 1)."""
        if self.flat_jobs:
            return self.jobs_dir / f"{key}.json"
        return self.jobs_dir / key / "job_info.json"

    def job_keys(self, stacks: set[str] | None = None) -> list[str]:
        """The keys of the jobs that have a job file (of ``stacks`` only, when given), sorted, without
        reading any: one listing of ``jobs/``, and in a run of run.json version 1 a stat a job."""
        try:
            entries = list(os.scandir(self.jobs_dir))
        except FileNotFoundError:
            return []
        flat = self.flat_jobs
        keys = []
        for entry in entries:
            key = job_key_of(entry.name, flat)
            if key is None or (stacks is not None and stack_of(key) not in stacks):
                continue
            if flat or (entry.is_dir() and os.path.exists(os.path.join(entry.path, "job_info.json"))):
                keys.append(key)
        return sorted(keys)

    def write_job(self, job: dict[str, Any], durable: bool = False) -> None:
        """Save a job's info; ``durable`` for the intent written before a service is called.

        In a group commit, what follows the intent (the id a service just gave) is staged and lands
        before the next intent does (the queue is committed in order), so before the next service
        call: a kill leaves "submission uncertain" only the jobs whose service was being called or
        had just answered. Writes after the intent need no folder fsync: the intent made the folder
        durable, and losing a later rewrite in a power cut leaves an earlier, valid state that the
        next collect moves on.
        """
        self.changing()
        path = self.job_file(job["key"])
        value = json_bytes({"schema_version": SCHEMA_VERSION, **job}, compact=True)
        if durable:  # in a group commit: committed with the other threads' intents
            committed_write(path, value)
        else:
            staged_write(path, value, sync_dir=False)
        self.written_jobs[job["key"]] = dict(job)

    def remove_job(self, key: str) -> None:
        """Delete a job that never reached its service (its intent only), and forget it in the index."""
        self.changing()
        checkpoint_staged()  # its journaled intent must not come back in a replay after a kill
        self.job_file(key).unlink(missing_ok=True)
        self.written_jobs[key] = None

    def archive_attempt(self, key: str, attempt: int) -> str:
        """Move a job's backend files into its ``attempts/<attempt>/`` folder; the folder, relative to the job's.

        The job folder is then fresh for the next attempt but for ``job_info.json``. Safe to repeat
        after a kill part-way: what was moved stays moved, the rest follows.
        """
        folder = self.jobs_dir / key
        kept = Path("attempts") / str(attempt)
        if folder.is_dir():
            kept_here = ("attempts",) if self.flat_jobs else ("attempts", "job_info.json")
            names = [name for name in os.listdir(folder) if name not in kept_here and not name.startswith(".job_info")]
            if names:
                private_dirs(folder / kept)
                for name in names:
                    os.replace(folder / name, folder / kept / name)
        return str(kept)

    def read_job(self, key: str) -> dict[str, Any]:
        return read_json(self.job_file(key), "job_info")

    def read_jobs(self) -> list[dict[str, Any]]:
        """Every job of the run, in key order."""
        return [self.read_job(key) for key in self.job_keys()]

    @property
    def open_dir(self) -> Path:
        return self.path / "open"

    def mark_open(self, key: str) -> None:
        """Note that a stack may have work left; set before its first job can be submitted."""
        if key in self._known_open:
            return
        self.changing()
        if not self._known_open:
            self.open_dir.mkdir(mode=0o700, exist_ok=True)
        self._known_open.add(key)
        if staging(self.open_dir):  # committed with, or before, the stack's first intent
            staged_write(self.open_dir / key, b"")
            return
        (self.open_dir / key).touch(mode=0o600)
        if not defer_dir_sync(self.open_dir):
            fsync_dir(self.open_dir)

    def mark_closed(self, key: str) -> None:
        """Note that a stack is finished or failed; cleared only after its record says so."""
        if (self._open_listed or self.fresh) and key not in self._known_open:
            return  # no mark to clear: none was there when this process looked, nor made since
        (self.open_dir / key).unlink(missing_ok=True)
        self._known_open.discard(key)
        defer_dir_sync(self.open_dir)

    def open_stacks(self) -> set[str]:
        """Stacks that may have work left (a superset: a stale mark is harmless, a missing one is not)."""
        try:
            found = {name for name in os.listdir(self.open_dir) if not name.startswith(".")}
        except FileNotFoundError:
            found = set()
        self._known_open = set(found)
        self._open_listed = True
        return found

    def record_keys(self) -> set[str]:
        """Stacks that have a record, without reading them."""
        try:
            names = os.listdir(self.records_dir)
        except FileNotFoundError:
            return set()
        return {name[: -len(".json")] for name in names if name.endswith(".json") and not name.startswith(".")}

    def job_stacks(self) -> set[str]:
        """Stacks that have a job file or a job folder, without reading any job."""
        try:
            names = os.listdir(self.jobs_dir)
        except FileNotFoundError:
            return set()
        keys = (name[: -len(".json")] if name.endswith(".json") else name for name in names)
        return {stack_of(key) for key in keys if is_job_key(key)}

    def read_record(self, key: str) -> dict[str, Any] | None:
        return read_json(self.record_file(key), "record", missing_ok=True)

    def jobs_of(self, stacks: set[str]) -> list[dict[str, Any]]:
        """The jobs of some stacks only (job keys start with their stack key), in key order."""
        if not stacks:
            return []
        return [self.read_job(key) for key in self.job_keys(stacks)]

    def record_file(self, key: str) -> Path:
        return self.records_dir / f"{key}.json"

    def write_record(self, key: str, record: dict[str, Any]) -> bytes:
        """Save a stack's record (with its schema version) as one line of compact JSON; returns that
        line (without its newline), which is also the record's line of results.json."""
        data = json_bytes({"schema_version": SCHEMA_VERSION, **record}, compact=True)
        self.changing()
        staged_write(f"{self._records_prefix}{key}.json", data)  # the path as text: no Path made a stack
        return data[:-1]

    def read_records(self) -> dict[str, dict[str, Any]]:
        """Every stack record by stack key."""
        if not self.records_dir.is_dir():
            return {}
        records = {}
        for entry in sorted(os.scandir(self.records_dir), key=lambda e: e.name):
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                records[entry.name[: -len(".json")]] = read_json(Path(entry.path), "record")
        return records
