"""Fault injection: 200 stacks in four runs whose module and job manager go wrong where a seed says,
and a healthy run beside them, all collected by one cron line (``quark collect --all``).

Nothing may end in exit 70; every healthy stack finishes; every faulty one is FAILED or pending
with a reason that names its source (``chaos_modules.SOURCES``); the healthy run is collected.
"""

from __future__ import annotations

import json
from collections import Counter

from chaos_modules import FAULTS, SOURCES, planned_fault
from test_containment import strict_json

FAULTY_SEEDS = (11, 12, 13, 14)
STACKS = 50


def _config(write_config, seed: int, stacks: int):
    return write_config(
        f"application:\n  module: chaos_modules:ChaosApp\n  config: {{seed: [{seed}], case: {list(range(stacks))}}}\n"
        "  submodules: [{name: ChaosDevice}]\n",
        f"chaos-{seed}.yml",
    )


def test_two_hundred_faulty_stacks_in_a_cron_sweep(quark_process, write_config, tmp_path):
    root = tmp_path / "runs"
    for seed in (0, *FAULTY_SEEDS):
        submitted = quark_process(
            "submit", _config(write_config, seed, STACKS if seed else 20), "-o", root / f"run-{seed}"
        )
        assert submitted.returncode in (1, 3), submitted.stderr

    for _ in range(2):  # a second sweep changes nothing and still never ends in 70
        swept = quark_process("collect", "--all", root, "--quiet")
        assert swept.returncode == 1, swept.stdout + swept.stderr  # failed stacks; no run crashed
        assert "internal error" not in swept.stdout + swept.stderr

    outcomes: Counter[str] = Counter()
    for seed in FAULTY_SEEDS:
        run = root / f"run-{seed}"
        records = {r["module"]["module_config"]["case"]: r for r in strict_json(run / "results.json")}
        status = json.loads(quark_process("status", run, "--json").stdout)
        warnings = {job["stack"]: job["warning"] for job in status["jobs"] if job["warning"]}
        assert len(records) == STACKS
        for case, record in records.items():
            fault = planned_fault(seed, case)
            outcomes[fault] += 1
            assert record["quark_job_status"] == FAULTS[fault], (seed, case, fault, record["error"])
            if FAULTS[fault] == "FAILED":
                assert SOURCES[fault] in record["error"], (fault, record["error"])
            if FAULTS[fault] == "INTERRUPTED":
                assert SOURCES[fault] in warnings[record["stack"]], (fault, warnings.get(record["stack"]))
    assert len(outcomes) == len(FAULTS), f"every kind of fault was drawn: {outcomes}"
    for seed in FAULTY_SEEDS:  # and what they left reads back: every report format, status, runs
        run = root / f"run-{seed}"
        for command in (("status", run), ("status", run, "--json"), ("runs", root)):
            shown = quark_process(*command)
            assert shown.returncode in (0, 1, 3) and "Traceback" not in shown.stderr, (command, shown.stderr)
        for output_format in ("table", "markdown", "csv", "json"):
            shown = quark_process("report", run, "--format", output_format)
            assert shown.returncode == 0, (output_format, shown.stderr)

    healthy = strict_json(root / "run-0" / "results.json")
    assert [r["quark_job_status"] for r in healthy] == ["FINISHED"] * 20
    assert [r["module"]["answer"] for r in healthy] == [2 * case for case in range(20)]
