"""The file system calls beneath our writes and reads: user-only folders, folder fsync, ``syncfs``,
reading ahead, and reading a file that must be a regular one."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

from quark_cli.errors import NotRegularFileError


def open_regular(path: Path | str, flags: int = os.O_RDONLY) -> int:
    """``path`` opened without blocking (``flags``: reading; ``os.O_WRONLY | os.O_CREAT | os.O_APPEND``
    to append, created user-only), if it is a regular file (a link to one is followed): its file
    descriptor, for the caller to close. Checked before anything is read or written: raises
    NotRegularFileError for a FIFO, socket or device, IsADirectoryError for a folder, and OSError
    as the system gives it (FileNotFoundError for a missing file)."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK, 0o600)
    except OSError as error:
        if error.errno == errno.ENXIO:  # a socket; a FIFO opened to write that nobody reads
            raise NotRegularFileError(errno.EINVAL, "not a regular file", str(path)) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(errno.EINVAL, "not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path | str, shared_lock: bool = False) -> bytes:
    """The whole content of the regular file at ``path`` (``open_regular``, whose errors it raises),
    read under a shared ``flock`` with ``shared_lock``."""
    fd = open_regular(path)
    try:
        if shared_lock:
            fcntl.flock(fd, fcntl.LOCK_SH)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def private_dirs(directory: Path) -> None:
    """``mkdir -p`` with every folder it creates user-only (``Path.mkdir`` gives parents the umask's).

    NotADirectoryError when something other than a folder is in the way (what writing into it would
    raise), at the last folder as at the others.
    """
    if directory.is_dir():
        return
    private_dirs(directory.parent)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        if not directory.is_dir():  # else another process made it meanwhile
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(directory)) from None


def fsync_dir(directory: Path) -> None:
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


def will_need(fd: int, length: int = 0) -> None:
    """Ask the kernel to read the first ``length`` bytes (0: all) of the open file ``fd`` into its
    cache, without waiting (``POSIX_FADV_WILLNEED``). Best effort: a system or file system without
    the call is left as it is."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        with suppress(OSError):
            advise(fd, 0, length, os.POSIX_FADV_WILLNEED)


def read_ahead(paths: Iterable[Path]) -> None:
    """Have the kernel read the regular files ``paths`` whole into its cache (``will_need``), so
    that the disk reads them while the command does other work. A file that is missing or not a
    regular file is left as it is."""
    for path in paths:
        try:
            fd = open_regular(path)
        except OSError:
            continue
        try:
            will_need(fd)
        finally:
            os.close(fd)


_libc: Any = None


def sync_files(root: Path, paths: list[Path]) -> None:
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
