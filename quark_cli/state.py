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

Every JSON file carries ``schema_version`` and is written atomically (temporary file, fsync,
rename, directory fsync; or batched in a ``GroupCommit``, one syncfs for many files), so a reader
never sees half a file and a kill leaves the old or the new.
Reading checks what the engine relies on (types, known statuses, a file's key matching its name),
so a damaged or hand-edited file stops a command with a message naming the file and the field
before anything is written.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from quark_cli.errors import RunDirError, RunLockedError

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
CONFIG_FILE = "config.yml"
PARSED_CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
INDEX_FILE = "index.json"
MODULES_FILE = "modules.json"
ITEMS_DIR = "benchmarks"
LOCK_FILE = ".lock"
STACK_STATUSES = ("FINISHED", "INTERRUPTED", "FAILED")
JOB_STATUSES = ("SUBMITTING", "SUBMITTED", "RUNNING", "DONE", "FAILED", "CANCELLED", "RETRY")


def now_iso() -> str:
    """UTC timestamps in ISO 8601: sortable and unambiguous across machines."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


_deferred_dirs: set[Path] | None = None


def _defer_dir(directory: Path) -> bool:
    """Queue a folder for the fsync at the end of the block; False when no block is active.

    Called from the engine's saving threads too: ``set.add`` and ``set.copy`` are atomic in CPython.
    """
    deferred = _deferred_dirs
    if deferred is None:
        return False
    deferred.add(directory)
    return True


def _sync_deferred_dirs() -> None:
    deferred = _deferred_dirs
    if not deferred:
        return
    pending = deferred.copy()
    deferred.difference_update(pending)
    for directory in sorted(pending):
        _fsync_dir(directory)


@contextmanager
def deferred_dir_sync() -> Iterator[None]:
    """Fsync the directories of atomic writes once, at the end, instead of after every write.

    Each file's data is still fsynced before its rename, so a reader or a kill never sees half a
    file; only the durability of the renames across a power loss waits for the end of the block.
    Writes that must be durable at once (a submission intent) pass ``durable=True``.
    """
    global _deferred_dirs
    outer = _deferred_dirs
    if outer is None:
        _deferred_dirs = set()
    try:
        yield
    finally:
        if outer is None:
            _sync_deferred_dirs()
            _deferred_dirs = None


def atomic_write_bytes(path: Path, data: bytes, durable: bool = False, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new content, never a mix.

    The file is created user-only (0600) by ``mkstemp``. ``sync_dir=False`` skips the folder's fsync
    for rewrites whose loss in a power cut is harmless (the previous version is still valid).
    """
    new_folder = not path.parent.is_dir()
    private_dirs(path.parent)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    if not sync_dir and not durable:
        return
    if not durable and _defer_dir(path.parent):
        return
    _fsync_dir(path.parent)
    if durable and new_folder:
        _fsync_dir(path.parent.parent)


def atomic_write_json(
    path: Path, value: Any, durable: bool = False, sync_dir: bool = True, compact: bool = False
) -> None:
    """Atomic JSON write; ``compact`` (one line, C encoder) for files read by programs, not people."""
    atomic_write_bytes(path, json_bytes(value, compact), durable=durable, sync_dir=sync_dir)


def json_bytes(value: Any, compact: bool = False) -> bytes:
    """What ``atomic_write_json`` writes, for ``staged_write``."""
    if compact:
        return (json.dumps(value, separators=(",", ":"), default=_json_default) + "\n").encode()
    return (json.dumps(value, indent=2, default=_json_default) + "\n").encode()


STAGING_DIR = ".staging"


class GroupCommit:
    """Atomic writes made durable together: one ``syncfs`` for a batch instead of an fsync per file.

    ``write`` only queues the new content. A commit writes each queued file to a temporary under
    ``<run>/.staging`` (same file system, so a rename moves it into place), syncs the file system
    once, then renames every temporary onto its target and runs every ``then`` callback, all in the
    order they were queued. So each file is still written, made durable, then renamed (a reader or a
    kill sees the old content or the new, never half), and a kill leaves only temporaries that
    ``RunDir.remove_temp_files`` clears. An fsync costs about a millisecond on a virtual disk and
    thousands of them made up most of a collect; a ``syncfs`` costs about as much as one.

    Once ``LIMIT`` files are queued, a background thread commits batches of ``BATCH`` while the
    engine goes on: its threads make no file system call for a write, and so rarely wait for the
    interpreter lock after one. ``commit`` commits everything queued so far and waits for it.
    Thread-safe.
    """

    LIMIT = 64
    BATCH = 128
    WRITERS = 8

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.prefix = os.path.join(str(self.root), "")
        self.staging = os.path.join(str(self.root), STAGING_DIR)
        self._items: list[tuple[Any, ...]] = []
        self._files = 0
        self._serial = 0
        self._folders: set[str] = set()
        self._background: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._pool: Any = None
        self._queued: dict[str, int] = {}  # target -> staged writes not yet in place

    def write(self, path: Path | str, data: bytes, sync_dir: bool = True) -> None:
        """Queue ``data`` for ``path`` (``sync_dir`` as for ``atomic_write_bytes``)."""
        with self._lock:
            self._items.append(("file", os.fspath(path), data, sync_dir))
            self._files += 1
            self._queued[os.fspath(path)] = self._queued.get(os.fspath(path), 0) + 1
            start = self._files >= self.LIMIT and self._background is None
            if start:
                self._background = threading.Thread(target=self._commit_in_background, name="quark-commit")
        if start:
            self._background.start()

    def then(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` once everything queued before it is in place."""
        with self._lock:
            self._items.append(("call", function, args, None))

    def commit(self) -> None:
        """Commit everything queued so far, in order, and wait for it; raise a background failure."""
        with self._lock:
            background = self._background
        if background is not None:
            background.join()
        while self._commit_batch():
            pass
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Commit what is left and stop the writing threads."""
        try:
            self.commit()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None

    def _commit_in_background(self) -> None:
        """Commit batches while full ones keep coming."""
        while True:
            try:
                self._commit_batch()
            except BaseException as failure:  # kept for the next commit(), which the engine always calls
                self._error = self._error or failure
            with self._lock:
                if self._error is not None or self._files < self.LIMIT:
                    self._background = None
                    return

    def _commit_batch(self) -> bool:
        """Commit the oldest ``BATCH`` files (and the callbacks queued among them); False if none was queued.

        Small batches: writes into a file system slow down as unsynced new files pile up (a third of
        a millisecond a file with 1,500 of them here, a tenth with 100).
        """
        with self._commit_lock:
            with self._lock:
                file_count = taken = 0
                for kind, *_ in self._items:
                    if file_count == self.BATCH and kind == "file":
                        break
                    taken += 1
                    file_count += kind == "file"
                items, self._items = self._items[:taken], self._items[taken:]
                self._files -= file_count
            if not items:
                return False
            writes = [(index, item[2]) for index, item in enumerate(items) if item[0] == "file"]
            written = self._write_temps([data for _, data in writes])
            temps = {index: temp for (index, _), temp in zip(writes, written, strict=True)}
            _sync_files(self.root, list(temps.values()))
            for index, (kind, first, second, sync_dir) in enumerate(items):
                if kind == "call":
                    first(*second)
                    continue
                self._ensure_folder(os.path.dirname(first))
                os.replace(temps[index], first)
                with self._lock:
                    left = self._queued.pop(first) - 1
                    if left:
                        self._queued[first] = left
                if sync_dir and not _defer_dir(Path(os.path.dirname(first))):
                    _fsync_dir(Path(os.path.dirname(first)))
            return True

    def queued(self, path: Path | str) -> bool:
        """True while a staged write to ``path`` is not in place yet."""
        with self._lock:
            return os.fspath(path) in self._queued

    def _write_temps(self, contents: list[bytes]) -> list[str]:
        """Write each content to a new temporary, from a few threads: their system calls overlap
        instead of each waiting its turn for the interpreter lock."""
        self._ensure_folder(self.staging)
        first = self._serial
        self._serial += len(contents)
        temps = [f"{self.staging}/{os.getpid()}-{first + i}.tmp" for i in range(len(contents))]
        chunk = 16
        if len(contents) <= chunk:
            _write_files(temps, contents)
            return temps
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self.WRITERS, thread_name_prefix="quark-write")
        futures = [
            self._pool.submit(_write_files, temps[i : i + chunk], contents[i : i + chunk])
            for i in range(0, len(contents), chunk)
        ]
        for future in futures:
            future.result()
        return temps

    def _ensure_folder(self, folder: str) -> None:
        if folder not in self._folders:
            private_dirs(Path(folder))
            self._folders.add(folder)


def _write_files(paths: list[str], contents: list[bytes]) -> None:
    for path, data in zip(paths, contents, strict=True):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # only the lock holder writes here
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


_libc: Any = None


def _sync_files(root: Path, paths: list[Path]) -> None:
    """Make the data of ``paths`` durable: Linux's ``syncfs`` on their file system, else an fsync each."""
    global _libc
    if not paths:
        return
    if _libc is None:
        import ctypes

        try:
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.syncfs.argtypes = [ctypes.c_int]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        fd = os.open(root, os.O_RDONLY)
        try:
            if _libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_group: GroupCommit | None = None


@contextmanager
def group_commit(root: Path) -> Iterator[GroupCommit]:
    """Stage ``staged_write``s under ``root`` for the block and commit them at its end.

    Committed also when the block fails: what was staged is finished work (a job's id, a record).
    """
    global _group
    if _group is not None:
        yield _group
        return
    group = _group = GroupCommit(root)
    try:
        yield group
    except BaseException:
        _group = None
        with suppress(Exception):
            group.close()
        raise
    _group = None
    group.close()


def staged_write(path: Path, data: bytes, sync_dir: bool = True) -> None:
    """An atomic write, staged in the active ``group_commit`` when ``path`` is under its root."""
    group = _group
    if group is not None and os.fspath(path).startswith(group.prefix):
        group.write(path, data, sync_dir)
    else:
        atomic_write_bytes(Path(path), data, sync_dir=sync_dir)


def after_commit(function: Callable[..., Any], *args: Any) -> None:
    """Run ``function(*args)`` after the staged writes before it are in place (now if none is active)."""
    group = _group
    if group is not None:
        group.then(function, *args)
    else:
        function(*args)


def commit_staged(path: Path | None = None) -> None:
    """Commit the active group now, before a write that must not be overtaken by older staged ones
    (with ``path``: only if one of them is to that file)."""
    group = _group
    if group is not None and (path is None or group.queued(path)):
        group.commit()


def private_dirs(directory: Path) -> None:
    """``mkdir -p`` with every folder it creates user-only (``Path.mkdir`` gives parents the umask's)."""
    if directory.is_dir():
        return
    private_dirs(directory.parent)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        pass


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays, which myQLM-based modules report, as plain JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object that names a key twice was edited by hand: refuse it rather than guess."""
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise _DuplicateKey(key)
        value[key] = item
    return value


def read_json(path: Path, what: str) -> Any:
    """Read one of our JSON files, refusing damaged, hand-broken ones and ones from a newer quark-cli."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing; the run directory is incomplete ({what})") from None
    except IsADirectoryError:
        raise RunDirError(f"{path}: is a folder, not a {what} file; restore it or remove the run") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path}: cannot be read ({type(error).__name__}); restore it or remove the run") from None
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as error:
        raise RunDirError(f"{path}: {error}: named twice; the file was edited by hand, keep one") from None
    except (json.JSONDecodeError, RecursionError) as error:
        where = f" at line {error.lineno} column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise RunDirError(f"{path}: damaged JSON{where}; restore it or remove the run") from None
    version = value.get("schema_version") if isinstance(value, dict) else None
    if type(version) is not int:
        raise RunDirError(f"{path}: schema_version: missing; this is not a quark-cli {what}")
    if version > SCHEMA_VERSION:
        raise RunDirError(
            f"{path}: schema_version: {version} is newer than this quark-cli understands ({SCHEMA_VERSION}); upgrade"
        )
    problem = _SCHEMAS[what](path, value) if what in _SCHEMAS else None
    if problem:
        field, message = problem
        raise RunDirError(f"{path}: {field}: {message}; the file was edited or damaged: restore it or remove the run")
    return value


def _field_problem(value: dict[str, Any], name: str, kind: Any, optional: bool = False) -> str | None:
    """Why ``value[name]`` is not of ``kind`` (None if it is); ``bool`` never passes for ``int``."""
    if name not in value:
        return None if optional else "missing"
    item = value[name]
    if item is None and optional:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(item, bool) and bool not in kinds or not isinstance(item, kinds):
        return f"{item!r} is not {' or '.join(k.__name__ for k in kinds)}"
    return None


def _check_fields(value: dict[str, Any], fields: list[tuple[str, Any, bool]]) -> tuple[str, str] | None:
    for name, kind, optional in fields:
        problem = _field_problem(value, name, kind, optional)
        if problem:
            return name, problem
    return None


def _check_run(path: Path, value: dict[str, Any]) -> tuple[str, str] | None:
    problem = _check_fields(
        value,
        [("config_hash", str, False), ("stacks", int, False), ("history", list, True)]
        + [("module_search_path", str, True), ("created", str, True), ("backlog_order", str, True)]
        + [("python_hash_seed", str, True), ("import_paths", list, True)],
    )
    if problem:
        return problem
    if value.get("backlog_order", "legacy") not in ("quark2", "legacy"):
        return "backlog_order", f"{value['backlog_order']!r} is not 'quark2' or 'legacy'"
    if not all(isinstance(item, str) for item in value.get("import_paths") or []):
        return "import_paths", "must list folders (strings)"
    return None


def _check_modules(path: Path, value: dict[str, Any]) -> tuple[str, str] | None:
    problem = _check_fields(value, [("modules", list, False), ("source", str, True)])
    if problem:
        return problem
    if not all(isinstance(entry, dict) for entry in value["modules"]):
        return "modules", "must list module entries (objects)"
    return None


def _check_record(path: Path, value: dict[str, Any]) -> tuple[str, str] | None:
    problem = _check_fields(
        value,
        [("quark_job_status", str, False), ("stack", str, False), ("jobs", list, True), ("error", str, True)]
        + [("benchmark_backlog_item_number", int, False), ("repetition", int, False), ("module", dict, True)],
    )
    if problem:
        return problem
    if value["quark_job_status"] not in STACK_STATUSES:
        return "quark_job_status", f"{value['quark_job_status']!r} is not one of {list(STACK_STATUSES)}"
    if value["stack"] != path.stem:
        return "stack", f"{value['stack']!r} does not match the file name {path.name}"
    if not all(isinstance(key, str) for key in value.get("jobs") or []):
        return "jobs", "must list job keys (strings)"
    return None


def _check_job(path: Path, value: dict[str, Any]) -> tuple[str, str] | None:
    problem = _check_fields(
        value,
        [("key", str, False), ("stack", str, False), ("status", str, False), ("job_manager", str, False)]
        + [("info", dict, False), ("level", int, False), ("phase", str, False), ("attempt", int, True)]
        + [("module_config", dict, True), ("error", str, True)],
    )
    if problem:
        return problem
    if value["key"] != path.parent.name:
        return "key", f"{value['key']!r} does not match its folder {path.parent.name}"
    if not value["key"].startswith(value["stack"] + "-"):
        return "stack", f"{value['stack']!r} is not the stack of job {value['key']!r}"
    if value["status"] not in JOB_STATUSES:
        return "status", f"{value['status']!r} is not one of {list(JOB_STATUSES)}"
    if value["phase"] not in ("pre", "post"):
        return "phase", f"{value['phase']!r} is not 'pre' or 'post'"
    return None


_SCHEMAS = {"run.json": _check_run, "record": _check_record, "job_info.json": _check_job, MODULES_FILE: _check_modules}


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


def _interrupted_creation(names: set[str]) -> bool:
    """True for what a submit killed while creating the run leaves: its lock, maybe the config and modules."""
    ours = {LOCK_FILE, CONFIG_FILE, MODULES_FILE}
    leftovers = {name for name in names if name.startswith((f".{CONFIG_FILE}.", f".{MODULES_FILE}.", f".{RUN_FILE}."))}
    return LOCK_FILE in names and names - leftovers <= ours


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
        #: Jobs saved through this object, by key: what the index learns at the end of a command.
        self.written_jobs: dict[str, dict[str, Any]] = {}
        self._lock: FileLock | None = None
        self._adopt = False
        self._item_dirs: set[int] = set()

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
        run = self.read_run()
        run.setdefault("history", []).append({"command": command, "at": now_iso(), "pid": os.getpid(), **outcome})
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
            self._acquire(wait_seconds, "try again later or use --wait-lock")
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
        path = self.job_file(job["key"])
        value = {"schema_version": SCHEMA_VERSION, **job}
        if durable or at_once:
            commit_staged(path)  # an older staged write to this file must not land after this one
            atomic_write_json(path, value, durable=durable, sync_dir=durable, compact=True)
        else:
            staged_write(path, json_bytes(value, compact=True), sync_dir=False)
        self.written_jobs[job["key"]] = dict(job)

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
        if not self._known_open:
            self.open_dir.mkdir(mode=0o700, exist_ok=True)
        (self.open_dir / key).touch(mode=0o600)
        self._known_open.add(key)
        if not _defer_dir(self.open_dir):
            _fsync_dir(self.open_dir)

    def mark_closed(self, key: str) -> None:
        """Note that a stack is finished or failed; cleared only after its record says so."""
        (self.open_dir / key).unlink(missing_ok=True)
        self._known_open.discard(key)
        _defer_dir(self.open_dir)

    def open_stacks(self) -> set[str]:
        """Stacks that may have work left (a superset: a stale mark is harmless, a missing one is not)."""
        try:
            found = {name for name in os.listdir(self.open_dir) if not name.startswith(".")}
        except FileNotFoundError:
            return set()
        self._known_open = set(found)
        return found

    def record_keys(self) -> set[str]:
        """Stacks that have a record, without reading them."""
        try:
            names = os.listdir(self.records_dir)
        except FileNotFoundError:
            return set()
        return {name[: -len(".json")] for name in names if name.endswith(".json") and not name.startswith(".")}

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
        """The whole index (``stacks``, ``errors`` of failed stacks, ``jobs`` summaries), or None."""
        try:
            value = json.loads((self.path / INDEX_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(value, dict) or value.get("schema_version") != SCHEMA_VERSION:
            return None
        parts = {name: value.get(name) for name in ("stacks", "errors", "jobs")}
        if not all(isinstance(part, dict) for part in parts.values()):
            return None
        return parts

    def write_index(
        self, stacks: dict[str, str], errors: dict[str, str] | None = None, jobs: dict[str, Any] | None = None
    ) -> None:
        """Save the index: every stack's status, failed stacks' errors, and a summary of every job.

        A cache for status and collect (one file instead of one per stack and job), rewritten at the
        end of each command; readers trust it only for stacks that are closed in it and not open.
        """
        atomic_write_json(
            self.path / INDEX_FILE,
            {
                "schema_version": SCHEMA_VERSION,
                "stacks": dict(sorted(stacks.items())),
                "errors": dict(sorted((errors or {}).items())),
                "jobs": dict(sorted((jobs or {}).items())),
            },
            compact=True,
        )

    def record_file(self, key: str) -> Path:
        return self.records_dir / f"{key}.json"

    def write_record(self, key: str, record: dict[str, Any]) -> dict[str, Any]:
        """Save a stack's record (compact: people read results.json, which holds the same records).

        Returns the record as saved (with its schema version).
        """
        saved = {"schema_version": SCHEMA_VERSION, **record}
        staged_write(self.record_file(key), json_bytes(saved, compact=True))
        return saved

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
        self, changed: set[str] | None = None, known: dict[str, dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Write ``results.json``: the records as a QUARK 2 style list, by backlog item and repetition.

        One record per line: still a JSON list for QUARK 2 tools, written by the C encoder (an
        indented file of 10,000 records takes the pure-Python one seconds). With ``changed``, only
        those stacks' lines are replaced in the existing file, whose other lines are kept as bytes,
        never parsed: the cost follows the changed stacks, not the thousands that finished before.
        Without ``changed``, or if the file is unusable, every record is read. Returns the records
        written: all of them, or with ``changed`` only the changed ones.
        """
        path = self.path / RESULTS_FILE
        if changed is not None and not changed and path.exists():
            return []
        if changed is not None:
            records = [r for r in ((known or {}).get(key) or self.read_record(key) for key in changed) if r]
            lines = _result_lines(path)
            if lines is not None:
                lines.update((record["stack"], _result_line(record)) for record in records)
                atomic_write_bytes(path, _results_bytes([lines[key] for key in sorted(lines, key=_stack_order)]))
                return records
        results = sorted(
            self.read_records().values(),
            key=lambda r: (r.get("benchmark_backlog_item_number", 0), r.get("repetition", 0)),
        )
        atomic_write_bytes(path, _results_bytes([_result_line(record) for record in results]))
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
            f".{name}." for name in (RUN_FILE, RESULTS_FILE, INDEX_FILE, CONFIG_FILE, MODULES_FILE, "job_info.json")
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


def _result_line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(", ", ": "), default=_json_default).encode()


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


def age_seconds(iso: str | None) -> float | None:
    """Seconds since an ISO timestamp written by ``now_iso``."""
    if not iso:
        return None
    try:
        return time.time() - datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
