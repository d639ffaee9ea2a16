"""The run's write-ahead journal: records and job files rewritten in place, made durable in batches.

Creating a file cost 0.02 to 0.6 ms on the virtual disk measured here (``bench/bench_floor.py``),
rewriting one in place 0.005 ms. So a group commit (``quark_cli.group_commit.GroupCommit``) writes
the new contents of a batch of ``records/<stack>.json`` and ``jobs/<job>.json`` files into
one segment, ``<run>/.journal/<n>.json``, makes it durable (one fsync), and only then rewrites each
file of at most a page in place (a new or larger file is still written beside it and renamed into
place). At the end of a pass, one ``syncfs`` makes the rewrites durable and the segments are
retired (a checkpoint): emptied and kept as spares (``<n>.spare``), whose inodes the next segments
are written into, rather than deleted. On ext4 without a journal a deletion makes every file created
near it in the next minutes slower (``bench/README.md``), so a collect that deleted its segments
slowed the submit after it.

A kill or a power cut in between can leave a rewrite half done; every segment still on disk is then
applied again, in order, by the next process that takes the run's lock (``replay``), before it
reads anything. Readers that do not take the lock (``status``, ``report``) take a shared ``flock``
on the file, which the in-place rewrite holds exclusively, and read a damaged file from the journal
(``journal_copy``). Only the lock holder writes these files, so nothing else can overtake a segment.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from quark_cli.atomic import atomic_write_bytes
from quark_cli.disk import fsync_dir, read_regular, sync_files, will_need
from quark_cli.errors import NotRegularFileError

JOURNAL_DIR = ".journal"
SCHEMA_VERSION = 1
PAGE = 4096
#: Segment bytes after which a group checkpoints: the journal's disk use stays bounded.
CHECKPOINT_BYTES = 8 << 20
#: Retired segments kept (empty) for the next ones to be written into; more are deleted.
SPARES = 256
SPARE_SUFFIX = ".spare"


def journaled(relative: str) -> bool:
    """True for the files the journal carries: ``records/<stack>.json``, ``jobs/<job>.json`` and
    (a run of run.json version 1) ``jobs/<job>/job_info.json`` (``relative`` to the run directory,
    ``/``-separated)."""
    parts = relative.split("/")
    if "\0" in relative or any(part in ("", ".", "..") for part in parts):
        return False
    if len(parts) == 2:
        return parts[0] in ("records", "jobs") and parts[1].endswith(".json") and not parts[1].startswith(".")
    return len(parts) == 3 and parts[0] == "jobs" and parts[2] == "job_info.json"


class Journal:
    """The segments of one group commit (one process, holding the run's lock)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.folder = self.root / JOURNAL_DIR
        self._serial = 0
        self._segments: list[Path] = []
        self._spares: list[Path] = []
        self.size = 0  # bytes in segments since the last checkpoint

    def append(self, writes: list[tuple[str, bytes]]) -> None:
        """Make ``writes`` ([(path relative to the run, new content)], applied in that order)
        durable as one segment; raises OSError (a full disk) with nothing of them applied."""
        if not self._segments and not self._serial:
            self._serial, self._spares = _listing(self.folder)
        self._serial += 1
        segment = self.folder / f"{self._serial:08d}.json"
        body = orjson.dumps(  # compact UTF-8: three times as quick as json.dumps, the same bytes
            {
                "schema_version": SCHEMA_VERSION,
                "writes": [{"path": path, "content": data.decode("utf-8")} for path, data in writes],
            }
        )
        try:
            if not (self._spares and _reuse(self._spares.pop(), segment, body)):
                atomic_write_bytes(segment, body, durable=True)  # its folder too, made when first needed
        except BaseException:
            self._serial -= 1
            raise
        self._segments.append(segment)
        self.size += len(body)

    def checkpoint(self) -> None:
        """Make every rewrite so far durable (one ``syncfs``), then retire the segments: each is
        renamed to a spare name (which replay ignores) and emptied, or deleted past ``SPARES``."""
        if not self._segments:
            return
        sync_files(self.root, [self.root])
        for segment in self._segments:
            if len(self._spares) >= SPARES:
                segment.unlink(missing_ok=True)
                continue
            spare = segment.with_suffix(SPARE_SUFFIX)
            try:
                os.replace(segment, spare)  # first out of replay's sight, then emptied
                os.truncate(spare, 0)
            except FileNotFoundError:
                continue
            self._spares.append(spare)
        fsync_dir(self.folder)
        self._segments.clear()
        self.size = 0


def _reuse(spare: Path, segment: Path, body: bytes) -> bool:
    """Write ``body`` into the spare file, make it durable and rename it to ``segment`` (and sync the
    folder): what ``atomic_write_bytes`` does, with an inode that exists already. False if the spare
    is gone or is not a regular file (the caller writes a new file); raises OSError (a full disk),
    leaving the spare under its spare name, which replay ignores."""
    try:
        fd = os.open(spare, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO, errno.EACCES, errno.EPERM):
            return False
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        _write_all(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(spare, segment)
    fsync_dir(segment.parent)
    return True


def in_place(path: str, data: bytes) -> bool:
    """True when ``data`` can replace the file at ``path`` in place: both fit in one page (a kill
    stops a write between pages only), and it is a regular file.

    Also asks the kernel to read the file's page now (``disk.will_need``): a rewrite of less than a
    page whose page is not cached reads it from the disk first (0.06 ms a file here against 0.006 ms
    cached), and a cron collect minutes after the submit finds its files paged out (this machine's
    kernel pages out what was not used for a minute). The group commit asks for a whole batch
    before it syncs the batch's segment, so the disk serves the reads together, during that sync.
    """
    if len(data) > PAGE:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # missing, a link, or not ours to read: as its status says
        try:
            status = os.lstat(path)
        except OSError:
            return False
        return stat.S_ISREG(status.st_mode) and status.st_size <= PAGE
    try:
        status = os.fstat(fd)
        small = stat.S_ISREG(status.st_mode) and status.st_size <= PAGE
        if small:
            will_need(fd, PAGE)
        return small
    finally:
        os.close(fd)


def rewrite(path: str, data: bytes) -> bool:
    """Rewrite an existing file of at most a page in place, under an exclusive ``flock``, with one
    ``pwrite`` (which a kill lets happen whole or not at all); shorter content is padded with spaces,
    which JSON allows, rather than cut by a second call. False when it cannot be (no such file, not
    writable, over a page), for the caller to write a new file. Raises OSError (a full disk)."""
    if len(data) > PAGE:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.ELOOP, errno.ENXIO):
            return False
        if error.filename is None:
            error.filename = path
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        status = os.fstat(fd)
        if status.st_size > PAGE or not stat.S_ISREG(status.st_mode):
            return False
        size = status.st_size
        _write_all(fd, data + b" " * (size - len(data)) if size > len(data) else data)
    except OSError as error:
        if error.filename is None:
            error.filename = path
        raise
    finally:
        os.close(fd)
    return True


def read_locked(path: Path) -> bytes:
    """A file's content, read under a shared ``flock`` (never half an in-place rewrite). Raises
    OSError: ``disk.NotRegularFileError`` for a FIFO, socket or device, IsADirectoryError for a folder."""
    return read_regular(path, shared_lock=True)


def replay(root: Path, check: Callable[[Path, bytes], None]) -> int:
    """Apply again every segment a killed process left (in order), make it durable, delete the
    segments; returns how many there were. Called by the lock holder before it reads the run.
    Every write is first checked (``check(target, content)`` raises for content we would not
    write), so a segment that is not ours changes nothing. Raises OSError (a full disk) and
    RunDirError for a segment that is not ours."""
    folder = Path(root) / JOURNAL_DIR
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return 0
    segments = [folder / name for name in names if _is_segment(name)]
    writes = [(Path(root) / path, data) for segment in segments for path, data in _writes(segment)]
    for target, data in writes:
        check(target, data)
    for target, data in writes:
        if not rewrite(str(target), data):
            atomic_write_bytes(target, data, sync_dir=False)  # durable by the syncfs below
    if segments:
        sync_files(Path(root), [Path(root)])
    for name in names:
        if name.endswith(".tmp") or _is_segment(name):  # a segment a kill cut short was never applied
            (folder / name).unlink(missing_ok=True)
    if segments:
        fsync_dir(folder)
    return len(segments)


def journal_copy(path: Path) -> bytes | None:
    """The latest content the journal holds for ``path`` (a record or a job_info.json, found damaged
    by a reader while a kill's segments wait for their replay), or None."""
    path = Path(path)
    root = path.parent.parent.parent if path.name == "job_info.json" else path.parent.parent
    relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else ""
    if not journaled(relative):
        return None
    try:
        names = sorted((name for name in os.listdir(root / JOURNAL_DIR) if _is_segment(name)), reverse=True)
    except OSError:
        return None
    from quark_cli.errors import RunDirError

    for name in names:
        try:
            writes = _writes(root / JOURNAL_DIR / name)
        except (OSError, ValueError, RunDirError):
            # retired by a checkpoint meanwhile (gone, or emptied under an open read): the file
            # itself is whole again; a segment truly damaged is the lock holder's to report
            continue
        for written, data in reversed(writes):
            if written == relative:
                return data
    return None


def _is_segment(name: str) -> bool:
    return name.endswith(".json") and name[: -len(".json")].isdigit()


def _is_spare(name: str) -> bool:
    return name.endswith(SPARE_SUFFIX) and name[: -len(SPARE_SUFFIX)].isdigit()


def _listing(folder: Path) -> tuple[int, list[Path]]:
    """The highest serial among the folder's segments and spares (a new segment's name never takes
    a spare's), and the spares."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0, []
    spares = [name for name in names if _is_spare(name)]
    serials = [int(name[: -len(".json")]) for name in names if _is_segment(name)]
    serials += [int(name[: -len(SPARE_SUFFIX)]) for name in spares]
    return max(serials, default=0), [folder / name for name in sorted(spares)]


def _writes(segment: Path) -> list[tuple[str, bytes]]:
    """A segment's writes as [(relative path, content)]; RunDirError if it is not one of ours."""
    from quark_cli.errors import RunDirError

    try:
        value: Any = json.loads(read_regular(segment))
        writes = [(item["path"], item["content"].encode("utf-8")) for item in value["writes"]]
        if value["schema_version"] > SCHEMA_VERSION or not all(journaled(path) for path, _ in writes):
            raise ValueError("not ours")
    except (ValueError, KeyError, TypeError, AttributeError, IsADirectoryError, NotRegularFileError) as error:
        raise RunDirError(
            f"{segment}: damaged journal segment ({type(error).__name__}); restore it or remove the run"
        ) from None
    return writes


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        offset += os.pwrite(fd, view[offset:], offset)
