"""The run directory: the only code that reads or writes a run's files.

Layout::

    <run-dir>/
      run.json                       schema_version, version, created, config_hash, stacks, history
      config.yml                     the config as given
      results.json                   QUARK 2 style records, rebuilt from records/ by every command
      records/<stack>.json           one stack run (backlog item x repetition): its current record
      jobs/<job-key>.json            one asynchronous job's job_info (a run.json of schema version 1:
                                     jobs/<job-key>/job_info.json)
      jobs/<job-key>/                that job's backend files, made by backends that keep some
      logging.log                    what every command did, with tracebacks
      .staging/                      temporaries of a group commit (``GroupCommit``)
      .lock                          held by the one process that may change the run

Every JSON file carries ``schema_version`` and is written atomically (``quark_cli.atomic``:
temporary file, fsync, rename, directory fsync; or batched in a ``GroupCommit``, one syncfs for many
files), so a reader never sees half a file and a kill leaves the old or the new.
Reading checks what the engine relies on (types, known statuses, a file's key matching its name),
so a damaged or hand-edited file stops a command with a message naming the file and the field
before anything is written.

``RunDir`` is made of parts, one module each: the index (``quark_cli.run_index``), the files edited
by hand since it was written (``quark_cli.index_edits``), results.json (``quark_cli.results_file``),
and the stacks' and jobs' own files (``quark_cli.stack_files``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from quark_cli.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    deferred_dir_sync,
    private_dirs,
)
from quark_cli.disk import read_ahead, read_regular
from quark_cli.errors import NotRegularFileError, RunDirError, RunLockedError
from quark_cli.flock import FileLock, LockTimeout
from quark_cli.group_commit import STAGING_DIR
from quark_cli.index_changes import CHANGES_FILE
from quark_cli.index_edits import IndexEdits
from quark_cli.journal import replay
from quark_cli.keys import stack_of
from quark_cli.results_file import RESULTS_FILE, ResultsFile
from quark_cli.run_index import DIGEST_FILE, INDEX_FILE, OPEN_JOBS_FILE, OPEN_SUMMARIES_FILE, RunIndex
from quark_cli.schema import (
    FLAT_JOBS_VERSION,
    MODULES_FILE,
    RUN_SCHEMA_VERSION,
    SCHEMA_VERSION,
    check_journaled,
    not_a_folder,
    read_json,
)
from quark_cli.stack_files import StackFiles
from quark_cli.stamps import now_iso

RUN_FILE = "run.json"
CONFIG_FILE = "config.yml"
PARSED_CONFIG_FILE = "config.json"
ITEMS_DIR = "benchmarks"
LOCK_FILE = ".lock"
HISTORY_LIMIT = 200


def file_lock(path: Path) -> FileLock:
    """An flock on ``path`` (created user-only): released by the kernel when its process dies."""
    return FileLock(path, mode=0o600)


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


def _interrupted_creation(names: set[str]) -> bool:
    """True for what a submit killed while creating the run leaves: its lock, maybe the config and modules."""
    ours = {LOCK_FILE, CONFIG_FILE, MODULES_FILE}
    leftovers = {name for name in names if name.startswith((f".{CONFIG_FILE}.", f".{MODULES_FILE}.", f".{RUN_FILE}."))}
    return LOCK_FILE in names and names - leftovers <= ours


#: Longest part of a file name quark makes from names the user chose (module names, a config's name).
#: File systems allow 255 bytes a name; job folders add a stack key and a phase, queue files a stamp.
MAX_NAME_BYTES = 120


def file_name(text: str, limit: int = MAX_NAME_BYTES) -> str:
    """``text`` as part of a file name: characters other than letters, digits, ``_.-`` become ``_``;
    over ``limit`` bytes, a readable prefix and ``~`` and 16 hex digits of the whole text's sha256, so
    distinct long names stay distinct and the same name always gives the same file name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", text)
    if len(safe) <= limit:
        return safe
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{safe[: limit - 17]}~{digest}"


#: Backlog items whose folders ``item_dir`` looks up one by one before it lists them all.
ITEM_STATS = 256


class RunDir(RunIndex, IndexEdits, ResultsFile, StackFiles):
    """One run directory on disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        #: Made once: a collect asks for them a few times a stack.
        self.jobs_dir = self.path / "jobs"
        self.records_dir = self.path / "records"
        self._records_prefix = os.path.join(self.records_dir, "")
        #: Stacks whose open mark this object saw or made (marks are made by the lock holder only).
        self._known_open: set[str] = set()
        #: Jobs saved (or, as None, removed) through this object, by key: what the index learns at
        #: the end of a command.
        self.written_jobs: dict[str, dict[str, Any] | None] = {}
        self._lock: FileLock | None = None
        self._adopt = False
        self._item_dirs: set[int] = set()
        self._item_names: set[str] | None = None
        #: Made by this process (``create``): it holds no record or job that this object did not write.
        self.fresh = False
        self._changing = False  # this object made the CHANGING_FILE mark
        self._was_current = False  # the index was current when this object made the mark
        self._index_cache: tuple[tuple[int, ...] | None, dict[str, Any] | None] | None = None
        self._open_jobs_cache: tuple[str, dict[str, dict[str, Any]]] | None = None
        self._open_summaries_cache: tuple[str, dict[str, dict[str, Any]]] | None = None
        self._edit_scan = None  # the process ``start_edit_scan`` began, and the index time it scans after
        self.results_written: str | None = None
        self._open_listed = False  # True once ``open_stacks`` listed the marks: ``_known_open`` is all of them
        self._flat: bool | None = None  # job files as jobs/<key>.json (run.json version 2 on)

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
            atomic_write_json(path / RUN_FILE, {"schema_version": RUN_SCHEMA_VERSION, **run_info, "history": []})
        except BaseException:
            run._lock.release()
            raise
        run._adopt = True
        run.fresh = True
        run._flat = True
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """Open an existing run directory, checking that it is one."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunDirError(f"{path}: is a file, not a run directory; give the folder 'quark submit' printed")
        if not path.is_dir():
            raise RunDirError(f"{path}: no such run directory")
        try:
            os.lstat(path / RUN_FILE)  # a link that leads nowhere, or in a loop, is read and named below
        except FileNotFoundError:
            raise RunDirError(
                f"{path}: not a quark run directory (no {RUN_FILE}); give the folder 'quark submit' printed"
            ) from None
        run = cls(path)
        run.read_run()
        return run

    def item_dir(self, index: int) -> Path:
        """``benchmarks/benchmark_<index>``: a backlog item's own folder, made user-only when first asked for.

        QUARK 2's ``store_dir``: modules save what they like there (``Application.save`` does).
        """
        folder = self.path / ITEMS_DIR / f"benchmark_{index}"
        if index not in self._item_dirs:
            if self._item_names is None and len(self._item_dirs) >= ITEM_STATS:
                # one listing instead of a stat for each of thousands of items (but a collect that
                # walks a few of 100,000 items stats them: a listing of 100,000 took 60 ms)
                try:
                    with os.scandir(self.path / ITEMS_DIR) as entries:
                        self._item_names = {entry.name for entry in entries if entry.is_dir()}
                except FileNotFoundError:
                    self._item_names = set()
            if self._item_names is None or folder.name not in self._item_names:
                try:
                    private_dirs(folder)  # a stat when it is there
                except NotADirectoryError:  # the run's fault, not the stack's modules'
                    raise not_a_folder(folder) from None
            self._item_dirs.add(index)
        return folder

    def read_run(self) -> dict[str, Any]:
        run = read_json(self.path / RUN_FILE, "run.json")
        self._flat = run["schema_version"] >= FLAT_JOBS_VERSION
        return run

    @property
    def flat_jobs(self) -> bool:
        """True when job files are ``jobs/<key>.json``; False for a run made by a quark-cli before
        0.2 (run.json of schema version 1), whose job files stay ``jobs/<key>/job_info.json``."""
        if self._flat is None:
            self.read_run()
        return bool(self._flat)

    def write_parsed_config(self, raw: dict[str, Any]) -> None:
        """Keep the parsed config beside config.yml, so later commands need not parse YAML again."""
        atomic_write_json(self.path / PARSED_CONFIG_FILE, {"schema_version": SCHEMA_VERSION, "config": raw})

    def read_parsed_config(self) -> dict[str, Any] | None:
        """The parsed config saved at submit, or None when it is missing or unusable (then parse YAML)."""
        try:
            value = json.loads(read_regular(self.path / PARSED_CONFIG_FILE))
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
        """The run's config.yml as text. Raises RunDirError if it is missing or not a regular file,
        UnicodeDecodeError if it is not UTF-8, OSError as the system gives it."""
        path = self.path / CONFIG_FILE
        try:
            text = read_regular(path).decode("utf-8")
        except FileNotFoundError:
            raise RunDirError(f"{path}: missing; the run directory is incomplete") from None
        except (IsADirectoryError, NotRegularFileError):
            raise RunDirError(f"{path}: not a regular file; restore the run's config or remove the run") from None
        return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as ``Path.read_text``

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
        run as it was, except after a kill: the killed writer's journaled rewrites are then finished
        first (``quark_cli.journal.replay``). Re-entrant within one ``RunDir``.
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
                replay(self.path, check_journaled)  # a killed writer's journaled rewrites, before any read
            except BaseException:
                self._lock.release()
                raise
        try:
            with deferred_dir_sync():
                yield
        finally:
            self._lock.release()

    def _acquire(self, wait_seconds: float, advice: str) -> None:
        lock = file_lock(self.path / LOCK_FILE)
        try:
            lock.acquire(timeout=wait_seconds, poll_interval=0.05)
        except IsADirectoryError:
            raise RunDirError(
                f"{self.path / LOCK_FILE}: is a folder, not the run's lock file; remove it (it holds nothing)"
            ) from None
        except LockTimeout:
            holder = lock_holder(self.path / LOCK_FILE)
            who = f"pid {holder}" if holder else "another process"
            raise RunLockedError(f"run {self.path} is being processed by {who}; {advice}") from None
        self._lock = lock

    def read_ahead_for_collect(self) -> None:
        """Have the disk read the index's files, which a collect reads whole, while it loads its
        config: a cron collect finds them paged out, and at 100,000 stacks open_jobs.json is 60 MB
        (``disk.read_ahead``). Not results.json (120 MB): most collects leave it untouched."""
        read_ahead(self.path / name for name in (OPEN_JOBS_FILE, INDEX_FILE, CHANGES_FILE))

    def log_file(self) -> Path:
        return self.path / "logging.log"

    def remove_temp_files(self, stacks: set[str] | None = None, records: bool = True) -> list[Path]:
        """Delete the temporary files of writes a kill interrupted; the files they were for are intact.

        ``stacks``: those whose job files' temporaries are looked for (None: all); ``records``: False
        when no record's can be left (the index is current: no command was killed since), so that
        the records are not listed (100,000 names in a large run).

        Only temporaries of the files quark writes under the run lock (run.json, results.json, the
        index's files, records, job_info.json, and a group commit's in ``.staging``): the caller
        holds the lock, so none of them is being written. Backends' own files, which detached workers
        write without the lock, are left alone. A file where one of our folders belongs is refused
        before anything is deleted.
        """
        names = (
            RUN_FILE,
            RESULTS_FILE,
            INDEX_FILE,
            OPEN_JOBS_FILE,
            OPEN_SUMMARIES_FILE,
            CHANGES_FILE,
            DIGEST_FILE,
            CONFIG_FILE,
            MODULES_FILE,
        )
        ours = tuple(f".{name}." for name in (*names, "job_info.json"))
        staging = self.path / STAGING_DIR
        for folder in (self.records_dir, staging):
            if folder.exists() and not folder.is_dir():
                raise RunDirError(f"{folder}: is a file, not a folder; move it out of the run directory")
        folders = [self.path, self.records_dir, staging] if records else [self.path, staging]
        if (stacks is None or stacks) and self.flat_jobs:  # a job file's temporary: .<key>.json.<random>.tmp
            folders.append(self.jobs_dir)
        elif (stacks is None or stacks) and self.jobs_dir.is_dir():  # none: 100,000 folders not listed
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
                if not name.endswith(".tmp"):
                    continue
                if folder == self.jobs_dir and self.flat_jobs:
                    ours_here = name.startswith(".") and ".json." in name
                else:
                    ours_here = name.startswith(ours) or folder in (self.records_dir, staging)
                if ours_here:
                    (folder / name).unlink(missing_ok=True)
                    removed.append(folder / name)
        return removed
