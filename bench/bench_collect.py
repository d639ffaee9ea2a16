"""``quark collect`` of 1,000 pending jobs that are all done, 50 ms per status call.

quark-cli polls concurrently (``--poll-workers``, default 64); the baseline is the same command
polling one job at a time (``--poll-workers 1``), as QUARK 2's proof of concept did, measured on a
copy of the same run in the same session. Target: under 2 s against ~50 s. quark-cli's figure is
the median of three collects, each of a fresh copy of the run; the one-at-a-time baseline takes
about a minute and runs once. A last row adds the same latency to every result fetch (a result is
a service call too): quark-cli fetches results in the polling threads; one at a time it would be
about twice the baseline, which is not run.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from common import counter_config, floor_ratio, quark, save, settle_disk, table
from latency_modules import finish_all

RUNS = 3


def main(jobs: int = 1000, latency: float = 0.05) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = tmp / "run"
        quark("submit", counter_config(tmp / "c.yml", jobs, "LatencyDevice"), "-o", run, check=True)
        finish_all(run)
        copies = [tmp / f"copy-{i}" for i in range(RUNS)]
        for copy in [*copies, tmp / "baseline"]:
            shutil.copytree(run, copy, symlinks=True)
        runs = []
        for copy in copies:  # each on a fresh copy of the same run, the disk quiet first
            settle_disk()
            seconds, done = quark("collect", copy, check=True, QUARK_BENCH_LATENCY=str(latency))
            assert done.returncode == 0, done.stdout + done.stderr
            runs.append(seconds)
        parallel = statistics.median(runs)
        settle_disk()
        shutil.copytree(run, tmp / "with-results", symlinks=True)
        settle_disk()
        latency_env = {"QUARK_BENCH_LATENCY": str(latency), "QUARK_BENCH_RESULT_LATENCY": str(latency)}
        with_results, done = quark("collect", tmp / "with-results", check=True, **latency_env)
        assert done.returncode == 0, done.stdout + done.stderr
        settle_disk()
        serial, done = quark("collect", tmp / "baseline", "--poll-workers", "1", QUARK_BENCH_LATENCY=str(latency))
        assert done.returncode == 0, done.stdout + done.stderr
    figures = {
        "jobs": jobs,
        "latency_s": latency,
        "collect_parallel_s": round(parallel, 2),
        "collect_parallel_runs_s": [round(seconds, 2) for seconds in runs],
        "collect_one_at_a_time_s": round(serial, 2),
        "collect_with_result_latency_s": round(with_results, 2),
        "speedup": round(serial / parallel, 1),
    }
    table(
        [
            ("what", "quark-cli", "baseline (1 at a time)", "target"),
            (
                f"collect {jobs} done jobs, {latency * 1000:.0f} ms/poll",
                f"{parallel:.2f} s (median of {RUNS}: {min(runs):.2f}..{max(runs):.2f})",
                f"{serial:.1f} s",
                "<= 1.0 s vs ~50 s",
            ),
            (
                f"the same, {latency * 1000:.0f} ms per result fetch too",
                f"{with_results:.2f} s (once)",
                f"(~{2 * serial:.0f} s estimated)",
                "-",
            ),
        ]
    )
    print(f"quark-cli: {floor_ratio(parallel, 'collect', jobs)} (50 ms a poll is not in the floor)")
    save("collect_1000", figures)
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
