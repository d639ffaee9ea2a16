"""A command's lines in the run's ``logging.log``: written in blocks, nothing for a command that
found nothing to do, and dropped after a full disk rather than a traceback a line."""

from __future__ import annotations

import logging
import logging.handlers
import os
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from quark_cli import __version__
from quark_cli.disk import open_regular
from quark_cli.errors import NotRegularFileError, RunDirError
from quark_cli.state import RunDir


def _caller_if_asked(stack_info: bool = False, stacklevel: int = 1) -> tuple[str, int, str, str | None]:
    """``findCaller`` of the ``quark_cli`` logger: no caller for its records (no format of ours shows
    one), unless a call asks for its stack. Walking the frames for the caller was half of each log
    line's cost (27 against 14 us), and a collect logs two lines a stack. Module code logs through
    its own loggers, whose records keep their file and line."""
    if stack_info:
        return _find_caller(stack_info, stacklevel + 1)  # + 1: this function's own frame
    return "(unknown file)", 0, "(unknown function)", None


_find_caller = logging.getLogger("quark_cli").findCaller
logging.getLogger("quark_cli").findCaller = _caller_if_asked


class _RunLog(logging.FileHandler):
    """The run's logging.log. After its first failed write (a full disk) it drops what follows: the
    command's own error says what happened, instead of a traceback for every log line."""

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        """Write the line, unflushed: ``_Buffer`` flushes once per block, not a system call a line."""
        if self.failed:
            return
        try:
            if self.stream is None:
                self.stream = self._open()
            self.stream.write(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed = True


class _Buffer(logging.handlers.MemoryHandler):
    """Lines in blocks; flushed at once for warnings and errors, and for a finished stack
    (``extra=FLUSH``) when the last flush is ``FLUSH_SECONDS`` old: a long walk shows its progress in
    the log, a thousand quick stacks do not cost a write each.

    A command that logs nothing but its own first line (a cron collect that found nothing new) writes
    nothing: the log of a finished run does not grow by a line every ten minutes.
    """

    FLUSH_SECONDS = 1.0
    said_something = False
    flushed_at = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        self.said_something = self.said_something or not getattr(record, "command_line", False)
        super().emit(record)

    def shouldFlush(self, record: logging.LogRecord) -> bool:
        if not self.said_something:
            return False
        if super().shouldFlush(record):
            return True
        return getattr(record, "flush_log", False) and time.monotonic() - self.flushed_at >= self.FLUSH_SECONDS

    def flush(self) -> None:
        if not self.said_something:
            self.acquire()
            try:
                self.buffer.clear()
            finally:
                self.release()
            return
        self.flushed_at = time.monotonic()
        super().flush()
        if self.target is not None:
            try:
                self.target.flush()
            except OSError:  # a full disk: the command's own error says so
                self.target.failed = True


def _create_log(path: Path) -> None:
    """Create the run's log user-only, like the run, unless it exists. RunDirError if something other
    than a regular file is in its place: a FIFO would block the command's first log line for good."""
    try:
        os.close(open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND))
    except (NotRegularFileError, IsADirectoryError):
        raise RunDirError(
            f"{path}: is a FIFO, socket, device or folder, not the run's log file; restore it or remove the run"
        ) from None


@contextmanager
def command_log(run: RunDir, command: str):
    """Send this command's log lines (with tracebacks of module errors) to the run's logging.log."""
    _create_log(run.log_file())
    target = _RunLog(run.log_file(), encoding="utf-8", errors="backslashreplace")  # a lone surrogate: one line
    target.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(message)s"))
    handler = _Buffer(512, flushLevel=logging.WARNING, target=target)
    logger = logging.getLogger("quark_cli")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.info("%s (quark-cli %s)", command, __version__, extra={"command_line": True})
    try:
        yield
    finally:
        logger.removeHandler(handler)
        with suppress(OSError):  # a full disk: the command's own error is the one to report
            handler.close()
            target.close()
