"""``quark collect`` of 1,000 pending jobs that are all done, 50 ms per status call.

quark-cli polls concurrently (``--poll-workers``, default 64); the baseline is the same command
polling one job at a time (``--poll-workers 1``), as QUARK 2's proof of concept did, measured on a
run of the same config in the same session. Target: at most 1.0 s against ~50 s. quark-cli's figure
is the median of three collects, each of a run that its own ``quark submit`` left (as a user's
collect finds it; a copy would have every file changed after its index, which quark then reads);
the one-at-a-time baseline takes about a minute and runs once. A last row adds the same latency to
every result fetch (a result is a service call too): quark-cli fetches results in the polling
threads; one at a time it would be about twice the baseline, which is not run.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from common import counter_config, floor_ratio, quark, save, settle_disk, table, work_dir
from latency_modules import finish_all

RUNS = 3


def main(jobs: int = 1000, latency: float = 0.05) -> dict:
    with work_dir() as tmp:
        tmp = Path(tmp)
        config = counter_config(tmp / "c.yml", jobs, "LatencyDevice")

        def done_run(name: str) -> Path:
            run = tmp / name
            quark("submit", config, "-o", run, check=True)
            finish_all(run)
            return run

        runs = []
        for number in range(RUNS):  # each collect of a run its own submit left, the disk quiet first
            run = done_run(f"run-{number}")
            settle_disk()
            seconds, done = quark("collect", run, check=True, QUARK_BENCH_LATENCY=str(latency))
            assert done.returncode == 0, done.stdout + done.stderr
            runs.append(seconds)
        parallel = statistics.median(runs)
        run = done_run("with-results")
        settle_disk()
        latency_env = {"QUARK_BENCH_LATENCY": str(latency), "QUARK_BENCH_RESULT_LATENCY": str(latency)}
        with_results, done = quark("collect", run, check=True, **latency_env)
        assert done.returncode == 0, done.stdout + done.stderr
        run = done_run("baseline")
        settle_disk()
        serial, done = quark("collect", run, "--poll-workers", "1", QUARK_BENCH_LATENCY=str(latency))
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
