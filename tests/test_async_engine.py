"""The async mode end to end through the CLI, on the controlled test service.

Stories: submit, some jobs finish, collect finishes exactly those stacks; failed jobs are recorded
and not resubmitted; PRE, POST, PREPOST and two async modules in one stack all resume correctly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import toy_modules
from toy_modules import fail_job, finish_job, submissions

TWO_ITEMS_ASYNC = """
application:
  module: toy_modules:Numbers
  config: {start: [1, 2]}
  submodules:
    - name: Double
      submodules:
        - name: AsyncSquare
          config: {auto_finish: [AUTO]}
repetitions: 2
"""


def _config(write_config, text: str, auto: bool = False) -> Path:
    return write_config(text.replace("AUTO", "true" if auto else "false"))


def _jobs(run: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(run.glob("jobs/*.json"))}


def _results(run: Path) -> list[dict]:
    return json.loads((run / "results.json").read_text())


def _comparable(records: list[dict]) -> list[dict]:
    """Records without what legitimately differs between two runs: times, stamps, job ids."""

    def strip(node):
        if isinstance(node, dict):
            return {
                k: strip(v)
                for k, v in node.items()
                if not k.endswith("_time") and k not in {"timestamp", "job_info", "jobs"}
            }
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(records)


def test_submit_then_collect_finishes_exactly_the_done_jobs(quark, write_config, tmp_path):
    config = _config(write_config, TWO_ITEMS_ASYNC)
    run = tmp_path / "run"

    submitted = quark("submit", config, "-o", run)
    assert submitted.exit_code == 3, submitted.stderr
    assert submitted.stdout.strip() == str(run)
    jobs = _jobs(run)
    assert len(jobs) == 4 and {j["status"] for j in jobs.values()} == {"SUBMITTED"}

    status = quark("status", run, "--json")
    report = json.loads(status.stdout)
    assert status.exit_code == 3
    assert report["stack_totals"]["INTERRUPTED"] == 4
    assert report["job_totals"] == {"SUBMITTED": 4}

    first, second = sorted(jobs)[:2]
    finish_job(run / "jobs" / first)
    finish_job(run / "jobs" / second)
    collected = quark("collect", run)
    assert collected.exit_code == 3
    records = {r["stack"]: r for r in _results(run)}
    finished = {k for k, r in records.items() if r["quark_job_status"] == "FINISHED"}
    assert finished == {jobs[first]["stack"], jobs[second]["stack"]}
    assert json.loads(quark("status", run, "--json").stdout)["stack_totals"]["INTERRUPTED"] == 2

    for key in sorted(jobs)[2:]:
        finish_job(run / "jobs" / key)
    assert quark("collect", run).exit_code == 0
    assert {r["quark_job_status"] for r in _results(run)} == {"FINISHED"}
    assert submissions(run) == 4, "collect must never submit a job again"

    sequential = quark("run", _config(write_config, TWO_ITEMS_ASYNC, auto=True), "-o", tmp_path / "seq")
    assert sequential.exit_code == 0, sequential.stderr
    async_records = _comparable(_results(run))
    for record in async_records:
        record["module"]["submodule"]["submodule"]["module_config"].pop("auto_finish")
    sequential_records = _comparable(_results(tmp_path / "seq"))
    for record in sequential_records:
        record["module"]["submodule"]["submodule"]["module_config"].pop("auto_finish")
        record.pop("config_hash")
    for record in async_records:
        record.pop("config_hash")
    assert async_records == sequential_records
    first_record = _results(run)[0]
    assert first_record["module"]["total"] == sum(4 * x * x for x in (1, 2, 3))


def test_records_keep_quark2_fields_and_job_info(quark, write_config, tmp_path):
    run = tmp_path / "run"
    quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run)
    record = _results(run)[0]
    for field in ("benchmark_backlog_item_number", "repetition", "config_hash", "total_time", "quark_job_status"):
        assert field in record
    assert record["quark_job_status"] == "INTERRUPTED"
    leaf = record["module"]["submodule"]["submodule"]
    assert leaf["module_name"] == "AsyncSquare"
    assert leaf["job_info"]["id"].startswith("ctl-")
    assert record["module"]["module_config"] == {"start": 1, "count": 3}
    run_info = json.loads((run / "run.json").read_text())
    assert run_info["schema_version"] == 2 and run_info["config_hash"] == record["config_hash"]


def test_walk_order_down_then_up(quark, write_config, tmp_path):
    config = write_config(
        """
        application:
          module: toy_modules:Numbers
          submodules:
            - name: Double
              submodules: [{name: Recorder}]
        """
    )
    toy_modules.CALLS.clear()
    assert quark("run", config, "-o", tmp_path / "run").exit_code == 0
    assert toy_modules.CALLS == [
        "Numbers.pre",
        "Double.pre",
        "Recorder.pre",
        "Recorder.post",
        "Double.post",
        "Numbers.post",
    ]


def test_continue_mode_walks_down_and_back_up_with_previous_result(quark, write_config, tmp_path):
    config = write_config(
        """
        application:
          module: toy_modules:Numbers
          submodules:
            - module: toy_modules:AsyncDouble
              submodules: [{name: Recorder}]
        """
    )
    run = tmp_path / "run"
    toy_modules.CALLS.clear()
    assert quark("submit", config, "-o", run).exit_code == 3
    assert toy_modules.CALLS == [
        "Numbers.pre",
        "Double.pre",
        "Recorder.pre",
        "Recorder.post",
        "AsyncDouble.submit_post",
    ]
    (key,) = _jobs(run)
    finish_job(run / "jobs" / key)
    toy_modules.CALLS.clear()
    assert quark("collect", run).exit_code == 0
    assert toy_modules.CALLS == [
        "Numbers.pre",
        "Double.pre",
        "Recorder.pre",
        "Recorder.post",
        "AsyncDouble.collect_post",
        "Numbers.post",
    ]
    record = _results(run)[0]
    assert record["module"]["values"] == [4 * x * x + 1 for x in (1, 2, 3)]
    assert record["module"]["submodule"]["largest"] == 37


def test_prepost_module_interrupts_twice(quark, write_config, tmp_path):
    config = write_config(
        """
        application:
          module: toy_modules:Numbers
          submodules: [{module: "toy_modules:AsyncPrePost"}]
        """
    )
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    (pre,) = _jobs(run)
    assert pre.endswith("-pre")
    finish_job(run / "jobs" / pre)
    assert quark("collect", run).exit_code == 3
    jobs = _jobs(run)
    post = next(k for k in jobs if k.endswith("-post"))
    assert jobs[pre]["status"] == "DONE" and jobs[post]["status"] == "SUBMITTED"
    assert quark("collect", run).exit_code == 3, "nothing changed: still pending"
    finish_job(run / "jobs" / post)
    assert quark("collect", run).exit_code == 0
    assert _results(run)[0]["module"]["values"] == [x * x + 1 for x in (1, 2, 3)]
    assert submissions(run) == 2


def test_two_async_modules_in_one_stack(quark, write_config, tmp_path):
    config = write_config(
        """
        application:
          module: toy_modules:Numbers
          submodules:
            - module: toy_modules:AsyncDouble
              submodules: [{name: AsyncSquare}]
        """
    )
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    (square,) = _jobs(run)
    finish_job(run / "jobs" / square)
    assert quark("collect", run).exit_code == 3
    double = next(k for k in _jobs(run) if "AsyncDouble-post" in k)
    finish_job(run / "jobs" / double)
    assert quark("collect", run).exit_code == 0
    assert _results(run)[0]["module"]["values"] == [(2 * x) ** 2 + 1 for x in (1, 2, 3)]


def test_failed_job_is_recorded_not_resubmitted_and_retry_works(quark, write_config, tmp_path):
    run = tmp_path / "run"
    quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run)
    jobs = _jobs(run)
    broken = sorted(jobs)[0]
    fail_job(run / "jobs" / broken, "qubit 3 out of calibration")
    for key in sorted(jobs)[1:]:
        finish_job(run / "jobs" / key)

    collected = quark("collect", run)
    assert collected.exit_code == 1
    assert "qubit 3 out of calibration" in collected.stdout
    job = _jobs(run)[broken]
    assert job["status"] == "FAILED" and job["error"] == "qubit 3 out of calibration"
    record = next(r for r in _results(run) if r["stack"] == job["stack"])
    assert record["quark_job_status"] == "FAILED" and "qubit 3 out of calibration" in record["error"]

    for _ in range(2):
        assert quark("collect", run).exit_code == 1
    assert submissions(run) == 4, "a failed job is not resubmitted by plain collect"

    assert quark("collect", run, "--retry-failed").exit_code == 3
    assert submissions(run) == 5
    retried = _jobs(run)[broken]
    assert retried["attempt"] == 2 and retried["status"] == "SUBMITTED"
    assert retried["previous_attempts"][0]["error"] == "qubit 3 out of calibration"
    # a fresh folder for the new attempt; the failed one's files are kept beside it
    assert retried["previous_attempts"][0]["folder"] == "attempts/1"
    kept = json.loads((run / "jobs" / broken / "attempts" / "1" / "controlled.json").read_text())
    assert kept["state"] == "FAILED" and kept["reason"] == "qubit 3 out of calibration"
    finish_job(run / "jobs" / broken)
    assert quark("collect", run).exit_code == 0


def test_module_without_its_submit_hook_is_refused(quark, write_config, tmp_path):
    from toy_modules import NoSubmit

    with pytest.raises(TypeError, match="does not define submit_preprocess"):
        NoSubmit()
    config = write_config(
        """
        application:
          module: toy_modules:Numbers
          submodules: [{module: "toy_modules:NoSubmit"}]
        """
    )
    result = quark("submit", config, "-o", tmp_path / "run")
    assert result.exit_code == 2
    assert "does not define submit_preprocess" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_collect_refuses_a_changed_config(quark, write_config, tmp_path):
    run = tmp_path / "run"
    quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run)
    before = (run / "results.json").read_bytes()
    (run / "config.yml").write_text((run / "config.yml").read_text().replace("[1, 2]", "[1, 3]"))
    result = quark("collect", run)
    assert result.exit_code == 2
    assert "changed since the run was made" in result.stderr
    assert (run / "results.json").read_bytes() == before


def test_user_module_works_in_all_three_modes(quark_process, write_config, tmp_path):
    """A module named by 'module: pkg.mod:Class', in real processes: run, submit, collect."""
    config = _config(write_config, TWO_ITEMS_ASYNC, auto=True)
    assert quark_process("run", config, "-o", tmp_path / "seq").returncode == 0
    run = tmp_path / "async"
    config = _config(write_config, TWO_ITEMS_ASYNC)
    assert quark_process("submit", config, "-o", run).returncode == 3
    for key in _jobs(run):
        finish_job(run / "jobs" / key)
    done = quark_process("collect", run)
    assert done.returncode == 0, done.stderr
    assert len(_results(run)) == 4


def test_upgraded_builtin_keeps_its_parameter_options(quark, write_config, tmp_path):
    """The seed's multiple-inheritance upgrade of the built-in Sampler keeps its options and works."""
    from toy_modules import ControlledSampler

    from quark_cli.modules.devices import Sampler

    assert ControlledSampler().get_parameter_options() == Sampler().get_parameter_options()
    config = write_config(
        """
        application:
          name: GHZ
          config: {n_qubits: [3]}
          submodules:
            - name: GHZCircuit
              submodules: [{module: "toy_modules:ControlledSampler", config: {shots: [200], seed: [7]}}]
        """
    )
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    (key,) = _jobs(run)
    finish_job(run / "jobs" / key)
    assert quark("collect", run).exit_code == 0
    record = _results(run)[0]
    assert record["module"]["population"] == 1.0
    assert record["module"]["submodule"]["submodule"]["module_config"] == {"shots": 200, "seed": 7, "qpu": "default"}


def test_run_waits_a_bounded_time_then_leaves_the_job_for_collect(quark, write_config, tmp_path):
    config = _config(write_config, TWO_ITEMS_ASYNC.replace("repetitions: 2", "repetitions: 1"))
    run = tmp_path / "run"
    result = quark("run", config, "-o", run, "--timeout", "0.3")
    assert result.exit_code == 3
    assert {r["quark_job_status"] for r in _results(run)} == {"INTERRUPTED"}
    for key in _jobs(run):
        finish_job(run / "jobs" / key)
    assert quark("collect", run).exit_code == 0
    assert submissions(run) == 2


def test_modules_lists_the_upgraded_builtin_with_the_options_it_inherits(quark):
    described = {entry["name"]: entry for entry in json.loads(quark("modules", "--json").stdout)}
    sampler = described["Sampler"]["parameters"]
    for upgraded in ("LocalAsyncSampler", "QaptivaSampler", "SlurmSampler"):
        assert described[upgraded]["parameters"]["shots"] == sampler["shots"]
        assert described[upgraded]["parameters"]["seed"] == sampler["seed"]


def test_results_json_updated_line_by_line_equals_a_full_rebuild(quark, write_config, tmp_path):
    from quark_cli.state import RunDir

    config = _config(write_config, TWO_ITEMS_ASYNC.replace("repetitions: 2", "repetitions: 6"))
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    job_dirs = sorted(p.with_suffix("") for p in run.glob("jobs/*.json"))
    for batch in (job_dirs[5:6], job_dirs[::3], job_dirs):
        for job_dir in batch:
            finish_job(job_dir)
        quark("collect", run)
        spliced = (run / "results.json").read_bytes()
        RunDir(run).rebuild_results()
        assert spliced == (run / "results.json").read_bytes()
    assert [(r["benchmark_backlog_item_number"], r["repetition"]) for r in _results(run)] == [
        (item, rep) for item in (0, 1) for rep in range(1, 7)
    ]


def test_results_of_done_jobs_are_fetched_concurrently_and_once_each(quark, write_config, tmp_path):
    from toy_modules import FetchCountingJobManager

    config = write_config("""
        application:
          module: toy_modules:Numbers
          config: {start: [1, 2]}
          submodules: [{module: "toy_modules:SlowResultSquare"}]
        repetitions: 4
        """)
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    for job_dir in sorted(p.with_suffix("") for p in run.glob("jobs/*.json")):
        finish_job(job_dir)
    FetchCountingJobManager.fetches.clear()
    FetchCountingJobManager.most_at_once = 0

    assert quark("collect", run).exit_code == 0
    assert sorted(FetchCountingJobManager.fetches) == sorted(_jobs(run))  # one fetch per job, none twice
    assert FetchCountingJobManager.most_at_once > 1
    assert [r["module"]["submodule"]["squared"] for r in _results(run)] == [3] * 8


def test_a_finished_stack_whose_open_mark_survived_a_kill_is_closed_by_the_next_collect(quark, write_config, tmp_path):
    config = _config(write_config, TWO_ITEMS_ASYNC)
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    for job_dir in sorted(p.with_suffix("") for p in run.glob("jobs/*.json")):
        finish_job(job_dir)
    assert quark("collect", run).exit_code == 0
    before = (run / "results.json").read_bytes()
    (run / "open").mkdir(exist_ok=True)  # a submit makes no marks: only a stack walked again after it closed
    (run / "open" / "000-r2").touch()  # killed after the record was in place, before the mark was cleared

    again = quark("collect", run)
    assert again.exit_code == 0, again.stdout + again.stderr
    assert not (run / "open" / "000-r2").exists()
    assert (run / "results.json").read_bytes() == before


MAXCUT_CONTROLLED = """
application:
  name: MaxCut
  config: {nodes: [5], graph_seed: [2]}
  submodules:
    - name: QAOA
      config: {p: [1, 2]}
      submodules:
        - DEVICE
          config: {shots: [300], seed: [4]}
repetitions: 1
"""


def test_a_maxcut_collect_reuses_the_optimised_angles_instead_of_running_cobyla(
    quark, write_config, tmp_path, monkeypatch
):
    """QAOA gets its own saved level back on collect and takes its angles from there."""
    import scipy.optimize

    config = write_config(MAXCUT_CONTROLLED.replace("DEVICE", "module: toy_modules:ControlledSampler"))
    run = tmp_path / "run"
    result = quark("submit", config, "-o", run)
    assert result.exit_code == 3, result.stderr
    submitted = {r["stack"]: r["module"]["submodule"] for r in _results(run)}
    for job in run.glob("jobs/*.json"):
        finish_job(job.with_suffix(""))

    def no_optimiser(*args, **kwargs):
        raise AssertionError("COBYLA ran again on collect")

    monkeypatch.setattr(scipy.optimize, "minimize", no_optimiser)
    collected = quark("collect", run)
    assert collected.exit_code == 0, collected.stdout + collected.stderr
    monkeypatch.undo()

    reference = tmp_path / "reference"
    sync_config = write_config(MAXCUT_CONTROLLED.replace("DEVICE", "name: Sampler"), "sync.yml")
    assert quark("run", sync_config, "-o", reference, "--quiet").exit_code == 0
    for record, expected in zip(_results(run), _results(reference), strict=True):
        qaoa, expected_qaoa = record["module"]["submodule"], expected["module"]["submodule"]
        for metric in ("optimal_angles", "circuit_evaluations", "expected_cut_noiseless"):
            assert qaoa[metric] == expected_qaoa[metric], metric
        assert qaoa["circuit_evaluations"] > 0
        # the time of the optimisation that produced the angles, not of the lookup
        assert qaoa["preprocessing_time"] == submitted[record["stack"]]["preprocessing_time"]
        for metric in ("best_cut", "optimal_cut", "approximation_ratio", "expected_cut_ratio"):
            assert record["module"][metric] == expected["module"][metric], metric
