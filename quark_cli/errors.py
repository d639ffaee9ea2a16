"""One family of errors, each carrying the exit code the CLI reports for it.

Code below the CLI raises these; the CLI turns them into a one-line message (a traceback only with
``--debug``). Exit codes are part of the user contract and documented in the README.
"""

from __future__ import annotations

import errno

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_PENDING = 3
EXIT_INTERNAL = 70
EXIT_OS_ERROR = 74
EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130
EXIT_OUTPUT_CLOSED = 141  # 128 + SIGPIPE, as a shell reports a command stopped by a closed pipe

#: Operating-system errors on files that are the machine's state, not a bug: what to do about each.
OS_ERRORS = {
    errno.ENOSPC: "no space left on its file system; free some, then run the command again",
    errno.EDQUOT: "your disk quota is used up; free some, then run the command again",
    errno.EACCES: "permission denied; check the owner and permissions of it and its folders",
    errno.EPERM: "operation not permitted; check the owner and permissions of it and its folders",
    errno.EROFS: "its file system is read-only",
    errno.ENAMETOOLONG: "a name is too long for its file system",
    errno.EIO: "the device reported an input/output error",
    errno.EMFILE: "this process has too many open files; raise 'ulimit -n'",
    errno.ENFILE: "the system has too many open files",
    errno.ENOLCK: "its file system gives no file locks (flock), which quark needs; keep the run on a local disk",
}
#: Operating-system errors of a path that cannot be a file (an ``-o`` under a file, into a folder, a link
#: in a loop): the path given is wrong, so bad input (exit 2).
PATH_ERRORS = {
    errno.ENOENT: "no such file or folder there, and none can be made; check the path",
    errno.ENOTDIR: "a part of its path is a file, not a folder; check the path",
    errno.EISDIR: "is a folder, not a file; check the path",
    errno.EEXIST: "already exists and is not a folder; check the path",
    errno.ELOOP: "is a link in a loop (too many levels of symbolic links); check the path",
    errno.ENXIO: "is a socket or a device with nothing behind it, not a file; check the path",
}


class NotRegularFileError(OSError):
    """A FIFO, a socket or a device where one of our files belongs: opened for reading, a FIFO blocks
    until a writer comes; read, a device such as ``/dev/zero`` never ends. Bad input (exit 2)."""


class QuarkError(Exception):
    """A problem the user can fix; the message says where and how."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(QuarkError):
    """The config file is unreadable or does not fit the modules it names."""

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source = source
        self.field = field
        location = f"{source}: {field}: " if field else f"{source}: "
        super().__init__(location + message)


class RunDirError(QuarkError):
    """A run directory is missing, not ours, or damaged."""


class RunLockedError(QuarkError):
    """Another quark process holds the run directory."""

    exit_code = EXIT_LOCKED


class NotSubmittedError(QuarkError):
    """A service refused a job before accepting it (no credentials, wrong ones, unreachable).

    Nothing reached the service, so the job's intent is dropped and the command stops: the run
    directory keeps everything else, and a later ``collect`` submits what was not submitted.
    """


class ServiceAuthError(NotSubmittedError):
    """A service refused our credentials; every call to it fails until the user fixes them.

    A NotSubmittedError too: when it happens at a submission, nothing reached the service.
    """


def describe_os_error(error: BaseException) -> str | None:
    """One line naming the file and what to do, for an operating-system error of ``OS_ERRORS``; else None.

    Nothing is lost by such an error: every write is atomic, so the file keeps its previous content.
    """
    if not isinstance(error, OSError) or error.errno not in OS_ERRORS:
        return None
    return f"{_where(error)}: {OS_ERRORS[error.errno]} (nothing was lost: the files keep their last complete version)"


def describe_path_error(error: BaseException) -> str | None:
    """One line naming the path and what is wrong with it, for an error of ``PATH_ERRORS`` or a
    NotRegularFileError; else None."""
    if isinstance(error, NotRegularFileError):
        return f"{_where(error)}: is a FIFO, socket or device, not a file; check the path"
    if not isinstance(error, OSError) or error.errno not in PATH_ERRORS:
        return None
    return f"{_where(error)}: {PATH_ERRORS[error.errno]}"


def _where(error: OSError) -> str:
    # a rename names the temporary first and its target second: the target is the file that matters
    target = error.filename2 if error.filename2 is not None else error.filename
    return str(target) if target is not None else "a file of the run"
