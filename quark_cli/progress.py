"""Progress of ``quark run`` and ``quark collect --wait`` for the person watching.

On a terminal: a live display (spinner, bar, stacks finished / pending / failed, elapsed time, and the
module at work with how long it has been at it, e.g. a QAOA optimisation or a wait for a job). When
the output is not a terminal (a log file, CI): one plain line per stack that changes, and a line now
and then while waiting. With ``--quiet``: nothing. It listens to the engine's callbacks (the engine
itself prints nothing) and writes to stderr, so ``--json`` output on stdout stays clean.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from quark_cli.walk import FAILED, FINISHED

if TYPE_CHECKING:
    from rich.console import Console, Group
    from rich.live import Live

    from quark_cli.summary import Summary

LIVE, LINES, OFF = "live", "lines", "off"
HEARTBEAT_SECONDS = 60.0


def mode_for(console: Console, quiet: bool) -> str:
    """``off`` with --quiet, ``live`` on a terminal, ``lines`` otherwise."""
    if quiet:
        return OFF
    return LIVE if console.is_terminal and not console.is_dumb_terminal else LINES


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """A run's stacks as they change; use as a context manager around the command.

    ``begin`` gives the number of stacks and the statuses already known; the engine then calls
    ``phase`` (a module phase starts), ``stack`` (a stack got a new status) and ``passed`` (one
    collect pass of ``--wait`` ended with stacks still pending).
    """

    def __init__(self, console: Console | None, mode: str, title: str) -> None:
        self.console = console
        self.mode = mode
        self.title = title
        self.total = 0
        self.statuses: dict[str, str] = {}
        self._counts: Counter[str | None] = Counter()
        self.started = time.monotonic()
        self.activity = ""
        self.activity_since = self.started
        self.passes = 0
        self.last_line = self.started
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if self.mode == LIVE:
            from rich.live import Live

            self._live = Live(self, console=self.console, refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._live is not None:
            self.activity = ""
            self._live.__exit__(*exc_info)
            self._live = None

    # -- counts ------------------------------------------------------------------------------------------

    @property
    def finished(self) -> int:
        return self._counts[FINISHED]

    @property
    def failed(self) -> int:
        return self._counts[FAILED]

    def _set(self, stack: str, status: str) -> bool:
        """Record a stack's status, keeping the counts (a line per stack must not recount them all)."""
        before = self.statuses.get(stack)
        if before == status:
            return False
        self._counts[before] -= 1
        self._counts[status] += 1
        self.statuses[stack] = status
        return True

    @property
    def pending(self) -> int:
        return max(0, self.total - self.finished - self.failed)

    def counts_text(self) -> str:
        return f"{self.finished}/{self.total} finished, {self.pending} pending, {self.failed} failed"

    # -- engine callbacks -------------------------------------------------------------------------------

    def begin(self, total: int, statuses: dict[str, str]) -> None:
        self.total = total
        self.statuses = dict(statuses)
        self._counts = Counter(self.statuses.values())
        self._line(f"{self.title}: {self.counts_text()}")

    def phase(self, stack: str, module: str, phase: str) -> None:
        self.activity = f"{stack} {module.rsplit('.', 1)[-1]} {phase}process"
        self.activity_since = time.monotonic()

    def stack(self, stack: str, status: str) -> None:
        changed = self._set(stack, status)
        self.activity = ""
        if changed:
            self._line(f"{stack} {status} ({self.counts_text()})")

    def passed(self, summary: Summary) -> None:
        for stack, status in summary.stacks.items():
            self._set(stack, status)
        self.passes += 1
        if not self.activity.startswith("waiting"):
            self.activity_since = time.monotonic()
        self.activity = f"waiting for the jobs of {self.pending} stack(s); polled {self.passes} time(s)"
        if time.monotonic() - self.last_line >= HEARTBEAT_SECONDS:
            self._line(f"still waiting ({self.counts_text()})")

    # -- output -----------------------------------------------------------------------------------------

    def _line(self, text: str) -> None:
        if self.mode == LINES:
            self.console.print(f"[{_clock(time.monotonic() - self.started)}] {text}", markup=False, highlight=False)
            self.last_line = time.monotonic()

    def __rich__(self) -> Group:
        """The live display: a status line with a bar, then the activity line."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        head = Table.grid(padding=(0, 1))
        done = self.finished + self.failed
        head.add_row(
            Spinner("dots", style="cyan") if done < self.total else Text("✓", style="green"),
            Text(self.title, style="bold"),
            ProgressBar(total=max(self.total, 1), completed=done, width=30),
            Text.assemble(
                (f"{self.finished} finished", "green"),
                ", ",
                (f"{self.pending} pending", "yellow"),
                ", ",
                (f"{self.failed} failed", "red" if self.failed else ""),
                f" of {self.total}",
            ),
            Text(_clock(now - self.started), style="dim"),
        )
        if not self.activity:
            return Group(head)
        activity = Text(f"  {self.activity} ({_clock(now - self.activity_since)})", style="dim")
        return Group(head, activity)
