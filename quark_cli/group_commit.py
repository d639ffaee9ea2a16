"""Many atomic writes made durable together: the group commit of a command's records, jobs and marks.

``group_commit(root)`` opens a group for a block; inside it ``staged_write`` queues a file's new
content, ``committed_write`` waits until its write is durable (a submission's intent), and
``after_commit`` runs a step once the writes before it are in place. Records and job files go
through the write-ahead journal (``quark_cli.journal``); the rest through temporaries and one
``syncfs`` a batch. Outside a group each is a plain ``quark_cli.atomic`` write.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import wait
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from quark_cli.atomic import atomic_write_bytes, defer_dir_sync
from quark_cli.disk import fsync_dir, private_dirs, sync_files
from quark_cli.interrupts import deferred
from quark_cli.journal import CHECKPOINT_BYTES, Journal, in_place, journaled, rewrite

STAGING_DIR = ".staging"
#: Marks a batch holding a durable write: its renames and new folders are synced with one syncfs.
DURABLE = "\0durable"


class _Plan:
    """How a batch lands: the items journaled, those of them rewritten in place, the temporaries of
    the rest (by item index), and the folders to sync before the next callback."""

    def __init__(self) -> None:
        self.journaled: set[int] = set()
        self.in_place: set[int] = set()
        self.temps: dict[int, str] = {}
        self.folders: dict[str, None] = {}


class GroupCommit:
    """Atomic writes made durable together: one ``syncfs`` for a batch instead of an fsync per file.

    ``write`` only queues the new content. A commit writes each queued file to a temporary under
    ``<run>/.staging`` (same file system, so a rename moves it into place), syncs the file system
    once, then renames every temporary onto its target and runs every ``then`` callback, all in the
    order they were queued. So each file is still written, made durable, then renamed (a reader or a
    kill sees the old content or the new, never half), and a kill leaves only temporaries that
    ``RunDir.remove_temp_files`` clears. An fsync costs about a millisecond on a virtual disk and
    thousands of them made up most of a collect; a ``syncfs`` costs about as much as one.

    Once ``BATCH`` files are queued, the thread that queued the last one commits them, as long as
    batches are quick (``INLINE_SECONDS`` for ``BATCH`` files). A batch whose files were all
    rewritten in place (a collect's records and jobs) lets the next one be twice as large, up to
    ``IN_PLACE_BATCH``: it creates no file, and its segment's fsync is most of its cost (a resume of
    1,000 stacks spent 8 ms less in its batches). A batch's many small system calls each hand the
    interpreter lock over, and from a second thread they slowed the engine's own calls more than
    the commit took: a resume of 1,000 stacks ran 10% quicker with no background thread. Once two
    batches in a row are slow (a slow disk), a background thread commits batches while the engine
    goes on, from ``LIMIT`` files queued. ``commit`` commits everything queued so far and waits for it.
    Thread-safe.
    """

    LIMIT = 64
    BATCH = 128
    IN_PLACE_BATCH = 512
    MAX_QUEUED = 2048
    #: Seconds a batch of ``BATCH`` files may take (without its checkpoint) in the thread that queued
    #: it (a larger one, in proportion); once two in a row took longer, the rest of the group's
    #: batches are committed by a background thread.
    INLINE_SECONDS = 0.010
    #: Seconds ``commit_through`` waits for others' writes to join its batch while ``others_coming``.
    LINGER = 0.005
    WRITERS = 8

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.prefix = os.path.join(str(self.root), "")
        self.staging = os.path.join(str(self.root), STAGING_DIR)
        self._items: list[tuple[Any, ...]] = []
        self._files = 0
        self._serial = 0
        self._queued_count = 0  # items queued so far: a write's ticket is its number
        self._taken = 0  # items taken into batches so far
        self._committed = 0  # items in place so far (batches end in order, under _commit_lock)
        self._folders: set[str] = set()
        self._background: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._pool: Any = None
        self._inline = True  # batches committed by the thread that fills them, while they are quick
        self._batch_took = 0.0  # seconds the last batch took for BATCH files, from its lock to its checkpoint
        self._batch_size = self.BATCH  # files the next batch takes
        #: Whether the last inline batch was slow. One slow batch (pages of files paged out, a busy
        #: moment of the disk) leaves the batches inline; the background thread's hand-offs of the
        #: interpreter cost the engine more than such a batch (0.1 s in a collect of 1,000 stacks).
        self._slow_before = False
        self._journal = Journal(self.root)
        self._queued: dict[str, int] = {}  # target -> staged writes not yet in place
        #: Set by a caller that knows: True while other threads are about to queue a write that they
        #: will wait for (``commit_through`` lingers a moment so that one sync serves them all).
        self.others_coming: Callable[[], bool] | None = None

    def write(self, path: Path | str, data: bytes, sync_dir: bool = True, durable: bool = False) -> int:
        """Queue ``data`` for ``path`` (``sync_dir`` and ``durable`` as for ``atomic_write_bytes``);
        returns the write's place in the queue, for ``commit_through``."""
        with self._lock:
            self._items.append(("file", os.fspath(path), data, "durable" if durable else sync_dir))
            self._queued_count += 1
            ticket = self._queued_count
            self._files += 1
            self._queued[os.fspath(path)] = self._queued.get(os.fspath(path), 0) + 1
            inline = self._inline and self._files >= self._batch_size
            start = not self._inline and self._files >= self.LIMIT and self._background is None
            if start:
                self._background = threading.Thread(target=self._commit_in_background, name="quark-commit")
            behind = self._files > self.MAX_QUEUED
        if start:
            self._background.start()
        if inline:
            # a failure is kept as the group's error and raised by its next commit, not into the walk
            # whose write filled the batch: that walk would take another stack's disk error for its own
            with suppress(Exception):
                if self._commit_batch(wait=False):
                    slow = self._batch_took > self.INLINE_SECONDS
                    if slow and self._slow_before:  # a slow disk, not a slow moment: overlap the rest
                        self._inline = False
                    self._slow_before = slow
        elif behind:  # the disk is slower than the engine: help commit, so that what waits stays bounded
            self._commit_batch()
        return ticket

    def then(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` once everything queued before it is in place."""
        with self._lock:
            self._items.append(("call", function, args, None))
            self._queued_count += 1

    def commit(self) -> None:
        """Commit everything queued so far, in order, and wait for it; raise the failure of a batch
        (this one's or an earlier one's, in any thread): after it, nothing more lands."""
        with self._lock:
            background = self._background
        if background is not None:
            background.join()
        while self._commit_batch():
            pass
        if self._error is not None:
            raise self._error

    def commit_through(self, ticket: int) -> None:
        """Wait until the write ``ticket`` (from ``write``) and all before it are in place, committing
        batches meanwhile: threads waiting together share the batches (one sync for many)."""
        deadline = time.monotonic() + self.LINGER
        while True:
            with self._lock:
                if self._committed >= ticket:
                    return
                if self._error is not None:  # a batch before this write failed: it will never be in place
                    raise self._error
            gather = self.others_coming
            if gather is not None and gather() and time.monotonic() < deadline:
                time.sleep(self.LINGER / 10)  # another thread is about to queue its write: one sync for both
                continue
            self._commit_batch(through=ticket)

    def checkpoint(self) -> None:
        """Commit everything queued so far and make the journal's rewrites durable (one ``syncfs``),
        then delete its segments. Under the commit lock: a batch that another thread commits
        meanwhile is whole before its segment goes, or waits for the next checkpoint."""
        self.commit()
        with self._commit_lock:
            self._journal.checkpoint()

    def close(self) -> None:
        """Commit what is left, make the journal's rewrites durable, and stop the writing threads."""
        try:
            self.checkpoint()
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

    def _commit_batch(self, through: int | None = None, wait: bool = True) -> bool:
        """Commit the oldest ``_batch_size`` files (and the callbacks queued among them); False if none was
        queued, with ``through`` if that write is in place already, without ``wait`` if another
        thread is committing, and once a batch failed: files land in the order they were queued, so
        none after one that may be missing. Sets ``_batch_took``: its seconds, without its checkpoint
        if any. Ctrl-C waits for the batch's end (``interrupts.deferred``).

        Small batches: writes into a file system slow down as unsynced new files pile up (a third of
        a millisecond a file with 1,500 of them here, a tenth with 100).
        """
        if not self._commit_lock.acquire(blocking=wait):
            return False
        started = time.perf_counter()
        try:
            with self._lock:
                if self._error is not None:
                    return False
                if through is not None and self._committed >= through:
                    return False  # another thread's batch took it while this one waited for its turn
                file_count = taken = 0
                for kind, *_ in self._items:
                    if file_count == self._batch_size and kind == "file":
                        break
                    taken += 1
                    file_count += kind == "file"
                items, self._items = self._items[:taken], self._items[taken:]
                self._files -= file_count
                last = self._taken = self._taken + taken
            if not items:
                return False
            with deferred():  # a Ctrl-C stopping the batch half way would lose its rest
                try:
                    plan = self._plan(items)
                    for index, (kind, first, second, sync_dir) in enumerate(items):
                        if kind == "call":
                            self._sync_folders(plan.folders)
                            first(*second)
                            continue
                        folder = os.path.dirname(first)
                        if index in plan.in_place:
                            if not rewrite(first, second):  # removed meanwhile: its segment holds it
                                atomic_write_bytes(Path(first), second, sync_dir=False)
                        else:
                            self._ensure_folder(folder)
                            os.replace(plan.temps[index], first)
                        with self._lock:
                            left = self._queued.pop(first) - 1
                            if left:
                                self._queued[first] = left
                        if index in plan.journaled:
                            continue  # its segment is durable: no folder to sync for it
                        if sync_dir == "durable":
                            plan.folders[DURABLE] = None
                        elif sync_dir and folder not in plan.folders and not defer_dir_sync(Path(folder)):
                            plan.folders[folder] = None
                    self._sync_folders(plan.folders)
                    self._batch_took = (time.perf_counter() - started) * self.BATCH / max(file_count, self.BATCH)
                    if file_count:
                        in_place = len(plan.in_place) == file_count
                        self._batch_size = min(2 * self._batch_size, self.IN_PLACE_BATCH) if in_place else self.BATCH
                    if self._journal.size > CHECKPOINT_BYTES:
                        self._journal.checkpoint()
                except BaseException as failure:  # a full disk, a folder we may not write: no temporary stays behind
                    self._error = self._error or failure  # for the threads waiting on this batch
                    for name in os.listdir(self.staging) if os.path.isdir(self.staging) else []:
                        if name.startswith(f"{os.getpid()}-"):
                            with suppress(OSError):
                                os.unlink(os.path.join(self.staging, name))
                    raise
                with self._lock:
                    self._committed = last
            return True
        finally:
            self._commit_lock.release()

    def _plan(self, items: list[tuple[Any, ...]]) -> _Plan:
        """Journal the batch's records and job files as one durable segment (``quark_cli.journal``)
        and pick those rewritten in place; write a temporary for every other file, made durable by
        one ``syncfs`` when a file outside the journal is among them."""
        plan = _Plan()
        journaled_writes: list[tuple[str, bytes]] = []
        temp_indexes: list[int] = []
        outside = False
        for index, (kind, path, data, _) in enumerate(items):
            if kind != "file":
                continue
            relative = path[len(self.prefix) :] if path.startswith(self.prefix) else ""
            if journaled(relative) and not outside:
                plan.journaled.add(index)
                journaled_writes.append((relative, data))
                if in_place(path, data):
                    plan.in_place.add(index)
                    continue
            else:
                # a journaled write queued after one outside the journal (a backend's files, then
                # its job's new status) is renamed into place after it: the segment, replayed after
                # a kill, must not bring back the later write without the earlier one
                outside = True
            temp_indexes.append(index)
        if journaled_writes:
            self._journal.append(journaled_writes)
        if temp_indexes:
            written = self._write_temps([items[index][2] for index in temp_indexes])
            plan.temps = dict(zip(temp_indexes, written, strict=True))
        if any(index not in plan.journaled for index in temp_indexes):
            sync_files(self.root, list(plan.temps.values()))
        return plan

    def _sync_folders(self, folders: dict[str, None]) -> None:
        """Make the renames into ``folders`` durable (all of them, by one syncfs, if ``DURABLE`` is among them)."""
        if DURABLE in folders:
            sync_files(self.root, [self.root])
        else:
            for folder in folders:
                fsync_dir(Path(folder))
        folders.clear()

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
        wait(futures)  # all of them, also after a failure: none may create a file after the clean-up
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
        except OSError as error:
            error.filename = error.filename or os.path.dirname(path)
            raise
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


def staged_write(path: Path | str, data: bytes, sync_dir: bool = True) -> None:
    """An atomic write, staged in the active ``group_commit`` when ``path`` is under its root."""
    group = _group
    if group is not None and os.fspath(path).startswith(group.prefix):
        group.write(path, data, sync_dir)
    else:
        atomic_write_bytes(Path(path), data, sync_dir=sync_dir)


def staging(path: Path) -> bool:
    """True when a ``group_commit`` is active whose root holds ``path`` (``staged_write`` stages it)."""
    group = _group
    return group is not None and os.fspath(path).startswith(group.prefix)


def committed_write(path: Path, data: bytes) -> None:
    """An atomic write on disk, its folder too, when this returns.

    In an active ``group_commit`` the write is staged and the group committed through it: threads
    that call this together share one syncfs (the group commit of submission intents) instead of
    an fsync each. Writes staged before it are in place by then too (the queue is committed in order).
    """
    group = _group
    if group is not None and os.fspath(path).startswith(group.prefix):
        group.commit_through(group.write(path, data, sync_dir=True, durable=True))
    else:
        atomic_write_bytes(Path(path), data, durable=True, sync_dir=True)


def checkpoint_staged() -> None:
    """Commit the active group and make its journaled rewrites durable now, before a journaled file
    is deleted: a replay after a kill must not bring it back."""
    group = _group
    if group is not None:
        group.checkpoint()


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
