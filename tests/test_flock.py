"""The file lock behind the run's lock and the local backend's: exclusive, re-entrant within one
object, and gone with a killed holder."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from quark_cli.flock import FileLock, LockTimeout

HOLDER = (
    "import sys, time; from quark_cli.flock import FileLock; "
    "FileLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)"
)


def test_two_locks_on_one_file_exclude_each_other_and_the_last_release_frees_it(tmp_path):
    path = tmp_path / ".lock"
    first, second = FileLock(path), FileLock(path)
    first.acquire()
    first.acquire()  # re-entrant: the run's nested commands take it again
    with pytest.raises(LockTimeout):
        second.acquire(timeout=0)
    first.release()
    assert first.is_locked
    with pytest.raises(LockTimeout):
        second.acquire(timeout=0.1)
    first.release()
    assert not first.is_locked
    second.acquire(timeout=0)
    assert second.is_locked
    second.release()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_lock_held_by_a_killed_process_is_free_at_once(tmp_path):
    path = tmp_path / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout):
            FileLock(path).acquire(timeout=0.2)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = FileLock(path)
    lock.acquire(timeout=0)
    assert lock.is_locked
    lock.release()


def test_a_child_forked_while_the_lock_is_held_does_not_keep_it_after_release(tmp_path):
    """A module may fork (multiprocessing's default on Linux before 3.14): the child shares the
    lock's open file, and release must free it all the same."""
    path = tmp_path / ".lock"
    lock = FileLock(path)
    lock.acquire()
    child = os.fork()
    if child == 0:  # the child outlives the release
        time.sleep(30)
        os._exit(0)
    try:
        lock.release()
        other = FileLock(path)
        other.acquire(timeout=0)
        other.release()
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_a_file_system_without_file_locks_is_an_os_error_naming_the_lock_not_a_bug():
    """flock's ENOLCK (a network file system without its lock service) names no file: the lock
    gives its path, and the message says what to do, exit 74 (not 70, a bug)."""
    from quark_cli.cli_guard import explain
    from quark_cli.errors import EXIT_OS_ERROR

    message, code = explain(OSError(errno.ENOLCK, os.strerror(errno.ENOLCK), "/runs/r/.lock"))
    assert code == EXIT_OS_ERROR
    assert message == (
        "error: /runs/r/.lock: its file system gives no file locks (flock), which quark needs; keep the run "
        "on a local disk (nothing was lost: the files keep their last complete version)"
    )
