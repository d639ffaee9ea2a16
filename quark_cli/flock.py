"""An exclusive ``flock`` on a file: the run's lock, and the local backend's locks on its jobs.

The lock belongs to an open file, so the kernel drops it when its process dies: a killed command
never leaves a stale lock, and nothing is written to take one. (The ``filelock`` package did this
before; its import cost 10 ms of every command, as much as the rest of the locking code.)
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path


class LockTimeout(TimeoutError):
    """The lock was held by another process (or another ``FileLock`` object) for all the time given."""


class FileLock:
    """An exclusive ``flock`` on ``path`` (created with ``mode`` if missing), held by this object.

    Re-entrant within the object: each ``acquire`` needs its ``release``, and the last one drops the
    lock, also for a child process forked meanwhile (which shares it until then). Two objects on the
    same file exclude each other, in one process as in two. An object is for one thread at a time.
    """

    def __init__(self, path: str | Path, mode: int = 0o600) -> None:
        self.path = os.fspath(path)
        self.mode = mode
        self._fd: int | None = None
        self._count = 0

    @property
    def is_locked(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self, timeout: float = -1, poll_interval: float = 0.05) -> None:
        """Take the lock, trying every ``poll_interval`` seconds for up to ``timeout`` seconds (0: one
        try; negative: until it is free). Raises LockTimeout when it stayed held, OSError when the
        file cannot be opened or the file system has no ``flock``."""
        if self._fd is not None:
            self._count += 1
            return
        deadline = None if timeout < 0 else time.monotonic() + timeout
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, self.mode)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):  # EACCES: held, on some file systems
                        error.filename = self.path  # flock names no file: the message must
                        raise
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise LockTimeout(f"{self.path}: held by another process") from None
                    time.sleep(poll_interval if left is None else min(poll_interval, left))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._count = 1

    def release(self) -> None:
        """Give back one ``acquire``; the last one drops the lock. Nothing if it is not held."""
        if self._fd is None:
            return
        self._count -= 1
        if self._count == 0:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)  # a child forked meanwhile shares the lock: closing alone keeps it
            finally:
                os.close(fd)
