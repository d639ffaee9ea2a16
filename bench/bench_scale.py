"""Scale: submit, status, collect and report of 1,000, 10,000 and 100,000 stacks, one job each.

A parameter scan: ``latency_modules:Counter -> BatchLatencyDevice`` with N values of its parameter
``n`` (N backlog items, ``repetitions: 1``), every stack stopping at its job on the file-backed
test service with no status latency (``QUARK_BENCH_LATENCY=0``), so the figures are quark-cli's
own cost. The service answers a poll of all jobs in one call (``get_statuses``: its list of
finished jobs), as IBM Quantum's job listing and SLURM's squeue do. (``repetitions`` cannot give N
alone: it stops at 10,000.) Each command is a new process
under ``/usr/bin/time -v`` (wall clock and peak resident memory), the disk settled first:

1. ``quark submit`` (exit 3: every stack waits on its job);
2. ``quark status RUN`` and ``quark status RUN --json``, five times each (the median is the figure);
3. five times (once at 1,000 stacks: ``collect_rounds``): 100 more jobs done, then ``quark collect
   RUN`` (the usual cron pass: a few ready, most waiting; the median is the figure);
4. every job done, then ``quark collect RUN``;
5. ``quark report RUN`` (the plain table, stdout to a file).

Targets: status under 2 s and collect with 100 ready under 2 s at 100,000 stacks, every peak
under 1024 MB, submit and full collect linear (at most about 10x the time per 10x the stacks).

Usage: ``python bench/bench_scale.py [N ...]`` (default 1000 10000 100000).
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import counter_config, env, save, settle_disk, work_dir
from latency_modules import finish_all

from quark_cli.config import MAX_BACKLOG
from quark_cli.config_yaml import MAX_CONFIG_BYTES

SIZES = (1000, 10_000, 100_000)
READY = 100  # jobs done before each "collect with 100 ready" pass
#: Runs of each status and of the collect with READY ready, whose median is the figure: one run of
#: the same collect measured 2.5 to 4.2 s on the machine of 2026-12-01.
ROUNDS = 5
FAST_S = 2.0  # status and collect-with-100-ready at the largest size
PEAK_MB = 1024.0
LINEAR = 12.0  # growth per 10x stacks still called linear (10, plus timing noise)

COMMANDS = ("submit", "status", "status --json", f"collect, {READY} ready", "collect, all ready", "report")


def timed_quark(*args: Any, expect: int, stdout: Any = subprocess.PIPE) -> dict[str, Any]:
    """``quark ARGS`` as a new process under ``/usr/bin/time -v``, the disk settled first.

    Same command and environment as ``common.quark`` (plus no status latency); returns wall
    seconds and peak MB parsed from time's report, the exit code and the captured stdout.
    """
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "quark_cli.cli", *map(str, args)]
    settle_disk()
    done = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env(QUARK_BENCH_LATENCY="0"))
    report, _, _ = done.stderr.rpartition("\tCommand being timed:")
    wall = re.findall(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", done.stderr)
    peak = re.findall(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if not wall or not peak:
        raise RuntimeError(f"{' '.join(command)}: no /usr/bin/time report in its stderr: {done.stderr[-2000:]}")
    if done.returncode != expect:
        shown = " ".join(map(str, args))
        raise RuntimeError(f"quark {shown} exited {done.returncode}, expected {expect}: {report[-2000:]}")
    seconds = 0.0
    for part in wall[-1].split(":"):  # h:mm:ss.ss or m:ss.ss
        seconds = 60 * seconds + float(part)
    peak_mb = round(int(peak[-1]) / 1024, 1)
    return {"wall_s": round(seconds, 2), "peak_mb": peak_mb, "exit": done.returncode, "out": done.stdout}


def collect_rounds(stacks: int) -> int:
    """How many collects with READY ready to time at ``stacks`` stacks: ROUNDS while they finish at
    most a tenth of the stacks (the full collect after them then collects about nine tenths or more
    at every size, and its growth from one size to the next stays a measure of linearity)."""
    return max(1, min(ROUNDS, stacks // (10 * READY)))


def median_of(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell for repeated runs of a command: the median wall time, the largest peak, each run's
    wall time (``samples``) and the last one's output."""
    walls = [cell["wall_s"] for cell in cells]
    return {
        **cells[-1],
        "wall_s": statistics.median(walls),
        "peak_mb": max(c["peak_mb"] for c in cells),
        "samples": walls,
    }


def stack_totals(run_dir: Path) -> dict[str, int]:
    """``stack_totals`` of ``quark status RUN --json`` (untimed)."""
    done = subprocess.run(
        [sys.executable, "-m", "quark_cli.cli", "status", run_dir, "--json"],
        capture_output=True,
        text=True,
        env=env(QUARK_BENCH_LATENCY="0"),
    )
    if done.returncode not in (0, 3):
        raise RuntimeError(f"quark status {run_dir} --json exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)["stack_totals"]


def expect_totals(totals: dict[str, int], when: str, **expected: int) -> None:
    wrong = {key: totals.get(key) for key, value in expected.items() if totals.get(key) != value}
    if wrong:
        raise RuntimeError(f"{when}: status --json stack_totals {totals}, expected {expected}")


def measure(stacks: int, tmp: Path) -> dict[str, dict[str, Any]]:
    config = counter_config(tmp / f"scan-{stacks}.yml", stacks, "BatchLatencyDevice")
    size = config.stat().st_size
    if stacks > MAX_BACKLOG or size > MAX_CONFIG_BYTES:
        raise SystemExit(f"{stacks} backlog items: {size} bytes of config, over quark-cli's limits")
    run = tmp / f"run-{stacks}"
    cells: dict[str, dict[str, Any]] = {}
    cells["submit"] = timed_quark("submit", config, "-o", run, expect=3)
    cells["status"] = median_of([timed_quark("status", run, expect=3) for _ in range(ROUNDS)])
    cells["status --json"] = median_of([timed_quark("status", run, "--json", expect=3) for _ in range(ROUNDS)])
    totals = json.loads(cells["status --json"]["out"])["stack_totals"]
    expect_totals(totals, "after submit", total=stacks, INTERRUPTED=stacks)
    collects = []
    for _ in range(collect_rounds(stacks)):  # cron's passes: each finds the next READY jobs done
        assert finish_all(run, READY) == READY
        collects.append(timed_quark("collect", run, expect=3))
    cells[f"collect, {READY} ready"] = median_of(collects)
    ready = READY * len(collects)
    expect_totals(stack_totals(run), f"after collects with {READY} ready", FINISHED=ready, INTERRUPTED=stacks - ready)
    assert finish_all(run) == stacks - ready
    cells["collect, all ready"] = timed_quark("collect", run, expect=0)
    expect_totals(stack_totals(run), "after collect of every job", total=stacks, FINISHED=stacks, FAILED=0)
    with (tmp / f"report-{stacks}.txt").open("w") as out:
        cells["report"] = timed_quark("report", run, expect=0, stdout=out)
    lines = (tmp / f"report-{stacks}.txt").read_text().count("\n")
    if lines < 2 * stacks:  # a row per stack, and one per item for the mean
        raise RuntimeError(f"quark report {run}: {lines} lines for {stacks} stacks")
    cells["report"]["lines"] = lines
    for cell in cells.values():
        cell.pop("out")
    used_kb = int(subprocess.run(["du", "-sk", run], capture_output=True, text=True, check=True).stdout.split()[0])
    cells["disk"] = {"mb": round(used_kb / 1024, 1), "files": sum(1 for p in run.rglob("*") if p.is_file())}
    return cells


def grid(rows: list[tuple[str, ...]]) -> None:
    """``common.table`` for any number of columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def main(sizes: tuple[int, ...] = SIZES) -> dict:
    sizes = tuple(sorted(sizes))
    start = time.perf_counter()
    results: dict[int, dict[str, dict[str, Any]]] = {}
    with work_dir() as tmp:
        for stacks in sizes:
            results[stacks] = measure(stacks, Path(tmp))
    total_s = time.perf_counter() - start

    pairs = [(small, large) for small, large in zip(sizes, sizes[1:], strict=False) if large == 10 * small]

    def wall(stacks: int, command: str) -> float:
        return max(results[stacks][command]["wall_s"], 0.01)

    growth = {
        command: {f"{large}/{small}": round(wall(large, command) / wall(small, command), 1) for small, large in pairs}
        for command in COMMANDS
    }
    largest = sizes[-1]
    checks: dict[str, bool] = {}
    if largest >= 100_000:
        for command in ("status", "status --json", f"collect, {READY} ready"):
            checks[f"{command} <= {FAST_S:g} s at {largest}"] = results[largest][command]["wall_s"] <= FAST_S
    for command in COMMANDS:
        checks[f"{command} peak <= {PEAK_MB:g} MB"] = all(results[n][command]["peak_mb"] <= PEAK_MB for n in sizes)
    for command in ("submit", "collect, all ready"):
        if growth[command]:
            linear = all(ratio <= LINEAR for ratio in growth[command].values())
            checks[f"{command} linear (growth <= {LINEAR:g} per 10x)"] = linear

    def mark(key: str) -> str:
        return "-" if key not in checks else "ok" if checks[key] else "MISSED"

    def target(command: str) -> str:
        marks = [f"peak <= {PEAK_MB:g} MB " + mark(f"{command} peak <= {PEAK_MB:g} MB")]
        if command in ("status", "status --json", f"collect, {READY} ready"):
            marks.append(f"<= {FAST_S:g} s at 100k " + mark(f"{command} <= {FAST_S:g} s at {largest}"))
        if command in ("submit", "collect, all ready"):
            marks.append("linear " + mark(f"{command} linear (growth <= {LINEAR:g} per 10x)"))
        return "; ".join(marks)

    ratio_columns = [f"x {large // 1000}k/{small // 1000}k" for small, large in pairs]
    rows = [("command", *(f"{n} stacks" for n in sizes), *ratio_columns, "target")]
    for command in COMMANDS:
        rows.append(
            (
                command,
                *(f"{results[n][command]['wall_s']:.2f} s / {results[n][command]['peak_mb']:.0f} MB" for n in sizes),
                *(f"{ratio:.1f}" for ratio in growth[command].values()),
                target(command),
            )
        )
    disk = (f"{results[n]['disk']['mb']:.0f} MB, {results[n]['disk']['files']} files" for n in sizes)
    rows.append(("(run dir on disk)", *disk, *("" for _ in pairs), ""))
    print("scale: Counter -> BatchLatencyDevice, N backlog items x 1 repetition, no status latency; wall s / peak MB")
    grid(rows)
    print(f"whole bench: {total_s:.0f} s")
    figures = {
        "config": "latency_modules:Counter -> BatchLatencyDevice, N values of n (N backlog items), repetitions 1",
        "ready_in_partial_collect": READY,
        "sizes": list(sizes),
        "commands": {command: {str(n): results[n][command] for n in sizes} for command in COMMANDS},
        "run_dir_disk": {str(n): results[n]["disk"] for n in sizes},
        "growth": growth,
        "targets_met": checks,
        "bench_s": round(total_s, 1),
    }
    save("scale", figures)
    return figures


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or SIZES)
