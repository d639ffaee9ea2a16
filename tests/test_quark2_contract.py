"""QUARK 2 modules and configs run unchanged: synchronous, upgraded to async, resumed.

The modules are ``tests/quark2_contract/q2lib``, a small library written to QUARK 2's module contract
(abstract Core, ms times, ``preprocessed_input`` set by the manager, Metrics validated, its own
Instruction), found through a QUARK 2 module file by display names with ``args`` and ``dir``.
Stories: a QUARK 2 researcher runs their config with ``--modules``; upgrades their solver exactly as
the specification shows and submits, collects; a collect in a fresh process rebuilds a mapping whose
numbering follows string hashes and still reads the job back right.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from toy_modules import finish_job

TESTS = Path(__file__).resolve().parent
LIBRARY = TESTS / "quark2_contract"
MODULES = LIBRARY / "modules.json"

SYNC = """
application:
  name: Bit Match
  config: {bits: [4, 6], seed: [1], delay_ms: [DELAY], weights: [ramp]}
  submodules:
    - name: Label QUBO
      config: {penalty: [2]}
      submodules:
        - name: SOLVER
          config: {restarts: [1]}
          submodules: [{name: Local CPU}]
repetitions: 2
"""


def _config(write_config, solver: str = "Minimizer", delay: int = 0, name: str = "q2.yml") -> Path:
    return write_config(SYNC.replace("SOLVER", solver).replace("DELAY", str(delay)), name)


def _results(run: Path) -> list[dict]:
    return json.loads((run / "results.json").read_text())


def _levels(record: dict) -> list[dict]:
    levels, node = [], record["module"]
    while node:
        levels.append(node)
        node = node["submodule"]
    return levels


def test_a_quark2_config_runs_with_its_module_file_and_records_quark2_fields(
    quark, write_config, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    result = quark("run", _config(write_config, delay=30), "--modules", MODULES, "-o", "run", "--quiet")
    assert result.exit_code == 0, result.stderr
    records = _results(run)
    assert [(r["benchmark_backlog_item_number"], r["repetition"]) for r in records] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    for record in records:
        for field in (
            "benchmark_backlog_item_number",
            "timestamp",
            "config_hash",
            "total_time",
            "total_time_unit",
            "git_revision_number",
            "git_uncommitted_changes",
            "repetition",
            "total_repetitions",
            "module",
        ):
            assert field in record, field
        assert record["total_repetitions"] == 2 and record["total_time_unit"] == "ms"
        levels = _levels(record)
        assert [level["module_name"] for level in levels] == ["BitMatch", "LabelQUBO", "Minimizer", "local cpu"]
        assert [level["module_level"] for level in levels] == [0, 1, 2, 3]
        assert levels[-1]["submodule"] == {}
        assert all(level["module_src"].endswith(".py") for level in levels)
        # QUARK 2 phases return ms: a 30 ms preprocess is recorded as about 30, never 30000
        assert 25 <= levels[0]["preprocessing_time"] < 1000
        assert record["total_time"] == pytest.approx(sum(level["total_time"] for level in levels))
        # only the parameters the config gives: QUARK 2 fills in no defaults
        assert levels[2]["module_config"] == {"restarts": 1}
        assert levels[1]["module_config"] == {"penalty": 2}
        application_config = levels[0]["module_config"]
        assert list(application_config) == ["bits", "seed", "delay_ms", "weights"]  # the config's order
        assert application_config == {"bits": application_config["bits"], "seed": 1, "delay_ms": 30, "weights": "ramp"}
        # the solver read preprocessed_input, the device answered with QUARK 2's own Instruction
        assert levels[2]["device_seen"] == "local cpu" and levels[3]["device"] == "local cpu"
        assert levels[0]["application_score_value"] == 1.0 and record["quark_job_status"] == "FINISHED"
        # store_dir is the item's own folder, absolute although -o was relative
        assert levels[0]["store_dir"] == str(
            run / "benchmarks" / f"benchmark_{record['benchmark_backlog_item_number']}"
        )
        assert list(levels[0])[-3:] == ["quark_job_status", "module_level", "submodule"]  # QUARK 2's order
    # Application.save(store_dir, rep_count) into the item's own folder
    saved = sorted(p.relative_to(run).as_posix() for p in (run / "benchmarks").rglob("*.txt"))
    assert saved == [
        "benchmarks/benchmark_0/target_1.txt",
        "benchmarks/benchmark_0/target_2.txt",
        "benchmarks/benchmark_1/target_1.txt",
        "benchmarks/benchmark_1/target_2.txt",
    ]
    assert (run / "benchmarks/benchmark_1/target_1.txt").read_text() == "".join(
        map(str, records[2]["module"]["processed_solution"])
    )


def test_quark2_validation_takes_depending_parameters_and_unlisted_values(quark, write_config):
    path = write_config(
        """
        application:
          name: Bit Match
          config: {bits: [5], seed: [1], weights: [uniform]}
          submodules:
            - name: Label QUBO
              config: {penalty: [3]}
              submodules: [{name: Minimizer, submodules: [{name: Local CPU}]}]
        """
    )
    result = quark("validate", path, "--modules", MODULES, "--json")
    assert result.exit_code == 0, result.stdout
    summary = json.loads(result.stdout)
    assert summary["valid"] and summary["stacks"] == 1
    # 5 bits and penalty 3 are not listed, and QUARK 2 passes them on: said, not refused
    assert len(summary["warnings"]) == 2
    assert "application.config.bits: 5 is not among BitMatch's values [4, 6, 8]" in summary["warnings"][0]
    typo = write_config(path.read_text().replace("penalty", "penalty_typo"), "typo.yml")
    refused = quark("validate", typo, "--modules", MODULES)
    assert refused.exit_code == 2
    assert "application.submodules[0].config.penalty_typo: unknown parameter of LabelQUBO" in refused.stderr


def test_module_db_json_and_unknown_display_names(quark, write_config, tmp_path):
    modules = json.loads("".join(line for line in MODULES.read_text().splitlines() if not line.startswith("#")))
    modules[0]["dir"] = os.path.relpath(LIBRARY, tmp_path)  # relative to the module_db.json's own folder
    db = tmp_path / "module_db.json"
    db.write_text(
        json.dumps({"build_number": 7, "build_date": "01-01-2026", "git_revision_number": "x", "modules": modules})
    )
    assert quark("validate", _config(write_config), "--modules", db).exit_code == 0
    wrong = write_config(SYNC.replace("SOLVER", "Annealer").replace("DELAY", "0"), "wrong.yml")
    result = quark("validate", wrong, "--modules", db)
    assert result.exit_code == 2
    assert "LabelQUBO has no submodule 'Annealer'; choose one of ['Minimizer', 'Async Minimizer']" in result.stderr


def test_the_seeds_upgrade_of_a_quark2_solver_submits_and_collects(quark, write_config, tmp_path):
    config = _config(write_config, solver="Async Minimizer")
    run = tmp_path / "run"
    submitted = quark("submit", config, "--modules", MODULES, "-o", run)
    assert submitted.exit_code == 3, submitted.stderr
    jobs = sorted(run.glob("jobs/*.json"))
    assert len(jobs) == 4
    interrupted = _results(run)[0]
    solver = _levels(interrupted)[2]
    assert solver["module_name"] == "AsyncMinimizer" and solver["module_config"] == {"restarts": 1}
    assert "job_info" in solver and interrupted["quark_job_status"] == "INTERRUPTED"
    for job in jobs:
        finish_job(job.with_suffix(""))
    collected = quark("collect", run)
    assert collected.exit_code == 0, collected.stderr
    synchronous = tmp_path / "sync"
    assert quark("run", _config(write_config), "--modules", MODULES, "-o", synchronous, "--quiet").exit_code == 0
    for async_record, sync_record in zip(_results(run), _results(synchronous), strict=True):
        async_levels, sync_levels = _levels(async_record), _levels(sync_record)
        assert async_levels[0]["processed_solution"] == sync_levels[0]["processed_solution"]
        assert async_levels[0]["application_score_value"] == 1.0
        # on collect each module got its own saved level back as previous_job_info
        assert async_levels[0]["resumed_from_status"] == "INTERRUPTED"
        assert async_levels[1]["previous_level_of"] == "LabelQUBO"
        assert async_levels[2]["job_info"]["id"].startswith("ctl-")
        # an async phase's time is in the module's own unit (ms), and counts its submit and its collect
        submit_ms = json.loads(next(run.glob(f"jobs/{async_record['stack']}-*.json")).read_text())["submit_ms"]
        assert 0 < submit_ms <= async_levels[2]["postprocessing_time"] < 5000


def test_failfast_stops_at_the_first_failed_stack_and_collect_runs_the_rest(quark, write_config, tmp_path):
    (tmp_path / "flaky.py").write_text(
        "from quark_cli import Core\n\n\nclass Flaky(Core):\n"
        "    def get_parameter_options(self):\n"
        "        return {'x': {'values': [1, 2, 3], 'default': 1, 'description': 'fails for 2'}}\n\n"
        "    def preprocess(self, data, config, **kwargs):\n"
        "        if config['x'] == 2:\n"
        "            raise ValueError('two is bad')\n"
        "        return config['x'], 0.0\n"
    )
    config = write_config("application: {module: 'flaky:Flaky', config: {x: [1, 2, 3]}}\n")
    run = tmp_path / "run"
    result = quark("run", config, "--failfast", "-o", run, "--quiet")
    assert result.exit_code == 1
    assert "stopped at the first failed stack, 001-r1 (--failfast); 1 stacks not started" in result.stderr
    assert sorted(p.stem for p in (run / "records").glob("*.json")) == ["000-r1", "001-r1"]
    assert quark("collect", run).exit_code == 1  # the failed stack stays failed; the third one runs
    assert sorted(p.stem for p in (run / "records").glob("*.json")) == ["000-r1", "001-r1", "002-r1"]


def test_collect_rebuilds_hash_ordered_numbering_the_same_in_every_process(quark_entry, write_config, tmp_path):
    """LabelQUBO numbers its variables in set order: different salts would read the job back wrong."""
    probe = "import sys; sys.path.insert(0, sys.argv[1]); from q2lib.labelqubo import numbering; print(numbering(8))"
    salted = {
        subprocess.run(
            [sys.executable, "-c", probe, str(LIBRARY)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(salted) > 1, "the mapping must depend on the salt, or this test proves nothing"

    config = write_config(SYNC.replace("SOLVER", "Async Minimizer").replace("DELAY", "0").replace("4, 6", "8"))
    run = tmp_path / "run"
    submitted = quark_entry("submit", config, "--modules", MODULES, "-o", run)  # no PYTHONHASHSEED set by the user
    assert submitted.returncode == 3, submitted.stderr
    assert json.loads((run / "run.json").read_text())["python_hash_seed"] == "0"
    for job in run.glob("jobs/*.json"):
        finish_job(job.with_suffix(""))
    collected = quark_entry("collect", run)
    assert collected.returncode == 0, collected.stderr
    assert [record["module"]["application_score_value"] for record in _results(run)] == [1.0, 1.0]
    # the mapping's bare logging.info() set up a root handler: quark's own log lines stay out of it
    assert "INFO:quark_cli" not in submitted.stderr + collected.stderr


def test_a_damaged_modules_json_is_refused_with_one_line(quark, write_config, tmp_path):
    run = tmp_path / "run"
    assert quark("submit", _config(write_config, solver="Async Minimizer"), "-m", MODULES, "-o", run).exit_code == 3
    (run / "modules.json").write_text('{"schema_version": 1, "modules": {"name": "x"}}')
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = quark("collect", run)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {run / 'modules.json'}: modules: {{'name': 'x'}} is not list; "
        "the file was edited or damaged: restore it or remove the run"
    )
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_run_made_under_another_seed_is_not_collected_under_this_one(quark_entry, write_config, tmp_path):
    config = _config(write_config, solver="Async Minimizer")
    run = tmp_path / "run"
    assert quark_entry("submit", config, "--modules", MODULES, "-o", run, env={"PYTHONHASHSEED": "1"}).returncode == 3
    refused = quark_entry("collect", run, env={"PYTHONHASHSEED": "2"})
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: {run}: made with PYTHONHASHSEED=1 and this process has PYTHONHASHSEED=2: its modules would not "
        f"be rebuilt the same; collect it with 'PYTHONHASHSEED=1 quark collect {run}'"
    )
    assert quark_entry("collect", run, env={"PYTHONHASHSEED": "1"}).returncode == 3


def test_collect_finds_the_modules_where_submit_found_them_or_says_what_to_set(quark_entry, write_config, tmp_path):
    library = tmp_path / "lib"
    library.mkdir()
    subprocess.run(["cp", "-r", str(LIBRARY / "q2lib"), str(library)], check=True)
    modules = [line for line in MODULES.read_text().splitlines() if not line.lstrip().startswith("#")]
    (library / "modules.json").write_text("\n".join(modules))
    config = _config(write_config, solver="Async Minimizer")
    run = tmp_path / "run"
    assert quark_entry("submit", config, "--modules", library / "modules.json", "-o", run).returncode == 3
    info = json.loads((run / "run.json").read_text())
    assert str(library) in info["import_paths"]
    for job in run.glob("jobs/*.json"):
        finish_job(job.with_suffix(""))
    moved = tmp_path / "moved"
    library.rename(moved)
    result = quark_entry("collect", run)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert (
        f"no module named 'q2lib' (the entry's dir {library} is not a folder); "
        "put the folder that holds 'q2lib' on PYTHONPATH"
    ) in line
    assert f"(the run's modules were imported from {library}, which is gone)" in line
    assert quark_entry("collect", run, env={"PYTHONPATH": f"{TESTS}:{moved}"}).returncode == 0


def test_asynccore_keeps_everything_of_the_quark2_module_it_upgrades(monkeypatch):
    monkeypatch.syspath_prepend(str(LIBRARY))
    from q2lib.async_minimizer import AsyncMinimizer
    from q2lib.metrics import Metrics
    from q2lib.minimizer import Minimizer
    from toy_modules import ControlledJobManager

    from quark_cli import AsyncCore
    from quark_cli.quark2 import speaks_quark2

    class ConstructedTheOtherWayRound(AsyncCore, Minimizer):
        JobManager = ControlledJobManager

        def __init__(self):
            Minimizer.__init__(self)
            AsyncCore.__init__(self, interruptable="POST")

        def submit_postprocess(self, input_data, config, **kwargs):
            return self.job_manager.submit("minimize_qubo", [])

    for upgraded in (AsyncMinimizer(), ConstructedTheOtherWayRound()):
        assert upgraded.get_parameter_options() == Minimizer().get_parameter_options()
        assert upgraded.get_available_submodule_options() == ["Local CPU"]
        assert type(upgraded.get_default_submodule("Local CPU")).__name__ == "CPU"
        assert type(upgraded.metrics) is Metrics  # QUARK 2's metrics, as the module had them
        assert upgraded.interruptable == "POST" and speaks_quark2(type(upgraded))
        # the phase that is not interruptable stays the module's own (QUARK 2's pass-through preprocess)
        assert upgraded.preprocess({"Q": {}}, {}) == ({"Q": {}}, 0.0)


def test_module_paths_take_quark2_classes_with_constructor_args(
    quark_entry, quark, write_config, tmp_path, monkeypatch
):
    config = write_config("application: {module: 'q2lib.cpu:CPU', args: {device_name: tiny cpu}}\n")
    missing = quark_entry("validate", config)  # a fresh process: q2lib may be imported in this one already
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith(
        "application.module: cannot import 'q2lib.cpu:CPU': no module named 'q2lib'; put the folder that holds "
        "'q2lib' on PYTHONPATH (for QUARK 2's modules: the src folder of its checkout)"
    )
    monkeypatch.syspath_prepend(str(LIBRARY))
    run = tmp_path / "run"
    assert quark("run", config, "-o", run, "--quiet").exit_code == 0
    (record,) = _results(run)
    assert record["module"]["module_name"] == "tiny cpu" and record["module"]["device"] == "tiny cpu"
    assert record["module"]["submodule"] == {} and record["module"]["module_level"] == 0


FAULTY = """
from q2lib.core import Core


class Faulty(Core):
    def get_parameter_options(self):
        return {
            "fault": {
                "values": [
                    "none", "none_time", "nan_time", "exit", "raise", "int_time", "bool_time", "save", "huge_time"
                ],
                "description": "what",
            }
        }

    def get_default_submodule(self, option):
        raise ValueError("no submodules")

    def preprocess(self, input_data, config, **kwargs):
        fault = config["fault"]
        if fault == "exit":
            raise SystemExit(0)
        if fault == "raise":
            raise ValueError("bad input data")
        self.fault = fault
        times = {"none_time": None, "nan_time": float("nan"), "int_time": 2, "bool_time": True, "huge_time": 10**400}
        return 1, times.get(fault, 1.5)

    def save(self, path, iter_count):
        if self.fault == "save":
            raise OSError("disk full")
"""


def test_quark2_module_faults_fail_their_stack_and_only_it(quark, write_config, tmp_path, monkeypatch):
    (tmp_path / "faulty.py").write_text(FAULTY)
    monkeypatch.syspath_prepend(str(LIBRARY))
    config = write_config(
        "application: {module: 'faulty:Faulty', config: "
        "{fault: [none, none_time, nan_time, exit, raise, int_time, bool_time, save, huge_time]}}\n"
    )
    run = tmp_path / "run"
    result = quark("run", config, "-o", run, "--quiet")
    assert result.exit_code == 1  # not 0 from the SystemExit, and every stack was walked
    records = _results(run)
    assert [r["quark_job_status"] for r in records] == ["FINISHED"] + ["FAILED"] * 4 + ["FINISHED"] + ["FAILED"] * 3
    assert records[0]["module"]["preprocessing_time"] == 1.5  # ms, as returned
    assert records[5]["module"]["preprocessing_time"] == 2.0  # an int time is a time too
    assert records[6]["error"].endswith(
        "Faulty.preprocess returned True as its time; a phase returns (data, time), time a finite number"
    )
    assert records[7]["error"] == "Faulty.save: OSError: disk full"
    assert records[8]["error"] == (  # past the largest float: refused as a time, not an OverflowError
        "Faulty.preprocess: TypeError: Faulty.preprocess returned an integer of 1329 bits as its time; "
        "a phase returns (data, time), time a finite number"
    )
    del records[5:]
    errors = [r["error"] for r in records[1:]]
    assert errors[0] == (
        "Faulty.preprocess: TypeError: Faulty.preprocess returned None as its time; "
        "a phase returns (data, time), time a finite number"
    )
    assert "returned nan as its time" in errors[1]
    assert errors[2] == "Faulty.preprocess: SystemExit: 0"
    assert errors[3] == "Faulty.preprocess: ValueError: bad input data"
    for record in records[1:]:  # QUARK 2's --summarize needs the application's name and config in every record
        assert record["module"]["module_name"] == "Faulty" and "fault" in record["module"]["module_config"]
        assert record["module"]["submodule"] == {} and record["module"]["quark_job_status"] == "FAILED"


NAMING = """
from quark_cli import Core


class Renaming(Core):
    \"\"\"Names itself after its backend in the step that fails.\"\"\"

    def get_parameter_options(self):
        return {"fail": {"values": [False, True], "default": False, "description": "fail or not"}}

    def preprocess(self, data, config, **kwargs):
        if config["fail"]:
            self.name = "Renaming[backend-b]"
            raise ValueError("backend b refused the circuit")
        return data, 0.0


class Fragile(Core):
    \"\"\"Cannot say its name once its connection is gone.\"\"\"

    connection = "open"

    @property
    def name(self):
        if self.connection is None:
            raise RuntimeError("connection closed")
        return "Fragile"

    @name.setter
    def name(self, value):
        pass

    def get_parameter_options(self):
        return {"fail": {"values": [False, True], "default": False, "description": "fail or not"}}

    def preprocess(self, data, config, **kwargs):
        if config["fail"]:
            self.connection = None
            raise ValueError("lost the connection")
        return data, 0.0
"""


@pytest.mark.parametrize(
    "module, error",
    [
        ("Renaming", "Renaming.preprocess: ValueError: backend b refused the circuit"),
        ("Fragile", "Fragile.preprocess: ValueError: lost the connection"),
    ],
)
def test_a_failed_step_is_named_as_it_began_whatever_the_module_does_to_its_name(
    quark, write_config, tmp_path, module, error
):
    """The step in a failure's message is the module's name when the step began: a module that
    renames itself, or whose name cannot be read any more, in the step that fails changes neither
    the message nor the stacks around it."""
    (tmp_path / "naming.py").write_text(NAMING)
    config = write_config(
        f"application: {{module: 'naming:{module}', config: {{fail: [true, false]}}}}\nrepetitions: 2\n"
    )
    run = tmp_path / "run"
    result = quark("run", config, "-o", run, "--quiet")
    assert result.exit_code == 1, result.stderr
    records = _results(run)
    assert [(r["stack"], r["quark_job_status"], r["error"]) for r in records] == [
        ("000-r1", "FAILED", error),
        ("000-r2", "FAILED", error),
        ("001-r1", "FINISHED", None),
        ("001-r2", "FINISHED", None),
    ]


def test_a_stack_whose_modules_cannot_be_built_records_its_application_from_the_config(quark, write_config, tmp_path):
    (tmp_path / "fragile.py").write_text(
        "from quark_cli import Core\n\n\nclass Fragile(Core):\n    built = 0\n\n"
        "    def __init__(self):\n        Fragile.built += 1\n"
        "        if Fragile.built > 1:  # the config check builds it once; the stack's walk cannot\n"
        "            raise RuntimeError('licence server unreachable')\n        super().__init__()\n\n"
        "    def get_parameter_options(self):\n"
        "        return {'size': {'values': [3], 'default': 3, 'description': 'how big'}}\n"
    )
    run = tmp_path / "run"
    result = quark("run", write_config("application: {module: 'fragile:Fragile'}\n"), "-o", run, "--quiet")
    assert result.exit_code == 1
    (record,) = _results(run)
    assert record["error"].startswith("cannot build modules: ")
    assert record["error"].endswith(": application: cannot create Fragile (RuntimeError: licence server unreachable)")
    assert record["module"]["module_name"] == "Fragile" and record["module"]["module_config"] == {"size": 3}
    assert record["module"]["quark_job_status"] == "FAILED" and record["module"]["submodule"] == {}
