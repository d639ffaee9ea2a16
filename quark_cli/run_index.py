"""A run's index: every stack's status and every job in a few files, read instead of thousands.

``index.json`` holds each stack's status, the errors of failed stacks and a summary of every final
job; ``open_jobs.json`` beside it holds every job not final yet, whole (what ``collect`` polls), and
``open_job_summaries.json`` their summaries (what ``status`` shows), each tied to the index by a
``generation``. They are written at the end of each command that changed the run, whole or by their
changes (``quark_cli.index_changes``).
A command marks the run (``.changing``) before its first change and clears the mark once its index
is written: while there is no mark, the index is *current* and tells everything; after a kill it
is trusted only for closed stacks, and the next command reads the files and writes it again.

``RunIndex`` is a part of ``quark_cli.state.RunDir`` (which sets the attributes it uses).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any

import orjson

from quark_cli import index_changes
from quark_cli.atomic import atomic_write_bytes, atomic_write_json, file_stamp, fsync_dir, json_bytes
from quark_cli.disk import open_regular
from quark_cli.errors import NotRegularFileError, RunDirError
from quark_cli.journal import read_locked
from quark_cli.schema import SCHEMA_VERSION

INDEX_FILE = "index.json"
#: Present from a command's first change of a stack or job until its index is written: while it is
#: there (a command runs, or was killed), the index may lag behind the files.
CHANGING_FILE = ".changing"
#: The jobs not final yet, whole, of the index's generation: what collect polls.
OPEN_JOBS_FILE = "open_jobs.json"
#: Their summaries: what status shows of them, kept apart so that collect never parses them.
OPEN_SUMMARIES_FILE = "open_job_summaries.json"
#: The index's files by their names in the digests.
_FILES = {
    "index": INDEX_FILE,
    "open_jobs": OPEN_JOBS_FILE,
    "open_summaries": OPEN_SUMMARIES_FILE,
    "changes": index_changes.CHANGES_FILE,
}
#: The SHA-256 of each as last written, written after them: a copied-in or hand-edited index is not current.
DIGEST_FILE = "index.sha256"
#: The digests' entry for the job files' folder's change time at which every job file the index
#: names was there (``IndexEdits.vouch_job_names``).
JOBS_LISTED = "jobs_listed"

JOB_SUMMARY_FIELDS = (
    "key",
    "stack",
    "module_path",
    "phase",
    "status",
    "attempt",
    "submitted_at",
    "status_since",
    "error",
    "warning",
)


def job_summary(job: dict[str, Any]) -> dict[str, Any]:
    """The part of a job that ``quark status`` shows, kept in the index."""
    return {**{name: job.get(name) for name in JOB_SUMMARY_FIELDS}, "id": (job.get("info") or {}).get("id")}


def _sorted(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` by key (sorting the keys alone: pairs compare slower, 0.4 s at 100,000 stacks)."""
    return {key: values[key] for key in sorted(values)}


def _index_bytes(value: dict[str, Any]) -> bytes:
    """``value`` as compact JSON, by orjson: 20 times quicker than the standard library at the index's
    tens of MB. Its values were all written as strict JSON before (records, job files), so none is
    a NaN; a string orjson refuses (a lone surrogate, as in a file name's undecodable bytes) makes
    the standard library's encoder write the whole value instead."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json_bytes(value, compact=True)


def _index_value(raw: bytes) -> Any:
    """The JSON value of ``raw`` (orjson; the standard library's parser for the lone surrogates that
    ``_index_bytes`` leaves to it). ValueError if it is not JSON.

    The cyclic garbage collector is paused meanwhile, and what was parsed is frozen after
    (``gc.freeze``: left out of every later collection; reference counting still frees it). Parsed
    JSON holds no cycles, and at 100,000 stacks the collections run over the million objects being
    made took 0.6 s of a collect, and those run over them later, as they aged, 0.2-0.5 s more.
    """
    with gc_paused():
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:
                value = json.loads(raw)
            except RecursionError:  # nested past what the parser follows: damaged, as any bad JSON
                raise ValueError("nested too deeply") from None
        gc.freeze()
        return value


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection in the block (reference counting still frees what it can)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class RunIndex:
    """The index part of ``RunDir``: reading, writing and trusting ``index.json`` and ``open_jobs.json``."""

    path: Path
    jobs_dir: Path
    flat_jobs: bool
    records_dir: Path
    _changing: bool
    _was_current: bool
    _index_cache: tuple[tuple[int, ...] | None, dict[str, Any] | None] | None
    _open_jobs_cache: tuple[str, dict[str, dict[str, Any]]] | None
    _open_summaries_cache: tuple[str, dict[str, dict[str, Any]]] | None
    results_written: str | None
    vouch_job_names: Callable[[Iterable[str]], str | None]  # ``quark_cli.index_edits``

    def read_index(self) -> dict[str, str]:
        """Stack statuses as the last command left them: a cache, trusted only for closed stacks."""
        index = self.read_index_detail()
        return index["stacks"] if index else {}

    def read_index_detail(self) -> dict[str, Any] | None:
        """The index (``stacks``, ``errors`` of failed stacks, ``final_jobs`` summaries), or None.

        Read once while the file stays the same (its inode, size and time): a command asks for it
        several times, and at 100,000 stacks it is tens of MB. Callers may change what they get only
        to hand it to ``write_index``.
        """
        path = self.path / INDEX_FILE
        stamp = self._index_stamp()
        if stamp is None:
            return None
        if self._index_cache is not None and self._index_cache[0] == stamp:
            return self._index_cache[1]
        parts = self._parse_index(path)
        self._index_cache = (stamp, parts)
        return parts

    def _index_stamp(self) -> tuple[int, ...] | None:
        """The identity, size and time of index.json and of the digests (rewritten with its changes
        alone): what ``read_index_detail``'s copy is kept by. None without an index."""
        try:
            info = os.stat(self.path / INDEX_FILE)
        except OSError:
            return None
        try:
            digests = os.stat(self.path / DIGEST_FILE)
        except OSError:
            return (info.st_ino, info.st_size, info.st_mtime_ns)
        return (info.st_ino, info.st_size, info.st_mtime_ns, digests.st_ino, digests.st_size, digests.st_mtime_ns)

    def _parse_index(self, path: Path) -> dict[str, Any] | None:
        try:
            raw = read_locked(path)
            value = _index_value(raw)
        except (OSError, ValueError):
            return None
        if not isinstance(value, dict) or value.get("schema_version") != SCHEMA_VERSION:
            return None
        parts = {name: value.get(name) for name in ("stacks", "errors", "final_jobs")}
        if not all(isinstance(part, dict) for part in parts.values()):
            return None
        generation = value.get("generation")
        digests = self._digests()
        if not self._as_written("index", raw, digests):
            # copied in, edited by hand, restored, or of an earlier quark-cli (no digest): not this
            # run's own, so not even its closed stacks are trusted; commands read the files and
            # write it anew
            return None
        parts["complete"] = value.get("complete") is True and isinstance(generation, str)
        parts["generation"] = parts["base_generation"] = generation
        # a cache: if it was edited into shapes we do not write, it is rebuilt rather than trusted
        if not all(isinstance(status, str) for status in parts["stacks"].values()):
            return None
        if not all(isinstance(error, str) for error in parts["errors"].values()):
            return None
        if not index_changes.plain_summaries(parts["final_jobs"].values()):
            return None
        parts["changes"] = index_changes.empty()
        if "changes" in digests:
            read = self._read_changes(generation)
            if read is None:
                return None
            parts["generation"], parts["changes"] = read
            index_changes.apply(parts, parts["changes"])
        return parts

    def _read_changes(self, base: Any) -> tuple[str, dict[str, dict[str, Any]]] | None:
        """The generation and the parts of the index's changes (``quark_cli.index_changes``) if the
        file is as written last (``_as_written``) for the whole index of generation ``base``; else None."""
        try:
            raw = read_locked(self.path / index_changes.CHANGES_FILE)
            value = _index_value(raw)
        except (OSError, ValueError):
            return None
        if not self._as_written("changes", raw) or not isinstance(value, dict) or value.get("base") != base:
            return None
        changes = index_changes.parsed(value)
        generation = value.get("generation")
        if changes is None or not isinstance(generation, str):
            return None
        return generation, changes

    def write_index(
        self,
        stacks: dict[str, str],
        errors: dict[str, str],
        final_jobs: dict[str, dict[str, Any]],
        open_jobs: dict[str, dict[str, Any]],
        changed_jobs: Collection[str] | None = None,
    ) -> None:
        """Save the index: every stack's status, failed stacks' errors and a summary of every final
        job (``final_jobs``, by key); and beside it, every job not final yet as a whole (``open_jobs``,
        what ``collect`` polls) and their summaries.

        A cache for status and collect (a few files instead of one per stack and job), rewritten at
        the end of each command. While no command has changed the run since (``index_current``), it
        tells everything; otherwise readers trust it only for stacks closed in it and not open.

        ``changed_jobs``: given when ``final_jobs`` and ``open_jobs`` are those of the index as this
        object read it (``read_index_detail``, ``read_open_jobs``), with the jobs of these keys
        changed: then only what changed is written (``quark_cli.index_changes``) while it is little.
        """
        before = self._index_cache[1] if self._index_cache is not None else None
        if changed_jobs is not None and before is not None and before["generation"] == self._open_generation():
            changed = {}
            for key in changed_jobs:
                whole = open_jobs.get(key)
                changed[key] = (job_summary(whole), whole) if whole is not None else (final_jobs.get(key), None)
            changes = index_changes.merged(before["changes"], before, stacks, errors, changed)
            if not index_changes.too_many(changes, len(final_jobs) + len(open_jobs)):
                self._write_changes(before, changes, stacks, errors, final_jobs, open_jobs)
                return
        generation = uuid.uuid4().hex
        open_jobs = _sorted(open_jobs)
        digests = {}
        for name, file, jobs in (
            ("open_jobs", OPEN_JOBS_FILE, open_jobs),
            ("open_summaries", OPEN_SUMMARIES_FILE, {key: job_summary(job) for key, job in open_jobs.items()}),
        ):  # first: an index names its own open jobs
            raw = _index_bytes({"schema_version": SCHEMA_VERSION, "generation": generation, "jobs": jobs})
            atomic_write_bytes(self.path / file, raw)
            digests[name] = hashlib.sha256(raw).hexdigest()
        self._open_jobs_cache = (generation, open_jobs)
        self._open_summaries_cache = None
        parts = {
            "stacks": _sorted(stacks),
            "errors": _sorted(errors),
            "final_jobs": _sorted(final_jobs),
            "generation": generation,
        }
        index_bytes = _index_bytes({"schema_version": SCHEMA_VERSION, **parts, "complete": True})
        atomic_write_bytes(self.path / INDEX_FILE, index_bytes)
        digests["index"] = hashlib.sha256(index_bytes).hexdigest()
        self._write_digests(digests, ("index", "open_jobs", "open_summaries"), chain(final_jobs, open_jobs))
        (self.path / index_changes.CHANGES_FILE).unlink(missing_ok=True)  # the digests name it no more
        parts.update(complete=True, base_generation=generation, changes=index_changes.empty())
        self._index_written(parts)

    def _write_changes(
        self,
        before: dict[str, Any],
        changes: dict[str, dict[str, Any]],
        stacks: dict[str, str],
        errors: dict[str, str],
        final_jobs: dict[str, dict[str, Any]],
        open_jobs: dict[str, dict[str, Any]],
    ) -> None:
        """``write_index`` by its changes since the whole index ``before`` was read with."""
        generation = uuid.uuid4().hex
        document = {"schema_version": SCHEMA_VERSION, "base": before["base_generation"], "generation": generation}
        raw = _index_bytes({**document, **changes})
        atomic_write_bytes(self.path / index_changes.CHANGES_FILE, raw)
        digests = self._digests()
        kept = {name: digests.get(name, "") for name in ("index", "open_jobs", "open_summaries")}
        kept.update((f"{name}_stamp", digests.get(f"{name}_stamp", "")) for name in list(kept))
        self._write_digests(
            {**kept, "changes": hashlib.sha256(raw).hexdigest()}, ("changes",), chain(final_jobs, open_jobs)
        )
        self._open_jobs_cache = (generation, open_jobs)
        self._open_summaries_cache = None
        self._index_written(
            {
                "stacks": stacks,
                "errors": errors,
                "final_jobs": final_jobs,
                "generation": generation,
                "complete": True,
                "base_generation": before["base_generation"],
                "changes": changes,
            }
        )

    def _open_generation(self) -> str | None:
        """The generation of the open jobs this object holds (``read_open_jobs``), if any."""
        return self._open_jobs_cache[0] if self._open_jobs_cache is not None else None

    def _write_digests(self, digests: dict[str, str], stamped: tuple[str, ...], job_keys: Iterable[str]) -> None:
        """Write ``index.sha256``: ``digests`` (SHA-256 by name, ``_FILES``), the identity of the
        files of the names ``stamped`` as they are now (``atomic.file_stamp``, under ``<name>_stamp``),
        results.json's stamp as quark last wrote it, and the time at which the job files' folder held
        every job file of ``job_keys``, those the index names (``JOBS_LISTED``), if it can be told."""
        for name in stamped:
            digests[f"{name}_stamp"] = file_stamp(self.path / _FILES[name]) or ""
        results = self.results_written or self.results_stamp()  # the file as quark last wrote it, never as found
        if results is not None:
            digests["results"] = results
        listed = self.vouch_job_names(job_keys)
        if listed is not None:
            digests[JOBS_LISTED] = listed
        atomic_write_json(self.path / DIGEST_FILE, {"schema_version": SCHEMA_VERSION, **digests}, compact=True)
        self.results_written = None  # kept in the digests from here on

    def _index_written(self, parts: dict[str, Any]) -> None:
        """After the index is saved: keep it as read, and clear the mark of a command changing the run."""
        self._index_cache = (self._index_stamp(), parts)
        if self._changing:
            (self.path / CHANGING_FILE).unlink(missing_ok=True)
            self._changing = False

    def read_open_jobs(self, index: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
        """Every job not final, whole, by key, as the command that wrote ``index`` left them (only
        ``collect`` needs them: a file of its own, which ``status`` never reads); None if the file
        is missing, damaged or of another generation than ``index``."""
        generation = (index or {}).get("generation")
        if self._open_jobs_cache is not None and generation and self._open_jobs_cache[0] == generation:
            return self._open_jobs_cache[1]
        jobs = self._read_open(index, "open_jobs")
        if jobs is None or not all(isinstance(job, dict) and job.get("key") == key for key, job in jobs.items()):
            return None
        index_changes.apply_open(jobs, index["changes"])
        self._open_jobs_cache = (generation, jobs)
        return jobs

    def job_summaries(self, index: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
        """The summary of every job of ``index`` (what ``status`` shows), by key: its final jobs'
        and its open jobs' (``open_job_summaries.json``, else made from the open jobs); None if
        neither file is as the command that wrote ``index`` left it."""
        if not index:
            return None
        generation = index.get("generation")
        if self._open_summaries_cache is not None and self._open_summaries_cache[0] == generation:
            summaries = self._open_summaries_cache[1]
        else:
            summaries = self._read_open(index, "open_summaries")
            if summaries is not None and index_changes.plain_summaries(summaries.values()):
                index_changes.apply_open_summaries(summaries, index["changes"])
            else:
                open_jobs = self.read_open_jobs(index)
                if open_jobs is None:
                    return None
                summaries = {key: job_summary(job) for key, job in open_jobs.items()}
            self._open_summaries_cache = (generation, summaries)
        return {**index["final_jobs"], **summaries}

    def _read_open(self, index: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        """The ``jobs`` of the open jobs' file ``name`` (``open_jobs`` or ``open_summaries``, as in
        ``_FILES``) if it is as written last for the whole index ``index`` was read from; else None."""
        if not (index or {}).get("generation"):
            return None
        try:
            raw = read_locked(self.path / _FILES[name])
            value = _index_value(raw)
        except (OSError, ValueError):
            return None
        if not isinstance(value, dict) or not self._as_written(name, raw):
            return None
        jobs = value.get("jobs")
        if value.get("generation") != index.get("base_generation") or not isinstance(jobs, dict):
            return None
        return jobs

    def results_stamp(self) -> str | None:
        """results.json's identity and times right after quark last wrote it (``atomic.file_stamp``),
        kept with the digests; None if unknown."""
        return self._digests().get("results")

    def _digests(self) -> dict[str, str]:
        """The SHA-256 of the index and of the open jobs as the command that wrote them last left
        them, and ``results``: results.json's stamp (``index.sha256``); {} if missing or damaged."""
        try:
            value = json.loads(read_locked(self.path / DIGEST_FILE))
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(value, dict):
            return {}
        names = (*_FILES, *(f"{name}_stamp" for name in _FILES), "results", JOBS_LISTED)
        return {name: value[name] for name in names if isinstance(value.get(name), str)}

    def _as_written(self, name: str, raw: bytes, digests: dict[str, str] | None = None) -> bool:
        """True if ``raw``, read from the index's file ``name`` (``_FILES``), is as this run's last
        command wrote it: its SHA-256 and the file's identity (a copy, a restore from a backup or a
        hand edit makes another) as the digests (``_digests``, read now unless given) record them."""
        digests = self._digests() if digests is None else digests
        if digests.get(name) != hashlib.sha256(raw).hexdigest():
            return False
        return digests.get(f"{name}_stamp") == file_stamp(self.path / _FILES[name])

    def changing(self) -> None:
        """Before the first change of a stack or job: mark the index as lagging (``index_current``),
        durably, so that a kill from here on leaves the mark."""
        if self._changing:
            return
        self._was_current = self.index_current(self.read_index_detail())
        mark = self.path / CHANGING_FILE
        try:
            os.close(open_regular(mark, os.O_WRONLY | os.O_CREAT))  # a FIFO there must not block us
        except (NotRegularFileError, IsADirectoryError):
            raise RunDirError(
                f"{mark}: is a FIFO, socket, device or folder, not the run's change mark; remove it"
            ) from None
        fsync_dir(self.path)
        self._changing = True

    def index_current(self, index: dict[str, Any] | None) -> bool:
        """True if ``index`` was written by a command that ended, and none but this object's has
        changed the run since: it then tells every stack's status and every job (with what this
        object wrote since, ``written_jobs``), and no file needs reading."""
        if not (index and index.get("complete")):
            return False
        if self._changing:
            return self._was_current
        return not (self.path / CHANGING_FILE).exists()
