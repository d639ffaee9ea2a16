"""A run's ``results.json``: every stack's record as a QUARK 2 style list, one record a line.

``ResultsFile`` is a part of ``quark_cli.state.RunDir`` (which sets the attributes it uses).
"""

from __future__ import annotations

import mmap
import os
import re
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from quark_cli.atomic import FileSpan, atomic_write_bytes, file_stamp, strict_dumps

#: What ``_splice_plan`` searches: the file's bytes, or the file mapped.
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

        One record per line: still a JSON list for QUARK 2 tools, written by the C encoder (an
        indented file of 10,000 records takes the pure-Python one seconds). With ``changed``, only
        those stacks' lines are spliced into the existing file, whose other lines are kept as bytes,
        never parsed: the cost follows the changed stacks, not the thousands that finished before.
        That needs the file exactly as quark wrote it (``results_stamp``, kept with the index's
        digests) and no command killed since: else, as without ``changed``, every record is read.
        ``known`` holds result lines (``result_line``) of changed records the caller already has.
        Returns the records written: all of them, or with ``changed`` only the changed ones read.
        """
        path = self.path / RESULTS_FILE
        stamp = file_stamp(path)
        trusted = stamp is not None and self.index_current(self.read_index_detail()) and self.results_stamp() == stamp
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


def result_line(record: dict[str, Any]) -> bytes:
    """A record as its line of results.json."""
    return strict_dumps(record, separators=(", ", ": ")).encode()


def _results_bytes(lines: list[bytes]) -> bytes:
    return b"[\n" + b",\n".join(lines) + b"\n]\n" if lines else b"[]\n"


_STACK_FIELD = b'"stack": "'
_STACK_KEY = re.compile(r"[0-9]+-r[0-9]+")


#: Unchanged spans of results.json at least this long are copied file to file by the kernel
#: (``copy_file_range``), never read into the process: at 100,000 stacks the file is 120 MB.
KERNEL_COPY_BYTES = 1 << 20


def _splice(path: Path, new: dict[str, bytes]) -> bool:
    """Rewrite results.json at ``path`` with the lines of ``new`` (by stack) replaced or inserted in
    order (``_splice_plan``); False, leaving it as it was, if it does not look like one we wrote.

    The old file is mapped, not read: the binary search touches a few pages, and its long unchanged
    spans go to the new file by ``copy_file_range`` (``atomic.FileSpan``). A file that cannot be
    opened is not spliced (the caller rebuilds it); one that cannot be mapped is read whole. Raises
    OSError when the new file cannot be written.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        if size < len(b"[\n{}\n]\n"):
            return False
        try:
            mapped = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        except OSError:  # a file system that cannot map files
            mapped = None
        with mapped if mapped is not None else nullcontext():
            raw = mapped if mapped is not None else path.read_bytes()
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
    finally:
        os.close(fd)


def _splice_plan(raw: Buffer, new: dict[str, bytes]) -> list[bytes | slice] | None:
    """results.json's content ``raw`` with the lines of ``new`` (by stack) replaced or inserted in
    order, as parts to write one after the other: new lines, and slices of ``raw`` kept as they are.
    None if ``raw`` does not look like a file we wrote where it was searched.

    The file's lines are in stack order, so each stack's place is found by binary search: the cost
    is a few dozen lines parsed per changed stack, however many stacks it holds (a line-by-line
    rebuild took 1.8 s at 100,000).
    """
    if not (raw[:3] == b"[\n{" and raw[-4:] == b"}\n]\n"):
        return None
    end = len(raw) - 3  # the newline after the last line
    parts: list[bytes | slice] = []
    copied, low = 0, 2  # low: the first line's start
    for key in sorted(new, key=_stack_order):
        order = _stack_order(key)
        high = end
        # most changed stacks are neighbours (a collect finishes a block of them): the line at ``low``
        # or the one after it is often the place, found without a search
        for _ in range(2):
            if low >= end:
                break
            stop = raw.find(b"\n", low)
            found = _line_order(raw, low, stop)
            if found is None:
                return None
            if found >= order:
                high = low
                break
            low = stop + 1
        while low < high:  # the first line (start) at or after ``order``
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
        stop = raw.find(b"\n", low) if low < end else end
        if low < end and _line_order(raw, low, stop) == order:  # replaced, its comma kept
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
    at = raw.rfind(_STACK_FIELD, start, stop)
    close = raw.find(b'"', at + len(_STACK_FIELD), stop) if at >= 0 else -1
    key = raw[at + len(_STACK_FIELD) : close].decode(errors="replace") if close >= 0 else ""
    return key if _STACK_KEY.fullmatch(key) else None


def _stack_order(key: str) -> tuple[int, int]:
    """``003-r12`` -> (3, 12): backlog item, then repetition, as numbers."""
    item, _, repetition = key.partition("-r")
    return int(item), int(repetition)
