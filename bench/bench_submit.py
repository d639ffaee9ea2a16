"""``quark submit`` of 1,000 small jobs to the local async backend (target: under 10 s).

1,000 stacks GHZ(2 qubits) -> GHZCircuit -> LocalAsyncSampler, each submitting one job; the
detached runner starts executing them while the submission goes on, as it does for a user.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import REPO, quark, save, settle_disk, table

sys.path.insert(0, str(REPO / "tests"))
from test_local_jobs import kill_processes_of  # noqa: E402


def main(jobs: int = 1000) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
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


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
