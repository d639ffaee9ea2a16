"""One family of errors, each carrying the exit code the CLI reports for it.

Code below the CLI raises these; the CLI turns them into a one-line message (a traceback only with
``--debug``). Exit codes are part of the user contract and documented in the README.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_PENDING = 3
EXIT_LOCKED = 75


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
