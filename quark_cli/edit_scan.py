"""Which record and job files of a run changed after a time: one ``stat`` a file, in a process of its own.

``IndexEdits.changed_since_index`` (``quark_cli.index_edits``) uses ``scan`` to find files edited
by hand after the index was written. At 100,000 stacks that is 200,000 ``stat`` calls, 0.5-0.7 s
of system time on this project's machines, done while the command parses its index: on a large
run the scan runs as this file, a script (``python -I -S edit_scan.py RECORDS JOBS AFTER_NS
LISTED_NS``, either folder "" for none, LISTED_NS -1 for none) that needs nothing but the standard
library, so it starts in about 15 ms and uses another core.
A thread would not do: the index parse holds the GIL for a quarter of a second at a time.

The script writes its answer to stdout as NUL-separated names, each behind a one-letter tag:
``R`` a record changed, ``J`` a job file, ``C`` a job file changed; a lone ``U`` says that the job
files' folder still has the change time LISTED_NS, at which the last command saw every job file it
indexed there (``IndexEdits.vouch_job_names``): no name was added or removed since, so the others
are not listed. The answer then says only what changed: at 100,000 stacks the names of every job
file took the command 0.1 s to read.
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext


def scan(
    records_dir: str | None, jobs_dir: str | None, after_ns: int, listed_ns: int | None = None
) -> tuple[list[str], list[str] | None, list[str]]:
    """``(records changed, job files, job files changed)``: the names (``<key>.json``) in
    ``records_dir`` and ``jobs_dir`` whose change time (``st_ctime_ns``, in ns) is later than
    ``after_ns``, and every ``.json`` name in ``jobs_dir``, or None for those if that folder's own
    change time is still ``listed_ns`` (no name added or removed since: a change time cannot be set
    back, as a modification time can). A folder given as None or "" has none. Names starting with a
    dot (our temporary files) are left out; a missing folder has none. OSError if a folder cannot be
    read."""
    records: list[str] = []
    job_files: list[str] | None = []
    jobs: list[str] = []
    try:
        with os.scandir(records_dir) if records_dir else nullcontext(()) as entries:
            for entry in entries:
                name = entry.name
                if name.endswith(".json") and not name.startswith(".") and _changed(entry, after_ns):
                    records.append(name)
    except FileNotFoundError:
        pass
    try:
        if jobs_dir and listed_ns is not None and os.stat(jobs_dir).st_ctime_ns == listed_ns:
            job_files = None
        with os.scandir(jobs_dir) if jobs_dir else nullcontext(()) as entries:
            for entry in entries:
                name = entry.name
                if not name.endswith(".json") or name.startswith("."):  # a backend's job folder: half the entries
                    continue
                if job_files is not None:
                    job_files.append(name)
                if _changed(entry, after_ns):
                    jobs.append(name)
    except FileNotFoundError:
        pass
    return records, job_files, jobs


def _changed(entry: os.DirEntry, after_ns: int) -> bool:
    """True if the entry changed after ``after_ns`` (ns): its file's change time, and for a link its
    own too (a link put in a file's place, even to an old file, is a change). One that cannot be
    looked at (gone while the scan ran, a link in a loop) counts as changed: the command reads it,
    and says what is wrong with it."""
    try:
        if entry.stat().st_ctime_ns > after_ns:
            return True
        return entry.is_symlink() and entry.stat(follow_symlinks=False).st_ctime_ns > after_ns
    except OSError:
        return True


def encode(found: tuple[list[str], list[str] | None, list[str]]) -> bytes:
    """``scan``'s answer as the script writes it (names as the file system has them)."""
    records, job_files, jobs = found
    parts = [b"R" + os.fsencode(name) for name in records]
    if job_files is None:
        parts.append(b"U")
        parts += [b"C" + os.fsencode(name) for name in jobs]
    else:
        changed = set(jobs)
        parts += [(b"C" if name in changed else b"J") + os.fsencode(name) for name in job_files]
    return b"\0".join(parts)


def decode(raw: bytes) -> tuple[list[str], list[str] | None, list[str]]:
    """``scan``'s answer out of what the script wrote. ValueError if a part has no known tag."""
    records: list[str] = []
    job_files: list[str] = []
    jobs: list[str] = []
    listed = True
    for part in raw.split(b"\0") if raw else ():
        tag, name = part[:1], os.fsdecode(part[1:])
        if tag == b"R":
            records.append(name)
        elif tag == b"U" and not name:
            listed = False
        elif tag in (b"J", b"C"):
            if listed:
                job_files.append(name)
            if tag == b"C":
                jobs.append(name)
        else:
            raise ValueError(f"edit scan: unknown part {part[:40]!r}")
    return records, job_files if listed else None, jobs


if __name__ == "__main__":
    listed = int(sys.argv[4])
    sys.stdout.buffer.write(encode(scan(sys.argv[1], sys.argv[2], int(sys.argv[3]), None if listed < 0 else listed)))
