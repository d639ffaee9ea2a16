"""Stacks walked on a few threads so that their submissions wait for their services together.

A submission to a remote service is mostly waiting (50 ms to seconds a call); 1,000 of them one after
another are minutes. ``SubmissionPool`` walks stacks on up to ``workers`` threads but lets only one of
them run module code at a time (``module_lock``): a walk gives the lock up only for its submission
(``unlocked``: the durable intent, the submit hook, the id), so modules that were never written for
threads still see one caller at a time, and only submit hooks of job managers that allow it
(``AsyncJobManager.concurrent_submissions``) overlap. The intents of the waiting threads are
committed together (``quark_cli.group_commit.committed_write``): one syncfs per batch, not an fsync each.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any


class SubmissionPool:
    """Runs ``walk(key)`` calls on up to ``workers`` threads, one at a time outside submissions.

    ``start`` blocks while every thread is busy; ``finished`` hands back, in the caller's thread, what
    the walks that ended returned, and raises what a walk raised. ``close`` waits for the walks still
    running. Use as a context manager: leaving it (also by an error or Ctrl-C in the caller) lets the
    running walks end, so that no submission is left half recorded by this process.
    """

    def __init__(self, workers: int) -> None:
        self.module_lock = threading.Lock()
        self._holding = threading.local()  # .value: this thread holds module_lock
        self._walking = 0  # walks that hold or wait for module_lock
        self._count_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(workers)
        self._done: queue.SimpleQueue[tuple[str, Future]] = queue.SimpleQueue()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="quark-submit")

    def __enter__(self) -> SubmissionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def start(self, key: str, walk: Callable[..., Any], *args: Any) -> list[tuple[str, Any]]:
        """Walk stack ``key`` (``walk(*args)``) on a free thread; ``(key, answer)`` of walks ended meanwhile."""
        self._slots.acquire()
        try:
            future = self._pool.submit(self._locked, walk, args)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda done: self._ended(key, done))
        return self.finished()

    def finished(self) -> list[tuple[str, Any]]:
        """``(key, answer)`` of every walk that ended since the last call; raises the first walk's error."""
        ended = []
        while True:
            try:
                key, future = self._done.get_nowait()
            except queue.Empty:
                return ended
            ended.append((key, future.result()))

    def close(self) -> list[tuple[str, Any]]:
        """Wait for every walk; ``(key, answer)`` of those not handed back yet."""
        self._pool.shutdown(wait=True)
        return self.finished()

    @contextmanager
    def unlocked(self) -> Iterator[None]:
        """Around one submission, in the walking thread: other stacks' module code may run meanwhile.

        The lock is not taken back: in a submit, a stack's walk ends at its first submission, and
        what is left (its record) touches only this stack's own objects.
        """
        if self._holding.value:
            self._holding.value = False
            with self._count_lock:
                self._walking -= 1
            self.module_lock.release()
        yield

    def walks_coming(self) -> bool:
        """True while a walk runs or waits to run module code: it will bring its intent soon."""
        return self._walking > 0

    def _locked(self, walk: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        with self._count_lock:
            self._walking += 1
        self.module_lock.acquire()
        self._holding.value = True
        try:
            return walk(*args)
        finally:
            if self._holding.value:
                self._holding.value = False
                with self._count_lock:
                    self._walking -= 1
                self.module_lock.release()

    def _ended(self, key: str, future: Future) -> None:
        self._done.put((key, future))
        self._slots.release()
