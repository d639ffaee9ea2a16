"""The I/O floor: what the file system and Python's start-up cost on this machine.

Every other bench is read against these figures (``bench/README.md`` derives the floor of submit and
collect from them). Measured here, in one process, on the disk that holds the benches' temporary
folders:

- ``create_write_us``: create, write (1 KB) and close one new file;
- ``rename_us``: rename a written file onto its target (the atomic write's commit);
- ``unlink_us``: remove one file (``--after-delete`` only: files created in the minutes after a
  deletion near them are slower, and ``make bench`` times others after this one; bench/README.md);
- ``mkdir_us``: make one folder;
- ``rewrite_us``: rewrite an existing 1 KB file in place (open, ``flock``, ``pwrite``, close): what
  the journal (``quark_cli.journal``) does for a record or job file instead of a new file;
- ``segment_us``: one journal segment of 128 such files (about 140 KB): written, fsynced, renamed
  into place, its folder fsynced;
- ``fsync_us``: fsync one freshly written 1 KB file (what a per-file durable write pays);
- ``syncfs_<n>_us``: one ``syncfs`` after writing ``n`` new files (what a group commit pays per batch);
- ``read_us``: open, read and close one 1 KB file (a cold-ish cache: files just written);
- ``json_dumps_us`` / ``json_loads_us``: encode or decode one 1 KB job file;
- ``python_s``: ``python -c pass``, ``python -S -c pass`` and ``python -c "import typer, rich"``
  as new processes (the floor of any ``quark`` command), median of 11;
- ``submit_1000_floor_s`` / ``collect_1000_floor_s``: the floor of a submit or collect of 1,000
  stacks of one job each (``floor_seconds``), which the benches report their figures against.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import save, work_dir

FILES = 2000
PAYLOAD = json.dumps({"key": "000-r1-App.Device-pre", "info": {"id": "x" * 32}, "pad": "y" * 800}).encode()


def _per_item_us(start: float, count: int) -> float:
    return round((time.perf_counter() - start) / count * 1e6, 1)


def _syncfs(root: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(root, os.O_RDONLY)
    try:
        libc.syncfs(fd)
    finally:
        os.close(fd)


def file_costs(root: Path) -> dict[str, float]:
    """Per-file costs in microseconds (µs), each over ``FILES`` files."""
    figures: dict[str, float] = {}
    os.sync()
    temps = [str(root / f"t{i}.tmp") for i in range(FILES)]
    targets = [str(root / f"f{i}.json") for i in range(FILES)]
    start = time.perf_counter()
    for path in temps:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, PAYLOAD)
        os.close(fd)
    figures["create_write_us"] = _per_item_us(start, FILES)
    start = time.perf_counter()
    for temp, target in zip(temps, targets, strict=True):
        os.replace(temp, target)
    figures["rename_us"] = _per_item_us(start, FILES)
    start = time.perf_counter()
    for path in targets:
        with open(path, "rb") as handle:
            handle.read()
    figures["read_us"] = _per_item_us(start, FILES)
    start = time.perf_counter()
    for path in targets:
        fd = os.open(path, os.O_WRONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.pwrite(fd, PAYLOAD, 0)
        os.close(fd)
    figures["rewrite_us"] = _per_item_us(start, FILES)
    segment = json.dumps({"writes": [{"path": "records/000-r1.json", "content": PAYLOAD.decode()}] * 128}).encode()
    start = time.perf_counter()
    for i in range(20):
        temp, final = root / f".{i}.segment.tmp", root / f"{i}.segment"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, segment)
        os.fsync(fd)
        os.close(fd)
        os.replace(temp, final)
        fd = os.open(root, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    figures["segment_us"] = _per_item_us(start, 20)
    start = time.perf_counter()
    for i in range(FILES // 4):
        os.mkdir(root / f"d{i}", 0o700)
    figures[MKDIR_US] = _per_item_us(start, FILES // 4)
    os.sync()
    count = 200
    start = time.perf_counter()
    for i in range(count):
        fd = os.open(str(root / f"s{i}"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, PAYLOAD)
        os.fsync(fd)
        os.close(fd)
    figures["fsync_us"] = round(_per_item_us(start, count) - figures["create_write_us"], 1)
    for batch in (1, 128, 1000):
        os.sync()
        runs = []
        for repeat in range(5):
            for i in range(batch):
                fd = os.open(str(root / f"b{repeat}-{i}"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.write(fd, PAYLOAD)
                os.close(fd)
            start = time.perf_counter()
            _syncfs(str(root))
            runs.append(time.perf_counter() - start)
        figures[f"syncfs_{batch}_us"] = round(statistics.median(runs) * 1e6, 1)
    document = json.loads(PAYLOAD)
    start = time.perf_counter()
    for _ in range(FILES):
        json.dumps(document, separators=(",", ":"))
    figures["json_dumps_us"] = _per_item_us(start, FILES)
    start = time.perf_counter()
    for _ in range(FILES):
        json.loads(PAYLOAD)
    figures["json_loads_us"] = _per_item_us(start, FILES)
    return figures


def creation_after_delete(root: Path, deleted: int = 5000, created: int = 1000) -> dict[str, float]:
    """Microseconds to create, write and close a file: in a new folder first, then in another new
    folder beside one whose ``deleted`` files were just removed; and ``unlink_us``, the removal of one
    of those (``python bench_floor.py --after-delete``, not part of ``make bench``: its deletion
    slows what is timed in the minutes after it, this bench's clean-up included)."""

    def create(folder: Path) -> float:
        folder.mkdir()
        start = time.perf_counter()
        for i in range(created):
            fd = os.open(folder / f"f{i}.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, PAYLOAD)
            os.close(fd)
        return _per_item_us(start, created)

    quiet = create(root / "before")
    old = root / "old"
    old.mkdir()
    for i in range(deleted):
        (old / f"{i}.json").write_bytes(PAYLOAD)
    os.sync()
    start = time.perf_counter()
    shutil.rmtree(old)
    unlink = _per_item_us(start, deleted)
    os.sync()
    time.sleep(2)  # ext4 takes an inode freed in this very second as not recently freed
    return {
        "create_quiet_us": quiet,
        "unlink_us": unlink,
        f"create_after_{deleted}_deleted_us": create(root / "after"),
    }


def start_up() -> dict[str, float]:
    """Seconds to start a new Python process: bare, without site, and importing typer and rich."""
    figures = {}
    for name, argv in (
        ("python_s", [sys.executable, "-c", "pass"]),
        ("python_no_site_s", [sys.executable, "-S", "-c", "pass"]),
        ("import_typer_rich_s", [sys.executable, "-c", "import typer, rich"]),
    ):
        runs = []
        for _ in range(11):
            start = time.perf_counter()
            subprocess.run(argv, check=True)
            runs.append(time.perf_counter() - start)
        figures[name] = round(statistics.median(runs), 4)
    return figures


#: What a crash-safe submit and collect must do per stack (one job each); see bench/README.md.
PER_STACK = {
    # the intent (a new job file, durable in its journal segment before the service is called); the
    # service's id (the same file rewritten in place); the stack's record (new)
    "submit": {"mkdir": 0, "new_files": 2, "rewrites": 1},
    # the job's final status and the stack's record, both rewritten in place
    "collect": {"mkdir": 0, "new_files": 0, "rewrites": 2},
}
MKDIR_US = "mkdir_us"


def floor_seconds(figures: dict[str, float], command: str, stacks: int, batch: int = 128) -> float:
    """The least time ``command`` (submit or collect) of ``stacks`` stacks can take on this disk, in
    seconds: Python's start-up with typer and rich; each new file written and renamed into place,
    each rewrite, each folder made; one journal segment per ``batch`` files; one syncfs at the end."""
    work = PER_STACK[command]
    per_new_file = figures["create_write_us"] + figures["rename_us"]
    files_us = stacks * (
        work["new_files"] * per_new_file + work["rewrites"] * figures["rewrite_us"] + work["mkdir"] * figures[MKDIR_US]
    )
    segments = -(-stacks * (work["new_files"] + work["rewrites"]) // batch)
    return (
        figures["import_typer_rich_s"] + (files_us + segments * figures["segment_us"] + figures["syncfs_1000_us"]) / 1e6
    )


def main() -> dict:
    with work_dir() as tmp:
        figures = {**file_costs(Path(tmp)), **start_up()}
    for command in PER_STACK:
        figures[f"{command}_1000_floor_s"] = round(floor_seconds(figures, command, 1000), 3)
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"  {name:<{width}}  {value}")
    save("floor", figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--after-delete", action="store_true", help="only time file creation right after a deletion (not saved)"
    )
    if parser.parse_args().after_delete:
        with work_dir() as tmp:
            for name, value in creation_after_delete(tmp).items():
                print(f"  {name}  {value}")
    else:
        main()
