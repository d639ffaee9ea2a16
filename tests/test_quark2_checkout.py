"""Against a real QUARK 2 checkout: its SAT benchmark run by QUARK 2 and by quark-cli, side by side.

Runs only where ``QUARK2_SRC`` names a QUARK 2 (v2.1.6) checkout's ``src`` folder and this Python
(3.12 or later, QUARK 2's own requirement) has the SAT chain's packages (python-sat, nnf, qubovert,
dwave-samplers) and QUARK 2's (inquirer, pandas, seaborn, networkx). CI has neither: no QUARK 2 code
is committed here. The note of the QUARK 2 compatibility issue says how it was run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "quark2_checkout"
SOURCE = Path(os.environ.get("QUARK2_SRC", "/nonexistent"))


def _missing() -> str | None:
    if "QUARK2_SRC" not in os.environ:
        return "QUARK2_SRC is not set (a QUARK 2 checkout's src folder)"
    if not (SOURCE / "main.py").exists() or not (SOURCE.parent / ".settings" / "module_db.json").exists():
        return f"{SOURCE} is not the src folder of a QUARK 2 checkout"
    probe = "import pysat, nnf, qubovert, dwave.samplers, inquirer, pandas, seaborn, networkx"
    if subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode:
        return f"this Python lacks QUARK 2's SAT packages ({probe[7:]})"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def _env() -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONHASHSEED"}
    environment["PYTHONPATH"] = str(SOURCE)
    return environment


def _quark(quark_entry, *args: object, cwd: Path) -> subprocess.CompletedProcess:
    return quark_entry(*args, cwd=cwd, env={"PYTHONPATH": str(SOURCE)})


def _by_stack(records: list[dict]) -> dict[tuple[int, int], dict]:
    return {(r["benchmark_backlog_item_number"], r["repetition"]): r for r in records}


def _levels(record: dict) -> list[dict]:
    levels, node = [], record["module"]
    while node:
        levels.append(node)
        node = node["submodule"]
    return levels


def test_quark2s_sat_config_runs_in_quark_cli_as_in_quark2(tmp_path, quark_entry):
    modules = json.loads((SOURCE.parent / ".settings" / "module_db.json").read_text())["modules"]
    (tmp_path / "sat_modules.json").write_text(json.dumps([m for m in modules if m["name"] == "SAT"]))
    quark2 = subprocess.run(
        [sys.executable, str(SOURCE / "main.py"), "-c", str(HERE / "sat.yml"), "-m", "sat_modules.json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
        timeout=600,
    )
    assert quark2.returncode == 0, quark2.stderr[-2000:]
    (theirs_file,) = tmp_path.glob("benchmark_runs/*/results.json")
    theirs = _by_stack(json.loads(theirs_file.read_text()))

    run = tmp_path / "quark-cli-run"
    module_db = SOURCE.parent / ".settings" / "module_db.json"
    result = _quark(quark_entry, "run", HERE / "sat.yml", "--modules", module_db, "-o", run, "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ours = _by_stack(json.loads((run / "results.json").read_text()))

    assert sorted(ours) == sorted(theirs) == [(0, 1), (0, 2), (1, 1), (1, 2)]  # same numbering
    for key, record in ours.items():
        other = theirs[key]
        assert [level["module_name"] for level in _levels(record)] == [level["module_name"] for level in _levels(other)]
        assert record["quark_job_status"] == "FINISHED"
        assert record["total_time"] < 5 * other["total_time"] and other["total_time"] < 5 * record["total_time"]
        for ours_level, their_level in zip(_levels(record), _levels(other), strict=True):
            assert set(their_level) <= set(ours_level)  # every field QUARK 2 writes, plus ours
        assert set(other) <= set(record)
    for repetition in (1, 2):  # ClassicalSAT is exact: the same solution as QUARK 2's
        assert ours[(0, repetition)]["module"]["processed_solution"] == theirs[(0, 1)]["module"]["processed_solution"]
        assert ours[(0, repetition)]["module"]["application_score_value"] == 1.0

    summary = tmp_path / "summary"
    summary.mkdir()
    summarized = subprocess.run(
        [sys.executable, str(SOURCE / "main.py"), "-s", str(run)],
        capture_output=True,
        text=True,
        cwd=summary,
        env=_env(),
        timeout=600,
    )
    assert summarized.returncode == 0, summarized.stderr[-2000:]  # QUARK 2's --summarize reads our run
    (merged,) = summary.glob("benchmark_runs/summary-*/results.json")
    assert len(json.loads(merged.read_text())) == 4


def test_the_seeds_async_upgrade_of_quark2s_annealer_submits_and_collects(tmp_path, quark_entry):
    run = tmp_path / "run"
    submitted = _quark(
        quark_entry, "submit", HERE / "sat-async.yml", "--modules", HERE / "modules.json", "-o", run, cwd=tmp_path
    )
    assert submitted.returncode == 3, submitted.stderr
    assert len(list(run.glob("jobs/*.json"))) == 2
    collected = _quark(quark_entry, "collect", run, "--wait", "--timeout", "120", "--quiet", cwd=tmp_path)
    assert collected.returncode == 0, collected.stderr
    records = _by_stack(json.loads((run / "results.json").read_text()))
    assert all(record["quark_job_status"] == "FINISHED" for record in records.values())
    for repetition in (1, 2):
        annealed = records[(1, repetition)]
        assert [level["module_name"] for level in _levels(annealed)] == [
            "SAT",
            "QubovertQUBO",
            "AsyncAnnealer",
            "simulated annealer",
        ]
        assert _levels(annealed)[2]["module_config"] == {"number_of_reads": 100}
        # the collect rebuilt QubovertQUBO in another process: the sample still reads back to a near-valid assignment
        assert annealed["module"]["application_score_value"] >= 0.8
