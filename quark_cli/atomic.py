"""Atomic, durable file writes, one file at a time (many at once: ``quark_cli.group_commit``).

A write goes to a temporary file beside its target, is made durable (fsync) and is renamed into
place, so a reader never sees half a file and a kill leaves the old file or the new one, never a
mix. Folder fsyncs can be deferred to the end of a command (``deferred_dir_sync``).
``quark_cli.state`` builds the run directory on these; backends use them for their own files.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from quark_cli.disk import fsync_dir, private_dirs
from quark_cli.errors import NotRegularFileError
from quark_cli.plain import finite

__all__ = ["fsync_dir", "private_dirs"]  # with the writes here, as backends import them

_deferred_dirs: set[Path] | None = None


def defer_dir_sync(directory: Path) -> bool:
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
        fsync_dir(directory)


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


class FileSpan(NamedTuple):
    """``length`` bytes of the open file ``fd`` from ``offset``: a part of ``atomic_write_bytes``'s
    data that the kernel copies file to file (``copy_file_range``), never read into the process."""

    fd: int
    offset: int
    length: int


def atomic_write_bytes(
    path: Path, data: bytes | list[bytes | memoryview | FileSpan], durable: bool = False, sync_dir: bool = True
) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new content, never a mix.

    ``data`` is the content, or its parts in order (written one after the other, never joined: a
    100 MB results.json spliced from a few new lines and the old file's spans, ``FileSpan``).
    The file is created user-only (0600) by ``mkstemp``. ``sync_dir=False`` skips the folder's fsync
    for rewrites whose loss in a power cut is harmless (the previous version is still valid).
    """
    new_folder = not path.parent.is_dir()
    private_dirs(path.parent)
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        error.filename = str(path)  # not the temporary's random name: the file the user knows
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            for part in data if isinstance(data, list) else [data]:
                if isinstance(part, FileSpan):
                    handle.flush()  # the span lands after what was written so far
                    _copy_span(part, fd)
                else:
                    handle.write(part)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException as error:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        if isinstance(error, OSError) and error.filename is None:
            error.filename = str(path)  # a failed write names no file: say which one it was
        raise
    if not sync_dir and not durable:
        return
    if not durable and defer_dir_sync(path.parent):
        return
    fsync_dir(path.parent)
    if durable and new_folder:
        fsync_dir(path.parent.parent)


def _copy_span(span: FileSpan, out: int) -> None:
    """Append ``span`` to the file open as ``out``: by ``copy_file_range``, or where the file
    system cannot (another device, an old kernel), read and written in blocks. OSError if the
    source is shorter than the span."""
    offset, left = span.offset, span.length
    kernel = True
    while left > 0:
        if kernel:
            try:
                copied = os.copy_file_range(span.fd, out, left, offset)
            except OSError as error:
                if error.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                kernel = False
                continue
        else:
            block = os.pread(span.fd, min(left, 1 << 20), offset)
            copied = len(block)
            view = memoryview(block)
            while view:
                view = view[os.write(out, view) :]
        if copied == 0:
            raise OSError(errno.EIO, f"a span to copy ends past its file's end ({left} bytes short)")
        offset += copied
        left -= copied


def atomic_write_shared(path: Path, data: bytes) -> None:
    """``atomic_write_bytes`` for a file meant for people (a report to mail), not run state.

    Its missing folders and the file itself get the user's usual permissions (what the umask
    leaves of 0777 / 0666), not user-only. A symbolic link is written through (the file it names
    is replaced, as ``>`` would write it), never replaced itself. Raises OSError as
    ``atomic_write_bytes`` does; NotRegularFileError for a device, FIFO or socket there (replaced,
    ``-o /dev/full`` made the system's device a plain file) and IsADirectoryError for a folder.
    """
    try:
        kind = os.stat(path).st_mode  # through a link: what it names
    except FileNotFoundError:
        kind = None
    if kind is not None and stat.S_ISDIR(kind):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if kind is not None and not stat.S_ISREG(kind):
        raise NotRegularFileError(errno.EINVAL, "not a regular file", str(path))
    path = Path(os.path.realpath(path))
    umask = os.umask(0o022)
    os.umask(umask)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    os.chmod(path, 0o666 & ~umask)


def atomic_write_json(
    path: Path, value: Any, durable: bool = False, sync_dir: bool = True, compact: bool = False
) -> None:
    """Atomic JSON write; ``compact`` (one line, C encoder) for files read by programs, not people."""
    atomic_write_bytes(path, json_bytes(value, compact), durable=durable, sync_dir=sync_dir)


def json_bytes(value: Any, compact: bool = False) -> bytes:
    """What ``atomic_write_json`` writes, for ``staged_write``: strict JSON, a non-finite number as null.

    ``compact`` (job files and records, thousands a command) is encoded by orjson, 15 times quicker
    than the standard library; what orjson refuses (an integer past 64 bits, a key that is not text,
    a lone surrogate) falls to the standard library, which writes it or raises TypeError as before.
    Non-ASCII text is written as UTF-8 (the standard library writes ``\\u`` escapes); both read back alike.
    """
    if compact:
        try:
            return orjson.dumps(value, default=json_default, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            pass
    layout: dict[str, Any] = {"separators": (",", ":")} if compact else {"indent": 2}
    return (strict_dumps(value, **layout) + "\n").encode()


def strict_dumps(value: Any, **layout: Any) -> str:
    """``json.dumps`` that never writes NaN or Infinity (strict readers refuse them): they become null.

    Records come here already plain (``quark_cli.plain``); this guards everything else we write, and
    files written by older versions that held such tokens.
    """
    try:
        return json.dumps(value, allow_nan=False, default=json_default, **layout)
    except ValueError:
        return json.dumps(finite(value), allow_nan=False, default=json_default, **layout)


def json_default(value: Any) -> Any:
    """numpy scalars and arrays, which myQLM-based modules report, as plain JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def file_stamp(path: Path) -> str | None:
    """A file's identity and times (``inode:size:mtime_ns:ctime_ns``), or None if it cannot be
    seen: any later write or replacement changes it, and a change time cannot be set back
    (``touch``, ``cp -p``, a restore from a backup)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"
