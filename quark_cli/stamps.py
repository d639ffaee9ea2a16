"""Timestamps that cross processes, and the intervals between them.

A duration inside one process comes from a monotonic clock (``time.perf_counter`` or
``time.monotonic``), never from two wall-clock readings: a clock stepped by NTP or by hand moves
those. Stamps are for what crosses processes (a job submitted by one command and seen finished
by a later one) and are written in UTC with their offset (``2026-11-29T18:25:01.123+00:00``).

An interval between two stamps is only as good as the clocks that wrote them. One that comes
out negative, or whose stamps cannot be ordered (one with a zone and one without, or unreadable),
is *unknown*: ``Interval.seconds`` is None and ``Interval.unknown`` says why it is missing, so
reports show ``-`` and count it instead of a 0 that looks measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def now_iso(timespec: str = "milliseconds") -> str:
    """The wall-clock time in UTC as ISO 8601 with offset: sortable and unambiguous across machines."""
    return datetime.now(UTC).isoformat(timespec=timespec)


def parse_stamp(text: Any) -> datetime | None:
    """An ISO 8601 stamp as a datetime (aware when the text has an offset), or None when not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Interval:
    """Seconds from one stamp to another; None when a stamp is absent or the interval is unknown.

    ``unknown`` is True when both stamps were given but give no duration: the end comes before the
    start (a clock was stepped back, or two clocks disagree), or they cannot be compared.
    """

    seconds: float | None
    unknown: bool = False


def interval(start: Any, end: Any) -> Interval:
    """The interval between two stamps (ISO 8601 texts or datetimes); see ``Interval``."""
    if start in (None, "") or end in (None, ""):
        return Interval(None)
    first = start if isinstance(start, datetime) else parse_stamp(start)
    last = end if isinstance(end, datetime) else parse_stamp(end)
    seconds = None if first is None or last is None else _elapsed(first, last)
    return Interval(seconds) if seconds is not None else Interval(None, unknown=True)


def age_seconds(stamp: str | None, now: datetime | None = None) -> float | None:
    """Seconds from ``stamp`` (written by ``now_iso``) to ``now`` (default: the current time); None when
    absent, unreadable, in the future or not comparable (as ``interval``, without its object: ``status``
    asks for the ages of 100,000 jobs)."""
    first = parse_stamp(stamp)
    return None if first is None else _elapsed(first, now or datetime.now(UTC))


def _elapsed(first: datetime, last: datetime) -> float | None:
    """Seconds from ``first`` to ``last``; None if they cannot be compared (one with a zone, one
    without) or ``last`` comes first."""
    if (first.tzinfo is None) != (last.tzinfo is None):
        return None
    seconds = (last - first).total_seconds()
    return seconds if seconds >= 0 else None
