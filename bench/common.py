"""Shared helpers of the benches: configs, timing of real ``quark`` processes, results.json."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results.json"


#: Set by ``make bench``: a folder on the benches' file system where each bench leaves its work
#: folders instead of deleting them; ``make bench`` deletes it once every bench has run.
TRASH_ENV = "QUARK_BENCH_TRASH"


@contextmanager
def work_dir(prefix: str = "quark-bench-") -> Iterator[Path]:
    """A new temporary folder for a bench's runs, gone from its place when the block ends.

    Under ``make bench`` it is moved into ``$QUARK_BENCH_TRASH`` rather than deleted: on ext4 without a
    journal (this machine's disk) every file created in the next minutes near thousands of just-deleted
    ones costs 0.3-0.7 ms instead of 0.02 ms (``bench/README.md``, "Deleted files slow the next
    creations"), so a bench's clean-up would be paid by the benches after it.
    """
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        discard(folder)


def discard(folder: Path) -> None:
    """Delete ``folder``, or under ``make bench`` move it into ``$QUARK_BENCH_TRASH`` (see ``work_dir``)."""
    trash = os.environ.get(TRASH_ENV)
    if trash:
        try:
            os.rename(folder, Path(tempfile.mkdtemp(dir=trash)) / folder.name)
            return
        except OSError as error:  # no such trash, or on another file system: deleted now, and said
            print(f"warning: {folder} not moved into ${TRASH_ENV} ({error}); deleted now", file=sys.stderr)
    shutil.rmtree(folder, ignore_errors=True)


def counter_config(path: Path, items: int, device: str, pending: int = 0) -> Path:
    """Counter -> ``device`` with ``items`` backlog items, plus ``pending`` Counter -> LatencyDevice ones."""
    branches = [f"{{name: {device}, config: {{n: [{', '.join(str(i) for i in range(1, items + 1))}]}}}}"]
    if pending:
        branches.append(f"{{name: LatencyDevice, config: {{n: [{', '.join(str(i) for i in range(1, pending + 1))}]}}}}")
    path.write_text(f"application:\n  module: latency_modules:Counter\n  submodules: [{', '.join(branches)}]\n")
    return path


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(BENCH), "NO_COLOR": "1", **extra}


def quark(*args: Any, check: bool = False, **extra_env: str) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``quark ARGS`` as a user would (a new process); returns (wall seconds, completed)."""
    command = [sys.executable, "-m", "quark_cli.cli", *map(str, args)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env(**extra_env))
    elapsed = time.perf_counter() - start
    if check and done.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr}")
    return elapsed, done


def compile_sources(python: str | os.PathLike = sys.executable) -> None:
    """Write the bytecode of quark-cli and of the benches' modules for ``python``, as an install from
    a wheel has it (QUARK 3's, from PyPI, does), before anything is timed.

    An editable install (``make setup``) leaves it to the first import, and where
    ``PYTHONDONTWRITEBYTECODE`` is set (as on this machine) that never comes: every timed command
    compiled quark-cli's sources again, 0.05-0.09 s of each.
    """
    folders = [REPO / "quark_cli", BENCH / "quark3_pipeline"]
    code = "import compileall, sys; sys.exit(not all(compileall.compile_dir(f, quiet=1) for f in sys.argv[1:]))"
    subprocess.run([str(python), "-c", code, *map(str, folders)], check=True)
    subprocess.run([str(python), "-m", "compileall", "-q", "-l", str(BENCH)], check=True)


def settle_disk(seconds: float = 2.0) -> None:
    """Flush and let the disk go quiet before a timed command.

    Copying or deleting thousands of files leaves the disk busy (writeback, and discards on this
    machine's ext4) for seconds after the command returned; timed at once, the next command pays
    for it: the same collect measured 1.6 s after a pause and 2.3-2.9 s right after a copy.
    """
    os.sync()
    time.sleep(seconds)


def median_of(runs: int, function) -> float:
    return statistics.median(function() for _ in range(runs))


def save(name: str, figures: dict[str, Any]) -> None:
    """Merge one bench's figures into bench/results.json (other benches' keys are kept)."""
    from quark_cli.atomic import atomic_write_json

    try:
        data = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        data = {}
    data["schema_version"] = 1
    data[name] = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures}
    atomic_write_json(RESULTS, data)


def table(rows: list[tuple[str, str, str, str]]) -> None:
    """Print ``(what, quark-cli, baseline, target)`` rows."""
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def floor_ratio(seconds: float, command: str, stacks: int) -> str:
    """``seconds`` as a multiple of the I/O floor of ``command`` (bench_floor.py's latest figures)."""
    from bench_floor import floor_seconds

    try:
        figures = json.loads(RESULTS.read_text())["floor"]
    except (OSError, ValueError, KeyError):
        return "floor not measured (run bench/bench_floor.py)"
    floor = floor_seconds(figures, command, stacks)
    return f"{seconds / floor:.1f}x the floor ({floor:.3f} s)"
