"""``quark status`` on a run with 10,000 jobs (target: under 1 s): all done; and a fifth failed with
the others pending (each failed job is listed, the pending ones counted by module)."""

from __future__ import annotations

import sys
from pathlib import Path

from common import counter_config, median_of, quark, save, settle_disk, table, work_dir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency_modules import fail_every, finish_all  # noqa: E402,F811


def failed_status(run: Path) -> float:
    """Seconds of ``quark status RUN`` on a run with failed stacks (RuntimeError unless it exits 1)."""
    seconds, done = quark("status", run)
    if done.returncode != 1:
        raise RuntimeError(f"quark status {run} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds


def main(jobs: int = 10_000) -> dict:
    with work_dir() as tmp:
        tmp = Path(tmp)
        run = tmp / "run"
        submit_s, done = quark("submit", counter_config(tmp / "c.yml", jobs, "LatencyDevice"), "-o", run, check=True)
        finish_all(run)
        collect_s, _ = quark("collect", run, check=True, QUARK_BENCH_LATENCY="0")
        settle_disk()
        status = median_of(5, lambda: quark("status", run, check=True)[0])
        status_json = median_of(5, lambda: quark("status", run, "--json", check=True)[0])
        mixed = tmp / "mixed"
        quark("submit", counter_config(tmp / "c.yml", jobs, "LatencyDevice"), "-o", mixed, check=True)
        failed = fail_every(mixed, 5)
        _, collected = quark("collect", mixed, QUARK_BENCH_LATENCY="0")
        if collected.returncode != 1:  # 1: some stacks failed, as they must
            raise RuntimeError(f"quark collect {mixed} exited {collected.returncode}: {collected.stderr[-2000:]}")
        settle_disk()
        status_mixed = median_of(5, lambda: failed_status(mixed))
    figures = {
        "jobs": jobs,
        "status_s": round(status, 3),
        "status_json_s": round(status_json, 3),
        "status_fifth_failed_s": round(status_mixed, 3),
        "submit_s": round(submit_s, 2),
        "collect_all_done_s": round(collect_s, 2),
    }
    table(
        [
            ("what", "quark-cli", "baseline", "target"),
            (f"status, {jobs} jobs", f"{status:.2f} s", "-", "< 1 s"),
            (f"status --json, {jobs} jobs", f"{status_json:.2f} s", "-", "< 1 s"),
            (f"status, {failed} failed, {jobs - failed} pending", f"{status_mixed:.2f} s", "-", "< 1 s"),
            (f"(setup) submit {jobs} stacks", f"{submit_s:.1f} s", "-", "-"),
            (f"(setup) collect {jobs} done jobs", f"{collect_s:.1f} s", "-", "-"),
        ]
    )
    save("status_10k", figures)
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
