"""The run directory: the only code that reads or writes a run's files.

Layout::

    <run-dir>/
      run.json                       schema_version, version, created, config_hash, stacks, history
      config.yml                     the config as given
      results.json                   QUARK 2 style records, rebuilt from records/ by every command
      records/<stack>.json           one stack run (backlog item x repetition): its current record
      jobs/<job-key>/job_info.json   one asynchronous job; backends keep their own files beside it
      logging.log                    what every command did, with tracebacks
      .staging/                      temporaries of a group commit (``GroupCommit``)
      .lock                          held by the one process that may change the run

Every JSON file carries ``schema_version`` and is written atomically (``quark_cli.atomic``:
temporary file, fsync, rename, directory fsync; or batched in a ``GroupCommit``, one syncfs for many
files), so a reader never sees half a file and a kill leaves the old or the new.
Reading checks what the engine relies on (types, known statuses, a file's key matching its name),
so a damaged or hand-edited file stops a command with a message naming the file and the field
before anything is written.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from quark_cli.atomic import (
    STAGING_DIR,
    atomic_write_bytes,
    atomic_write_json,
    committed_write,
    defer_dir_sync,
    deferred_dir_sync,
    fsync_dir,
    json_bytes,
    private_dirs,
    staged_write,
    staging,
    strict_dumps,
)
from quark_cli.errors import RunDirError, RunLockedError
from quark_cli.schema import MODULES_FILE, SCHEMA_VERSION, read_json
from quark_cli.stamps import now_iso

RUN_FILE = "run.json"
CONFIG_FILE = "config.yml"
PARSED_CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
INDEX_FILE = "index.json"
#: Present from a command's first change of a stack or job until its index is written: while it is
#: there (a command runs, or was killed), the index may lag behind the files.
CHANGING_FILE = ".changing"
#: The jobs not final yet, whole, of the index's generation: what collect polls.
OPEN_JOBS_FILE = "open_jobs.json"
ITEMS_DIR = "benchmarks"
LOCK_FILE = ".lock"
HISTORY_LIMIT = 200


# filelock >= 4 falls back to a lock *file* on file systems without flock; such a lock survives a
# killed holder and would block the run for good. We want flock or an error.
_LOCK_OPTIONS: dict[str, Any] = (
    {"fallback_to_soft": False} if "fallback_to_soft" in inspect.signature(FileLock.__init__).parameters else {}
)


def file_lock(path: Path) -> FileLock:
    """An flock on ``path`` (created user-only): released by the kernel when its process dies."""
    return FileLock(str(path), mode=0o600, **_LOCK_OPTIONS)


def lock_holder(path: Path) -> int | None:
    """The pid holding the flock on ``path``, from Linux's /proc/locks; None if free or unknown.

    Read from the kernel rather than from a file the holder writes: nothing is written to learn it,
    and it can never name a process that has died.
    """
    try:
        info = os.stat(path)
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()  # "7: FLOCK  ADVISORY  WRITE 2436 fe:00:1575082 0 EOF"; waiters have "->"
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        major, minor, inode = parts[5].split(":")
        if int(inode) == info.st_ino and (int(major, 16), int(minor, 16)) == (
            os.major(info.st_dev),
            os.minor(info.st_dev),
        ):
            return int(parts[4])
    return None


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


def _interrupted_creation(names: set[str]) -> bool:
    """True for what a submit killed while creating the run leaves: its lock, maybe the config and modules."""
    ours = {LOCK_FILE, CONFIG_FILE, MODULES_FILE}
    leftovers = {name for name in names if name.startswith((f".{CONFIG_FILE}.", f".{MODULES_FILE}.", f".{RUN_FILE}."))}
    return LOCK_FILE in names and names - leftovers <= ours


#: Longest part of a file name quark makes from names the user chose (module names, a config's name).
#: File systems allow 255 bytes a name; job folders add a stack key and a phase, queue files a stamp.
MAX_NAME_BYTES = 120


def _plain_field(value: Any) -> bool:
    """A job summary's field as we write it: text, a number or null."""
    return value is None or isinstance(value, str | int | float)


def file_name(text: str, limit: int = MAX_NAME_BYTES) -> str:
    """``text`` as part of a file name: characters other than letters, digits, ``_.-`` become ``_``;
    over ``limit`` bytes, a readable prefix and ``~`` and 16 hex digits of the whole text's sha256, so
    distinct long names stay distinct and the same name always gives the same file name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", text)
    if len(safe) <= limit:
        return safe
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{safe[: limit - 17]}~{digest}"


def stack_key(item: int, repetition: int) -> str:
    """``003-r1``: backlog item and repetition, sortable by name."""
    return f"{item:03d}-r{repetition}"


def stack_of(job_key: str) -> str:
    """The stack of a job key: ``003-r1`` of ``003-r1-MaxCut.QAOA.LocalAsyncSampler-pre``."""
    return "-".join(job_key.split("-", 2)[:2])


class RunDir:
    """One run directory on disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        #: Stacks whose open mark this object saw or made (marks are made by the lock holder only).
        self._known_open: set[str] = set()
        #: Jobs saved (or, as None, removed) through this object, by key: what the index learns at
        #: the end of a command.
        self.written_jobs: dict[str, dict[str, Any] | None] = {}
        self._lock: FileLock | None = None
        self._adopt = False
        self._item_dirs: set[int] = set()
        #: Made by this process (``create``): it holds no record or job that this object did not write.
        self.fresh = False
        self._changing = False  # this object made the CHANGING_FILE mark
        self._was_current = False  # the index was current when this object made the mark
        self._index_cache: tuple[tuple[int, int, int], dict[str, Any] | None] | None = None
        self._open_jobs_cache: tuple[str, dict[str, dict[str, Any]]] | None = None
        self._open_listed = False  # True once ``open_stacks`` listed the marks: ``_known_open`` is all of them

    @classmethod
    def create(
        cls, path: Path, config_text: str, run_info: dict[str, Any], modules: dict[str, Any] | None = None
    ) -> RunDir:
        """Make a new run directory and return it locked by this process.

        ``modules`` (``{"source", "modules"}``, the QUARK 2 module entries of ``--modules FILE``) is
        saved as ``modules.json`` before ``run.json``.

        The lock is taken before the first file is written and kept: the caller's next ``with
        run.lock()`` takes over this hold and releases it at its end, so no other quark process can
        get between the creation and the first walk. ``run.json`` is written last: a folder without
        it is not a run yet, and one left so by a killed submit (only ``.lock`` and ``config.yml``)
        is taken again. Any other folder that holds files is refused untouched.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunDirError(f"{path}: exists and is not a directory; choose another -o DIR")
        names = set(os.listdir(path)) if path.is_dir() else set()
        if names and not _interrupted_creation(names):
            holder = lock_holder(path / LOCK_FILE) if RUN_FILE in names else None
            if holder:
                raise RunLockedError(f"run {path} is being processed by pid {holder}; choose another -o DIR")
            if RUN_FILE in names:
                raise RunDirError(
                    f"{path}: already holds a run; 'quark collect {path}' continues it, "
                    "'quark status' shows where it stands, or choose another -o DIR"
                )
            raise RunDirError(f"{path}: already exists and is not empty; choose another -o DIR")
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
        run = cls(path)
        run._acquire(0.0, "choose another -o DIR")
        try:
            if (path / RUN_FILE).exists():  # another submit made it while we waited for the lock
                raise RunDirError(f"{path}: already exists and is not empty; choose another -o DIR")
            atomic_write_bytes(path / CONFIG_FILE, config_text.encode())
            if modules is not None:
                atomic_write_json(path / MODULES_FILE, {"schema_version": SCHEMA_VERSION, **modules})
            atomic_write_json(path / RUN_FILE, {"schema_version": SCHEMA_VERSION, **run_info, "history": []})
        except BaseException:
            run._lock.release()
            raise
        run._adopt = True
        run.fresh = True
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """Open an existing run directory, checking that it is one."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunDirError(f"{path}: is a file, not a run directory; give the folder 'quark submit' printed")
        if not path.is_dir():
            raise RunDirError(f"{path}: no such run directory")
        if not (path / RUN_FILE).exists():
            raise RunDirError(
                f"{path}: not a quark run directory (no {RUN_FILE}); give the folder 'quark submit' printed"
            )
        run = cls(path)
        run.read_run()
        return run

    @property
    def jobs_dir(self) -> Path:
        return self.path / "jobs"

    @property
    def records_dir(self) -> Path:
        return self.path / "records"

    def item_dir(self, index: int) -> Path:
        """``benchmarks/benchmark_<index>``: a backlog item's own folder, made user-only when first asked for.

        QUARK 2's ``store_dir``: modules save what they like there (``Application.save`` does).
        """
        folder = self.path / ITEMS_DIR / f"benchmark_{index}"
        if index not in self._item_dirs:
            if not os.path.isdir(folder):
                private_dirs(folder)
            self._item_dirs.add(index)
        return folder

    def read_run(self) -> dict[str, Any]:
        return read_json(self.path / RUN_FILE, "run.json")

    def write_parsed_config(self, raw: dict[str, Any]) -> None:
        """Keep the parsed config beside config.yml, so later commands need not parse YAML again."""
        atomic_write_json(self.path / PARSED_CONFIG_FILE, {"schema_version": SCHEMA_VERSION, "config": raw})

    def read_parsed_config(self) -> dict[str, Any] | None:
        """The parsed config saved at submit, or None when it is missing or unusable (then parse YAML)."""
        try:
            value = json.loads((self.path / PARSED_CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        config = value.get("config") if isinstance(value, dict) else None
        return config if isinstance(config, dict) and value.get("schema_version") == SCHEMA_VERSION else None

    def read_modules(self) -> list[dict[str, Any]] | None:
        """The module entries saved at submit, or None for a run made without a module file."""
        path = self.path / MODULES_FILE
        if not path.exists():
            return None
        return read_json(path, MODULES_FILE)["modules"]

    def config_text(self) -> str:
        try:
            return (self.path / CONFIG_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RunDirError(f"{self.path / CONFIG_FILE}: missing; the run directory is incomplete") from None

    def add_history(self, command: str, outcome: dict[str, Any]) -> None:
        """Note a command that changed the run in run.json's ``history`` (its last ``HISTORY_LIMIT`` entries)."""
        run = self.read_run()
        history = run.setdefault("history", [])
        history.append({"command": command, "at": now_iso(), "pid": os.getpid(), **outcome})
        run["history"] = history[-HISTORY_LIMIT:]
        atomic_write_json(self.path / RUN_FILE, run)

    @contextmanager
    def lock(self, wait_seconds: float = 0.0) -> Iterator[None]:
        """Hold the run for this process; another process gets RunLockedError naming our pid.

        The lock is an OS file lock (flock), so it vanishes with a dead process: a stale lock never
        blocks. Taking it writes nothing, so a command refused for bad input leaves every byte of the
        run as it was. Re-entrant within one ``RunDir``.
        """
        if self._adopt:
            self._adopt = False
        elif self._lock is not None and self._lock.is_locked:
            self._lock.acquire()
        else:
            advice = (
                f"still held after --wait-lock {wait_seconds:g} s; try again later or wait longer"
                if wait_seconds > 0
                else "try again later or use --wait-lock SECONDS"
            )
            self._acquire(wait_seconds, advice)
        try:
            with deferred_dir_sync():
                yield
        finally:
            self._lock.release()

    def _acquire(self, wait_seconds: float, advice: str) -> None:
        lock = file_lock(self.path / LOCK_FILE)
        try:
            lock.acquire(timeout=wait_seconds, poll_interval=0.05)
        except Timeout:
            holder = lock_holder(self.path / LOCK_FILE)
            who = f"pid {holder}" if holder else "another process"
            raise RunLockedError(f"run {self.path} is being processed by {who}; {advice}") from None
        self._lock = lock

    def job_file(self, key: str) -> Path:
        return self.jobs_dir / key / "job_info.json"

    def write_job(self, job: dict[str, Any], durable: bool = False, at_once: bool = False) -> None:
        """Save a job's info; ``durable`` for the intent written before a service is called,
        ``at_once`` (not staged in the group commit) for the id a remote service just gave.

        A remote job's id is saved at once so that a kill leaves at most the job being submitted
        "submission uncertain", not the dozens whose ids were still staged. Writes after the intent
        need no folder fsync: the intent made the folder durable, and losing a later rewrite in a
        power cut leaves an earlier, valid state that the next collect moves on.
        """
        self.changing()
        path = self.job_file(job["key"])
        value = {"schema_version": SCHEMA_VERSION, **job}
        if durable or at_once:  # in a group commit: committed with the other threads' intents and ids
            committed_write(path, json_bytes(value, compact=True), durable=durable)
        else:
            staged_write(path, json_bytes(value, compact=True), sync_dir=False)
        self.written_jobs[job["key"]] = dict(job)

    def remove_job(self, key: str) -> None:
        """Delete a job that never reached its service (its intent only), and forget it in the index."""
        self.changing()
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
            kept_here = ("attempts", "job_info.json")
            names = [name for name in os.listdir(folder) if name not in kept_here and not name.startswith(".job_info")]
            if names:
                private_dirs(folder / kept)
                for name in names:
                    os.replace(folder / name, folder / kept / name)
        return str(kept)

    def read_job(self, key: str) -> dict[str, Any]:
        return read_json(self.job_file(key), "job_info.json")

    def read_jobs(self) -> list[dict[str, Any]]:
        """Every job of the run, in key order."""
        if not self.jobs_dir.is_dir():
            return []
        jobs = []
        for entry in sorted(os.scandir(self.jobs_dir), key=lambda e: e.name):
            if entry.is_dir() and not entry.name.startswith("."):
                path = Path(entry.path) / "job_info.json"
                if path.exists():
                    jobs.append(read_json(path, "job_info.json"))
        return jobs

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
        """Stacks that have a job folder, without reading any job."""
        try:
            names = os.listdir(self.jobs_dir)
        except FileNotFoundError:
            return set()
        return {stack_of(name) for name in names if not name.startswith(".")}

    def read_record(self, key: str) -> dict[str, Any] | None:
        path = self.record_file(key)
        return read_json(path, "record") if path.exists() else None

    def jobs_of(self, stacks: set[str]) -> list[dict[str, Any]]:
        """The jobs of some stacks only (job keys start with their stack key), in key order."""
        if not stacks or not self.jobs_dir.is_dir():
            return []
        jobs = []
        for name in sorted(os.listdir(self.jobs_dir)):
            if stack_of(name) in stacks:
                path = self.jobs_dir / name / "job_info.json"
                if path.exists():
                    jobs.append(read_json(path, "job_info.json"))
        return jobs

    def read_index(self) -> dict[str, str]:
        """Stack statuses as the last command left them: a cache, trusted only for closed stacks."""
        index = self.read_index_detail()
        return index["stacks"] if index else {}

    def read_index_detail(self) -> dict[str, Any] | None:
        """The whole index (``stacks``, ``errors`` of failed stacks, ``jobs`` summaries), or None.

        Read once while the file stays the same (its inode, size and time): a command asks for it
        several times, and at 100,000 stacks it is tens of MB. Callers may change what they get only
        to hand it to ``write_index``.
        """
        path = self.path / INDEX_FILE
        try:
            info = os.stat(path)
        except OSError:
            return None
        stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
        if self._index_cache is not None and self._index_cache[0] == stamp:
            return self._index_cache[1]
        parts = self._parse_index(path)
        self._index_cache = (stamp, parts)
        return parts

    def _parse_index(self, path: Path) -> dict[str, Any] | None:
        try:
            value = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(value, dict) or value.get("schema_version") != SCHEMA_VERSION:
            return None
        parts = {name: value.get(name) for name in ("stacks", "errors", "jobs")}
        if not all(isinstance(part, dict) for part in parts.values()):
            return None
        generation = value.get("generation")
        # an index of an earlier quark-cli has no generation: collect and status read the files
        parts["complete"] = value.get("complete") is True and isinstance(generation, str)
        parts["generation"] = generation
        # a cache: if it was edited into shapes we do not write, it is rebuilt rather than trusted
        if not all(isinstance(status, str) for status in parts["stacks"].values()):
            return None
        if not all(isinstance(error, str) for error in parts["errors"].values()):
            return None
        if not all(
            isinstance(job, dict) and all(_plain_field(v) for v in job.values()) for job in parts["jobs"].values()
        ):
            return None
        return parts

    def write_index(
        self,
        stacks: dict[str, str],
        errors: dict[str, str] | None = None,
        jobs: dict[str, Any] | None = None,
        open_jobs: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Save the index: every stack's status, failed stacks' errors and a summary of every job;
        and beside it, every job not final yet as a whole (``open_jobs``, what ``collect`` polls).

        A cache for status and collect (one file instead of one per stack and job), rewritten at the
        end of each command. While no command has changed the run since (``index_current``), it
        tells everything; otherwise readers trust it only for stacks closed in it and not open.
        """
        generation = uuid.uuid4().hex
        open_jobs = dict(sorted((open_jobs or {}).items()))
        open_path = self.path / OPEN_JOBS_FILE
        atomic_write_json(  # first: an index names the open jobs of its own generation only
            open_path, {"schema_version": SCHEMA_VERSION, "generation": generation, "jobs": open_jobs}, compact=True
        )
        self._open_jobs_cache = (generation, open_jobs)
        parts = {
            "stacks": dict(sorted(stacks.items())),
            "errors": dict(sorted((errors or {}).items())),
            "jobs": dict(sorted((jobs or {}).items())),
            "generation": generation,
        }
        path = self.path / INDEX_FILE
        atomic_write_json(path, {"schema_version": SCHEMA_VERSION, **parts, "complete": True}, compact=True)
        info = os.stat(path)
        self._index_cache = ((info.st_ino, info.st_size, info.st_mtime_ns), {**parts, "complete": True})
        if self._changing:
            (self.path / CHANGING_FILE).unlink(missing_ok=True)
            self._changing = False

    def changed_since_index(self) -> set[str]:
        """Stacks whose record or a job's file changed after the index was written (by hand): what
        a reader of a current index reads from the files all the same. One stat a file."""
        written = os.stat(self.path / INDEX_FILE).st_mtime_ns
        changed = set()
        if self.records_dir.is_dir():
            with os.scandir(self.records_dir) as entries:
                for entry in entries:
                    name = entry.name
                    if name.endswith(".json") and not name.startswith(".") and entry.stat().st_mtime_ns > written:
                        changed.add(name[: -len(".json")])
        jobs_dir = os.fspath(self.jobs_dir)
        for name in os.listdir(jobs_dir) if os.path.isdir(jobs_dir) else []:
            try:
                newer = os.stat(f"{jobs_dir}/{name}/job_info.json").st_mtime_ns > written
            except FileNotFoundError:
                newer = True
            if newer and not name.startswith("."):
                changed.add(stack_of(name))
        return changed

    def read_open_jobs(self, index: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
        """Every job not final, whole, by key, as the command that wrote ``index`` left them (only
        ``collect`` needs them: a file of its own, which ``status`` never reads); None if the file
        is missing, damaged or of another generation than ``index``."""
        generation = (index or {}).get("generation")
        if not generation:
            return None
        if self._open_jobs_cache is not None and self._open_jobs_cache[0] == generation:
            return self._open_jobs_cache[1]
        try:
            value = json.loads((self.path / OPEN_JOBS_FILE).read_bytes())
        except (OSError, ValueError):
            return None
        jobs = value.get("jobs") if isinstance(value, dict) else None
        if value.get("generation") != generation or not isinstance(jobs, dict):
            return None
        if not all(isinstance(job, dict) and job.get("key") == key for key, job in jobs.items()):
            return None
        self._open_jobs_cache = (generation, jobs)
        return jobs

    def record_file(self, key: str) -> Path:
        return self.records_dir / f"{key}.json"

    def write_record(self, key: str, record: dict[str, Any]) -> dict[str, Any]:
        """Save a stack's record (compact: people read results.json, which holds the same records).

        Returns the record as saved (with its schema version).
        """
        saved = {"schema_version": SCHEMA_VERSION, **record}
        self.changing()
        staged_write(self.record_file(key), json_bytes(saved, compact=True))
        return saved

    def changing(self) -> None:
        """Before the first change of a stack or job: mark the index as lagging (``index_current``),
        durably, so that a kill from here on leaves the mark."""
        if self._changing:
            return
        self._was_current = self.index_current(self.read_index_detail())
        fd = os.open(self.path / CHANGING_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
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

    def read_records(self) -> dict[str, dict[str, Any]]:
        """Every stack record by stack key."""
        if not self.records_dir.is_dir():
            return {}
        records = {}
        for entry in sorted(os.scandir(self.records_dir), key=lambda e: e.name):
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                records[entry.name[: -len(".json")]] = read_json(Path(entry.path), "record")
        return records

    def rebuild_results(
        self, changed: set[str] | None = None, known: dict[str, bytes] | None = None
    ) -> list[dict[str, Any]]:
        """Write ``results.json``: the records as a QUARK 2 style list, by backlog item and repetition.

        One record per line: still a JSON list for QUARK 2 tools, written by the C encoder (an
        indented file of 10,000 records takes the pure-Python one seconds). With ``changed``, only
        those stacks' lines are replaced in the existing file, whose other lines are kept as bytes,
        never parsed: the cost follows the changed stacks, not the thousands that finished before.
        ``known`` holds result lines (``result_line``) of changed records the caller already has.
        Without ``changed``, or if the file is unusable, every record is read. Returns the records
        written: all of them, or with ``changed`` only the changed ones read from disk.
        """
        path = self.path / RESULTS_FILE
        if changed is not None and not changed and path.exists():
            return []
        if changed is not None:
            known = known or {}
            records = [r for r in (self.read_record(key) for key in changed if key not in known) if r]
            lines = {} if self.fresh and not path.exists() else _result_lines(path)
            if lines is not None:
                lines.update((key, known[key]) for key in changed if key in known)
                lines.update((record["stack"], result_line(record)) for record in records)
                atomic_write_bytes(path, _results_bytes([lines[key] for key in sorted(lines, key=_stack_order)]))
                return records
        results = sorted(
            self.read_records().values(),
            key=lambda r: (r.get("benchmark_backlog_item_number", 0), r.get("repetition", 0)),
        )
        atomic_write_bytes(path, _results_bytes([result_line(record) for record in results]))
        return results

    def log_file(self) -> Path:
        return self.path / "logging.log"

    def remove_temp_files(self, stacks: set[str] | None = None) -> list[Path]:
        """Delete the temporary files of writes a kill interrupted; the files they were for are intact.

        Only temporaries of the files quark writes under the run lock (run.json, results.json,
        index.json, records, job_info.json, and a group commit's in ``.staging``): the caller holds
        the lock, so none of them is being written. Backends' own files, which detached workers
        write without the lock, are left alone. A file where one of our folders belongs is refused
        before anything is deleted.
        """
        ours = tuple(
            f".{name}."
            for name in (RUN_FILE, RESULTS_FILE, INDEX_FILE, OPEN_JOBS_FILE, CONFIG_FILE, MODULES_FILE, "job_info.json")
        )
        staging = self.path / STAGING_DIR
        for folder in (self.records_dir, staging):
            if folder.exists() and not folder.is_dir():
                raise RunDirError(f"{folder}: is a file, not a folder; move it out of the run directory")
        folders = [self.path, self.records_dir, staging]
        if self.jobs_dir.is_dir():
            folders += [
                Path(entry.path)
                for entry in os.scandir(self.jobs_dir)
                if entry.is_dir() and (stacks is None or stack_of(entry.name) in stacks)
            ]
        removed = []
        for folder in folders:
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if name.endswith(".tmp") and (name.startswith(ours) or folder in (self.records_dir, staging)):
                    (folder / name).unlink(missing_ok=True)
                    removed.append(folder / name)
        return removed


def result_line(record: dict[str, Any]) -> bytes:
    """A record as its line of results.json."""
    return strict_dumps(record, separators=(", ", ": ")).encode()


def _results_bytes(lines: list[bytes]) -> bytes:
    return b"[\n" + b",\n".join(lines) + b"\n]\n" if lines else b"[]\n"


_STACK_FIELD = b'"stack": "'
_STACK_KEY = re.compile(r"[0-9]+-r[0-9]+")


def _result_lines(path: Path) -> dict[str, bytes] | None:
    """The lines of a results.json we wrote, by stack, unparsed; None if it is missing or not ours.

    A line is one record; its first ``"stack": "`` is the record's own: it comes before ``module``,
    the only field holding nested values, and a quote inside a string is escaped.
    """
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if raw == b"[]\n":
        return {}
    if not (raw.startswith(b"[\n{") and raw.endswith(b"}\n]\n")):
        return None
    lines: dict[str, bytes] = {}
    for line in raw[2:-3].split(b",\n"):
        start = line.find(_STACK_FIELD)
        end = line.find(b'"', start + len(_STACK_FIELD)) if start >= 0 else -1
        key = line[start + len(_STACK_FIELD) : end].decode(errors="replace") if end >= 0 else ""
        if not (_STACK_KEY.fullmatch(key) and line.startswith(b"{") and line.endswith(b"}")):
            return None
        lines[key] = line
    return lines


def _stack_order(key: str) -> tuple[int, int]:
    """``003-r12`` -> (3, 12): backlog item, then repetition, as numbers."""
    item, _, repetition = key.partition("-r")
    return int(item), int(repetition)
