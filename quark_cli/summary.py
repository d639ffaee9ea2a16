"""What a pass over a run saw: the stacks' statuses after it and what changed, and the job states
the engine groups by."""

from __future__ import annotations

from dataclasses import dataclass, field

from quark_cli.jobs.base import AsyncStatus
from quark_cli.walk import FAILED, FINISHED

PENDING_JOB_STATES = {AsyncStatus.SUBMITTED.value, AsyncStatus.RUNNING.value}
FAILED_JOB_STATES = {AsyncStatus.FAILED.value, AsyncStatus.CANCELLED.value}
FINAL_JOB_STATES = {status.value for status in AsyncStatus if status.is_final}
#: A job in one of these states needs nothing from a walk of its stack.
LIVE_JOB_STATES = PENDING_JOB_STATES | {AsyncStatus.DONE.value}
CLOSED = {FINISHED, FAILED}


@dataclass
class Summary:
    """What one command did to a run: stack counts after it and what changed during it."""

    stacks: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    uncertain: list[str] = field(default_factory=list)
    #: The stack a ``failfast`` pass stopped at, if it stopped early.
    stopped_at: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for value in self.stacks.values() if value == status)

    @property
    def pending(self) -> int:
        return sum(1 for value in self.stacks.values() if value != FINISHED and value != FAILED)
