"""The file system calls beneath our writes: user-only folders, folder fsync, and ``syncfs``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def private_dirs(directory: Path) -> None:
    """``mkdir -p`` with every folder it creates user-only (``Path.mkdir`` gives parents the umask's)."""
    if directory.is_dir():
        return
    private_dirs(directory.parent)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        pass


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
