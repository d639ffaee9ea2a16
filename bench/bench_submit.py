"""``quark submit`` of 1,000 jobs: to the local async backend, and to a service with 50 ms per submission.

Local: 1,000 stacks GHZ(2 qubits) -> GHZCircuit -> LocalAsyncSampler, each submitting one job; the
detached runner starts executing them while the submission goes on, as it does for a user.

Remote: 1,000 stacks Counter -> LatencyDevice (``latency_modules``), each submission waiting 50 ms
like a round trip to a service (target: under 3 s; one at a time it is 50 s). The baseline is the
same submit with ``--submit-workers 1`` on 100 stacks, scaled to 1,000.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from common import REPO, counter_config, floor_ratio, quark, save, settle_disk, table, work_dir

sys.path.insert(0, str(REPO / "tests"))
from test_local_jobs import kill_processes_of  # noqa: E402


def main(jobs: int = 1000) -> dict:
    with work_dir() as tmp:
        tmp = Path(tmp)
        config = tmp / "ghz.yml"
        config.write_text(
            "application:\n  name: GHZ\n  config: {n_qubits: [2]}\n  submodules:\n"
            "    - name: GHZCircuit\n      submodules: [{name: LocalAsyncSampler, config: {shots: [100]}}]\n"
            f"repetitions: {jobs}\n"
        )
        run = tmp / "run"
        try:
            settle_disk()
            elapsed, done = quark("submit", config, "-o", run, check=True)
            submitted = len(list(run.glob("jobs/*/local.json")))
            deadline = time.monotonic() + 600
            _, final = quark("collect", run, "--wait", "--timeout", "600", check=True)
            finished_s = time.monotonic() - deadline + 600
        finally:
            kill_processes_of((run / "jobs").resolve())
    figures = {
        "jobs": jobs,
        "submit_s": round(elapsed, 2),
        "per_job_ms": round(1000 * elapsed / jobs, 2),
        "jobs_submitted": submitted,
        "collect_wait_after_submit_s": round(finished_s, 1),
        "collect_exit": final.returncode,
    }
    table(
        [
            ("what", "quark-cli", "baseline", "target"),
            (f"submit {jobs} local jobs", f"{elapsed:.2f} s ({1000 * elapsed / jobs:.1f} ms/job)", "-", "< 10 s"),
            ("(then) collect --wait until all done", f"{finished_s:.1f} s", "-", "-"),
        ]
    )
    save("submit_local_1000", figures)
    return figures


def remote(jobs: int = 1000, latency: float = 0.05, runs: int = 3) -> dict:
    """Submit ``jobs`` stacks to the latency service, median of ``runs``; and 100 one at a time."""
    times = []
    with work_dir() as tmp:
        tmp = Path(tmp)
        config = counter_config(tmp / "c.yml", jobs, "LatencyDevice")
        for attempt in range(runs):
            run = tmp / f"run-{attempt}"
            settle_disk()
            elapsed, done = quark("submit", config, "-o", run, check=True, QUARK_BENCH_SUBMIT_LATENCY=str(latency))
            assert len(list(run.glob("jobs/*.json"))) == jobs, done.stdout + done.stderr
            times.append(elapsed)
        small = counter_config(tmp / "small.yml", 100, "LatencyDevice")
        settle_disk()
        serial, _ = quark(
            "submit",
            small,
            "-o",
            tmp / "serial",
            "--submit-workers",
            "1",
            check=True,
            QUARK_BENCH_SUBMIT_LATENCY=str(latency),
        )
    median = statistics.median(times)
    figures = {
        "jobs": jobs,
        "submit_latency_s": latency,
        "submit_s": round(median, 2),
        "submit_runs_s": [round(t, 2) for t in times],
        "one_at_a_time_100_s": round(serial, 2),
        "one_at_a_time_estimated_s": round(serial * jobs / 100, 1),
    }
    table(
        [
            ("what", "quark-cli", "baseline (1 at a time)", "target"),
            (
                f"submit {jobs} jobs, {latency * 1000:.0f} ms/submission",
                f"{median:.2f} s (median of {runs}: {min(times):.2f}..{max(times):.2f})",
                f"{serial * jobs / 100:.1f} s (100 took {serial:.2f} s)",
                "<= 3 s",
            ),
        ]
    )
    print(f"quark-cli: {floor_ratio(median, 'submit', jobs)} (50 ms a submission is not in the floor)")
    save("submit_remote_1000", figures)
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
    remote(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
