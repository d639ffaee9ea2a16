"""Collect time with 10 pending jobs as the number of finished stacks grows (100, 1,000, 10,000).

Shows that collect's cost follows the pending work: it reads the open stacks only. Two figures per
size: nothing ready yet (the usual cron pass), and the 10 jobs done (10 stacks continued).
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import counter_config, median_of, quark, save, settle_disk, table, work_dir
from latency_modules import finish_all

PENDING = 10


def main(sizes: tuple[int, ...] = (100, 1000, 10_000)) -> dict:
    curve = []
    with work_dir() as tmp:
        tmp = Path(tmp)
        for finished in sizes:
            run = tmp / f"run-{finished}"
            config = counter_config(tmp / f"c{finished}.yml", finished, "SyncDevice", pending=PENDING)
            setup, _ = quark("submit", config, "-o", run, check=True)
            settle_disk()
            nothing_ready = median_of(5, lambda run=run: quark("collect", run, check=True)[0])
            finish_all(run)
            settle_disk()
            ready, done = quark("collect", run, check=True)
            assert done.returncode == 0, done.stdout + done.stderr
            curve.append(
                {
                    "finished_stacks": finished,
                    "pending_jobs": PENDING,
                    "submit_s": round(setup, 2),
                    "collect_nothing_ready_s": round(nothing_ready, 3),
                    "collect_10_done_s": round(ready, 3),
                }
            )
    rows = [("finished stacks", "collect, nothing ready", "collect, 10 done", "(setup: submit)")]
    rows += [
        (
            str(c["finished_stacks"]),
            f"{c['collect_nothing_ready_s']:.2f} s",
            f"{c['collect_10_done_s']:.2f} s",
            f"{c['submit_s']:.1f} s",
        )
        for c in curve
    ]
    print("collect with 10 pending jobs (50 ms per poll) as finished stacks grow:")
    table(rows)
    save("resume_curve", {"curve": curve})
    return {"curve": curve}


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or (100, 1000, 10_000))
