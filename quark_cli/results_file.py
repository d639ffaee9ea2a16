"""A run's ``results.json``: every stack's record as a QUARK 2 style list, one record a line.

``ResultsFile`` is a part of ``quark_cli.state.RunDir`` (which sets the attributes it uses).
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from quark_cli.atomic import FileSpan, atomic_write_bytes, file_stamp, json_bytes
from quark_cli.disk import open_regular
from quark_cli.errors import RunDirError
from quark_cli.schema import parse_trusted

#: What ``_places`` searches: the file's bytes, or the file mapped.
Buffer = bytes | mmap.mmap

RESULTS_FILE = "results.json"


class ResultsFile:
    """The results part of ``RunDir``: rebuilding ``results.json`` from what changed."""

    path: Path
    fresh: bool
    #: ``atomic.file_stamp`` of results.json as this object last wrote it (None: not written by this command).
    results_written: str | None

    def rebuild_results(
        self, changed: set[str] | None = None, known: dict[str, bytes] | None = None
    ) -> list[dict[str, Any]]:
        """Write ``results.json``: the records as a QUARK 2 style list, by backlog item and repetition.

        One record per line, compact (``result_line``): still a JSON list for QUARK 2 tools, and
        each line the bytes of its record's file (an indented file of 10,000 records took the
        pure-Python encoder seconds). With ``changed``, only
        those stacks' lines are spliced into the existing file, whose other lines are kept as bytes,
        never parsed: the cost follows the changed stacks, not the thousands that finished before.
        That needs the file exactly as quark wrote it (``results_stamp``, kept with the index's
        digests) and no command killed since: else, as without ``changed``, every record is read.
        ``known`` holds result lines (``result_line``) of changed records the caller already has.
        Returns the records written: all of them, or with ``changed`` only the changed ones read.
        """
        path = self.path / RESULTS_FILE
        trusted = self._results_trusted(path)
        if changed is not None and not changed and trusted:
            return []
        if changed is not None:
            known = known or {}
            records = [r for r in (self.read_record(key) for key in changed if key not in known) if r]
            new = {key: known[key] for key in changed if key in known}
            new.update((record["stack"], result_line(record)) for record in records)
            if self.fresh and not path.exists():  # made by this command: the changed records are all
                atomic_write_bytes(path, _results_bytes([new[key] for key in sorted(new, key=_stack_order)]))
                written = True
            else:
                written = trusted and _splice(path, new)
            if written:
                self.results_written = file_stamp(path)
                return records
        results = sorted(
            self.read_records().values(),
            key=lambda r: (r.get("benchmark_backlog_item_number", 0), r.get("repetition", 0)),
        )
        atomic_write_bytes(path, _results_bytes([result_line(record) for record in results]))
        self.results_written = file_stamp(path)
        return results

    def saved_records(self, keys: Collection[str]) -> dict[str, dict[str, Any]]:
        """The records of the stacks ``keys`` read from results.json, by stack, while it is the file
        quark last wrote and no command has changed the run since (the index is current): each line
        then holds what its record's file held when the index was written. So ``keys`` must leave
        out the stacks whose files changed after that (``changed_since_index``).

        {} when results.json is not so; a stack without a line, or whose line is not a record we
        would read (``schema.parse_trusted``), is left out for the caller to read from its file.
        One file, whose lines are found by binary search, instead of a file a stack: a cron collect
        minutes after the submit finds the records' files paged out (this machine's kernel pages
        out what was not used for a minute), and reading 1,000 of them took 0.13 s against 0.05 s
        cached.
        """
        path = self.path / RESULTS_FILE
        if not keys or not self._results_trusted(path):
            return {}
        found: dict[str, dict[str, Any]] = {}
        with _mapped(path) as opened:
            if opened is None:
                return {}
            raw = opened[1]
            places = _places(raw, keys)
            if places is None:  # not a file we wrote after all: every record from its file
                return {}
            for key, start, stop, there in places:
                if not there:
                    continue
                line = raw[start : stop - 1 if raw[stop - 1] == ord(",") else stop]
                try:
                    found[key] = parse_trusted(self.record_file(key), line, "record")
                except (RunDirError, ValueError):  # not a record, or not UTF-8: its file says what it is
                    continue
        return found

    def _results_trusted(self, path: Path) -> bool:
        """True if results.json at ``path`` is the file as quark last wrote it and the index is current."""
        stamp = file_stamp(path)
        return stamp is not None and self.index_current(self.read_index_detail()) and self.results_stamp() == stamp


def result_line(record: dict[str, Any]) -> bytes:
    """A record as its line of results.json: compact JSON, the bytes of the record's own file but
    its newline (``StackFiles.write_record``), so that a collect serialises each record once."""
    return json_bytes(record, compact=True)[:-1]


def _results_bytes(lines: list[bytes]) -> bytes:
    return b"[\n" + b",\n".join(lines) + b"\n]\n" if lines else b"[]\n"


#: A record's own stack field as its line has it: compact, or (lines of quark-cli before 2026-11-30) spaced.
_STACK_FIELDS = (b'"stack":"', b'"stack": "')
_STACK_KEY = re.compile(r"[0-9]+-r[0-9]+")


#: Unchanged spans of results.json at least this long are copied file to file by the kernel
#: (``copy_file_range``), never read into the process: at 100,000 stacks the file is 120 MB.
KERNEL_COPY_BYTES = 1 << 20


def _splice(path: Path, new: dict[str, bytes]) -> bool:
    """Rewrite results.json at ``path`` with the lines of ``new`` (by stack) replaced or inserted in
    order (``_splice_plan``); False, leaving it as it was, if it does not look like one we wrote.

    The old file is mapped, not read: the binary search touches a few pages, and its long unchanged
    spans go to the new file by ``copy_file_range`` (``atomic.FileSpan``). A file that cannot be
    opened is not spliced (the caller rebuilds it). Raises OSError when the new file cannot be written.
    """
    with _mapped(path) as opened:
        if opened is None:
            return False
        fd, raw = opened
        plan = _splice_plan(raw, new)
        if plan is None:
            return False
        parts: list[bytes | FileSpan] = []
        for part in plan:
            if isinstance(part, bytes):
                parts.append(part)
            elif part.stop - part.start >= KERNEL_COPY_BYTES:
                parts.append(FileSpan(fd, part.start, part.stop - part.start))
            else:
                parts.append(raw[part])
        atomic_write_bytes(path, parts)
    return True


@contextmanager
def _mapped(path: Path) -> Iterator[tuple[int, Buffer] | None]:
    """results.json at ``path``, open and mapped (read whole where it cannot be mapped): ``(its file
    descriptor, its content)``, or None if it cannot be opened or is too short to hold a record."""
    try:
        fd = open_regular(path)  # a FIFO put in its place does not hang us
    except OSError:
        yield None
        return
    try:
        if os.fstat(fd).st_size < len(b"[\n{}\n]\n"):
            yield None
            return
        try:
            mapped = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        except OSError:  # a file system that cannot map files
            mapped = None
        with mapped if mapped is not None else nullcontext():
            yield fd, mapped if mapped is not None else path.read_bytes()
    finally:
        os.close(fd)


def _splice_plan(raw: Buffer, new: dict[str, bytes]) -> list[bytes | slice] | None:
    """results.json's content ``raw`` with the lines of ``new`` (by stack) replaced or inserted in
    order, as parts to write one after the other: new lines, and slices of ``raw`` kept as they are.
    None if ``raw`` does not look like a file we wrote where it was searched (``_places``).
    """
    places = _places(raw, new)
    if places is None:
        return None
    end = len(raw) - 3  # the newline after the last line
    parts: list[bytes | slice] = []
    copied = 0
    for key, low, stop, there in places:
        if there:  # replaced, its comma kept
            parts += (slice(copied, low), new[key], b"," if raw[stop - 1] == ord(",") else b"")
            copied = stop
        elif low < end:  # inserted before the line at ``low``
            parts += (slice(copied, low), new[key], b",\n")
            copied = low
        else:  # after the last line
            parts += (slice(copied, end), b",\n", new[key])
            copied = end
    parts.append(slice(copied, len(raw)))
    return parts


def _places(raw: Buffer, keys: Iterable[str]) -> list[tuple[str, int, int, bool]] | None:
    """Where the lines of the stacks ``keys`` are in results.json's content ``raw``, in stack order:
    ``(key, start, stop, there)``. With ``there`` the key's line is ``raw[start:stop]`` (its comma
    included, if any); else its line belongs before the line starting at ``start``, or after the last
    line when ``start`` is the end. None if ``raw`` does not look like a file we wrote where it was
    searched.

    The file's lines are in stack order, so each stack's place is found by binary search
    (``_seek_line``): the cost is a few dozen lines parsed per stack, however many stacks it holds
    (a line-by-line rebuild took 1.8 s at 100,000).
    """
    if not (raw[:3] == b"[\n{" and raw[-4:] == b"}\n]\n"):
        return None
    end = len(raw) - 3  # the newline after the last line
    places = []
    low = 2  # the first line's start
    for key in sorted(keys, key=_stack_order):
        order = _stack_order(key)
        seek = _seek_line(raw, order, low, end)
        if seek is None:
            return None
        low = seek
        stop = raw.find(b"\n", low) if low < end else end
        places.append((key, low, stop, low < end and _line_order(raw, low, stop) == order))
    return places


def _seek_line(raw: Buffer, order: tuple[int, int], low: int, end: int) -> int | None:
    """The start of the first line of ``raw[low:end]`` whose stack comes at or after ``order`` (``end``
    if none does); None if a line looked at is not a record line. Lines are in stack order, so it is
    a binary search; most stacks looked up are neighbours (a collect finishes a block of them), so
    the line at ``low`` or the one after it is tried first."""
    high = end
    for _ in range(2):
        if low >= end:
            return low
        stop = raw.find(b"\n", low)
        found = _line_order(raw, low, stop)
        if found is None:
            return None
        if found >= order:
            return low
        low = stop + 1
    while low < high:
        middle = (low + high) // 2
        start = raw.rfind(b"\n", 0, middle) + 1
        stop = raw.find(b"\n", middle)
        found = _line_order(raw, start, stop)
        if found is None:
            return None
        if found < order:
            low = stop + 1
        else:
            high = start
    return low


def _line_order(raw: Buffer, start: int, stop: int) -> tuple[int, int] | None:
    """(backlog item, repetition) of the record line ``raw[start:stop]``; None if it is not one."""
    key = _line_key(raw, start, stop)
    return None if key is None else _stack_order(key)


def _line_key(raw: Buffer, start: int, stop: int) -> str | None:
    """The stack of the record line ``raw[start:stop]`` (a trailing comma allowed); None if it is not one.

    The record's own ``"stack": "`` is the last in the line: the modules' fields come before it and
    may hold a ``stack`` of their own, the fields after it hold none, and a quote inside a string is
    escaped.
    """
    if stop <= start or raw[start] != ord("{") or raw[stop - 1] not in b"},":
        return None
    for field in _STACK_FIELDS:  # a line is all compact or all spaced: one encoder wrote it
        at = raw.rfind(field, start, stop)
        if at >= 0:
            break
    close = raw.find(b'"', at + len(field), stop) if at >= 0 else -1
    key = raw[at + len(field) : close].decode(errors="replace") if close >= 0 else ""
    return key if _STACK_KEY.fullmatch(key) else None


def _stack_order(key: str) -> tuple[int, int]:
    """``003-r12`` -> (3, 12): backlog item, then repetition, as numbers."""
    item, _, repetition = key.partition("-r")
    return int(item), int(repetition)
