"""What a SLURM job runs on its node: ``python -m quark_cli.jobs.slurm_worker JOB_FILE RESULT_FILE``.

Loads the myQLM ``Job`` that ``SlurmAsyncJobManager.submit`` saved, runs it on myQLM's default QPU
and saves the ``Result`` atomically as JSON (``save_result``: myQLM's own serialisation would pickle
the statevector), so the manager sees either no result or a whole one. A failure prints the
traceback and, as the log's last line, one line saying what went wrong, then exits 1: SLURM
records the job FAILED and the manager quotes that line.
"""

from __future__ import annotations

import signal
import sys
import time
import traceback
from pathlib import Path

from quark_cli.jobs.local_files import one_line, save_result
from quark_cli.jobs.local_worker import get_qpu
from quark_cli.stamps import now_iso


def run(job_file: Path, result_file: Path) -> None:
    """Run the saved job and save its result next to it."""
    from qat.core import Job

    job = Job.load(str(job_file))
    result = get_qpu().submit(job)
    save_result(result, result_file)


def main(argv: list[str] | None = None) -> int:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # sbatch from a quark that blocks it
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m quark_cli.jobs.slurm_worker JOB_FILE RESULT_FILE", file=sys.stderr)
        return 2
    job_file, result_file = map(Path, args)
    started = time.perf_counter()
    print(f"{now_iso('microseconds')} runs {job_file}", flush=True)
    try:
        run(job_file, result_file)
    except Exception as exc:
        traceback.print_exc()
        print(f"error: {one_line(exc)}", file=sys.stderr, flush=True)
        return 1
    print(f"{now_iso('microseconds')} wrote {result_file} in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
