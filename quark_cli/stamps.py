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
from datetime import UTC, datetime, timedelta
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
    if first is None or last is None or (first.tzinfo is None) != (last.tzinfo is None):
        return Interval(None, unknown=True)
    seconds = (last - first).total_seconds()
    return Interval(seconds) if seconds >= 0 else Interval(None, unknown=True)


def age_seconds(stamp: str | None, now: datetime | None = None) -> float | None:
    """Seconds from ``stamp`` (written by ``now_iso``) to ``now`` (default: the current time); None when
    absent, unreadable or in the future."""
    first = parse_stamp(stamp)
    return None if first is None else interval(first, now or datetime.now(UTC)).seconds


_MICROSECOND = timedelta(microseconds=1)


class AgeClock:
    """``age_seconds`` of many stamps against one ``now`` (default: the current time), quick.

    A sweep's jobs carry tens of thousands of distinct stamps (``now_iso``: milliseconds), which
    differ mostly in their last digits: a stamp in that form (``2026-11-29T18:25:01.123+00:00``) is
    parsed once per second it names, its milliseconds added as a number (100,000 stamps: 0.02 s
    instead of 0.2 s). Any other text takes ``age_seconds``; the answer is the same either way.
    """

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)
        self._seconds: dict[str, int | None] = {}  # "2026-11-29T18:25:01": microseconds from then to now

    def age(self, stamp: Any) -> float | None:
        """Seconds from ``stamp`` to ``now``; None when absent, unreadable or in the future."""
        if (
            isinstance(stamp, str)
            and len(stamp) == 29
            and stamp[10] == "T"
            and stamp[19] == "."
            and stamp.endswith("+00:00")
        ):
            millis = stamp[20:23]
            if millis.isdigit() and millis.isascii():
                second = stamp[:19]
                base = self._seconds.get(second, False)
                if base is False:
                    start = parse_stamp(second + "+00:00")
                    base = self._seconds[second] = None if start is None else (self.now - start) // _MICROSECOND
                if base is not None:
                    micros = base - int(millis) * 1000
                    return micros / 10**6 if micros >= 0 else None
        return age_seconds(stamp, self.now)
