"""Run every bench of quark-cli and print its table; figures go to bench/results.json.

``make bench`` runs this, then the QUARK 3 side-by-side bench (``bench/quark3_compare.py``).
"""

from __future__ import annotations

import bench_collect
import bench_config
import bench_floor
import bench_resume_curve
import bench_scale
import bench_startup
import bench_status
import bench_submit
from common import compile_sources


def main() -> None:
    compile_sources()
    for name, bench in (
        ("the I/O floor", bench_floor.main),
        ("start-up", bench_startup.main),
        ("reading a config", bench_config.main),
        ("status on 10,000 jobs", bench_status.main),
        ("collect of 1,000 done jobs", bench_collect.main),
        ("collect with 10 pending jobs, growing run", bench_resume_curve.main),
        ("submit of 1,000 local jobs", bench_submit.main),
        ("submit of 1,000 jobs, 50 ms per submission", bench_submit.remote),
        ("scale: 1,000, 10,000 and 100,000 stacks", bench_scale.main),
    ):
        print(f"\n== {name}")
        bench()


if __name__ == "__main__":
    main()
