"""Which record and job files of a run changed after a time: one ``stat`` a file, in a process of its own.

``IndexEdits.changed_since_index`` (``quark_cli.index_edits``) uses ``scan`` to find files edited
by hand after the index was written. At 100,000 stacks that is 200,000 ``stat`` calls, 0.5-0.7 s
of system time on this project's machines, done while the command parses its index: on a large
run the scan runs as this file, a script (``python -I -S edit_scan.py RECORDS JOBS AFTER_NS``,
either folder "" for none) that needs nothing but the standard library, so it starts in about
15 ms and uses another core.
A thread would not do: the index parse holds the GIL for a quarter of a second at a time.

The script writes its answer to stdout as NUL-separated names, each behind a one-letter tag:
``R`` a record changed, ``J`` a job file, ``C`` a job file changed.
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext


def scan(records_dir: str | None, jobs_dir: str | None, after_ns: int) -> tuple[list[str], list[str], list[str]]:
    """``(records changed, job files, job files changed)``: the names (``<key>.json``) in
    ``records_dir`` and ``jobs_dir`` whose change time (``st_ctime_ns``, in ns) is later than
    ``after_ns``, and every ``.json`` name in ``jobs_dir`` (a folder given as None or "" has none). Names starting
    with a dot (our temporary files) are left out; a missing folder has none. OSError if a folder
    cannot be read."""
    records, job_files, jobs = [], [], []
    try:
        with os.scandir(records_dir) if records_dir else nullcontext(()) as entries:
            for entry in entries:
                name = entry.name
                if name.endswith(".json") and not name.startswith(".") and entry.stat().st_ctime_ns > after_ns:
                    records.append(name)
    except FileNotFoundError:
        pass
    try:
        with os.scandir(jobs_dir) if jobs_dir else nullcontext(()) as entries:
            for entry in entries:
                name = entry.name
                if not name.endswith(".json") or name.startswith("."):  # a backend's job folder: half the entries
                    continue
                job_files.append(name)
                if entry.stat().st_ctime_ns > after_ns:
                    jobs.append(name)
    except FileNotFoundError:
        pass
    return records, job_files, jobs


def encode(found: tuple[list[str], list[str], list[str]]) -> bytes:
    """``scan``'s answer as the script writes it (names as the file system has them)."""
    records, job_files, jobs = found
    changed = set(jobs)
    parts = [b"R" + os.fsencode(name) for name in records]
    parts += [(b"C" if name in changed else b"J") + os.fsencode(name) for name in job_files]
    return b"\0".join(parts)


def decode(raw: bytes) -> tuple[list[str], list[str], list[str]]:
    """``scan``'s answer out of what the script wrote. ValueError if a part has no known tag."""
    records, job_files, jobs = [], [], []
    for part in raw.split(b"\0") if raw else ():
        tag, name = part[:1], os.fsdecode(part[1:])
        if tag == b"R":
            records.append(name)
        elif tag in (b"J", b"C"):
            job_files.append(name)
            if tag == b"C":
                jobs.append(name)
        else:
            raise ValueError(f"edit scan: unknown part {part[:40]!r}")
    return records, job_files, jobs


if __name__ == "__main__":
    sys.stdout.buffer.write(encode(scan(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
