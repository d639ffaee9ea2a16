"""Configs mean what the user wrote: YAML 1.2 values, merge keys, and ranges checked before submit.

Stories (issue 15): ``seed: [010, 011]`` runs seeds 10 and 11 (YAML 1.1 made them octal 8 and 9);
``time_limit: [10:00]`` stays the text ``10:00`` (YAML 1.1 made it 600); ``<<: *defaults`` works;
``validate`` refuses what ``run`` would fail on, with the allowed range; errors quote values as
written; malformed YAML of every kind is one line with line and column and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quark_cli.config import load_config

GHZ = """
application:
  name: GHZ
  config: {{n_qubits: [2]}}
  submodules:
    - name: GHZCircuit
      submodules:
        - name: {device}
          config:
{config}
"""


def _ghz(write_config, device: str, config: str) -> Path:
    body = "\n".join(f"            {line}" for line in config.strip().splitlines())
    return write_config(GHZ.format(device=device, config=body))


def _device_values(path: Path) -> list[dict]:
    """The device level's parameter values of every backlog item, in order."""
    return [item.levels[-1].config for item in load_config(path).backlog]


def test_leading_zeros_are_decimal_and_the_run_uses_seeds_10_and_11(quark, write_config, tmp_path):
    path = _ghz(write_config, "Sampler", "shots: [100]\nseed: [010, 011]")
    assert [values["seed"] for values in _device_values(path)] == [10, 11]

    result = quark("run", path, "-o", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.stderr
    records = json.loads((tmp_path / "run" / "results.json").read_text())
    seeds = [record["module"]["submodule"]["submodule"]["module_config"]["seed"] for record in records]
    assert seeds == [10, 11]
    assert "`010` is read as the number 10 (YAML 1.2); YAML 1.1 readers such as QUARK 2 read the number 8" in (
        result.stderr
    )


def test_08_is_the_number_8_not_an_error(write_config):
    path = _ghz(write_config, "Sampler", "seed: [08, 09]")
    assert [values["seed"] for values in _device_values(path)] == [8, 9]


def test_a_time_limit_written_10_00_stays_the_text_10_00(quark, write_config):
    path = _ghz(write_config, "SlurmSampler", "time_limit: [10:00, 1-00:00:00]")
    assert [values["time_limit"] for values in _device_values(path)] == ["10:00", "1-00:00:00"]
    result = quark("validate", path)
    assert result.exit_code == 0, result.stderr


def test_a_number_for_a_text_parameter_is_quoted_as_written(quark, write_config):
    path = _ghz(write_config, "SlurmSampler", "time_limit: [1e3]")
    result = quark("validate", path)
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        "time_limit: `1e3` is not a string; give a string or one of ['00:10:00', '01:00:00', '1-00:00:00']"
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-3", 0.001), ("5e-1", 0.5), ("0.25", 0.25), (".5", 0.5), ("1", 1), ("0x1", 1), ("0o1", 1), ("+1", 1)],
)
def test_numbers_read_by_yaml_1_2(write_config, text, value):
    path = write_config(
        f"application: {{name: MaxCut, config: {{edge_probability: [{text}]}}, submodules: [{{name: QAOA, "
        "submodules: [{name: Sampler}]}]}\n"
    )
    (item,) = load_config(path).backlog
    assert item.levels[0].config["edge_probability"] == value


MERGED = """
defaults: &sampling
  shots: [500]
  seed: [3]
application:
  name: GHZ
  config: {n_qubits: [2]}
  submodules:
    - name: GHZCircuit
      submodules:
        - name: Sampler
          config:
            <<: *sampling
            seed: [4]
        - name: LocalAsyncSampler
          config:
            <<: [*sampling, {workers: [1]}]
        - name: SlurmSampler
          config:
            <<: {shots: [1000]}
"""


EXPANDED = """
application:
  name: GHZ
  config: {n_qubits: [2]}
  submodules:
    - name: GHZCircuit
      submodules:
        - {name: Sampler, config: {shots: [500], seed: [4]}}
        - {name: LocalAsyncSampler, config: {shots: [500], seed: [3], workers: [1]}}
        - {name: SlurmSampler, config: {shots: [1000]}}
"""


def test_merge_keys_and_anchors_are_accepted_and_explicit_keys_win(quark, write_config):
    path = write_config(MERGED)
    values = _device_values(path)
    assert [(v["shots"], v["seed"]) for v in values] == [(500, 4), (500, 3), (1000, 0)]
    assert values[1]["workers"] == 1
    assert quark("validate", path).exit_code == 0
    # the block that only defines anchors is not part of the config: the same config as written out
    assert "defaults" not in load_config(path).raw
    assert load_config(path).config_hash == load_config(write_config(EXPANDED, "expanded.yml")).config_hash


def test_an_unknown_top_level_key_that_defines_nothing_used_is_still_refused(quark, write_config):
    path = write_config("repetition: 3\n" + MERGED)
    result = quark("validate", path)
    assert result.exit_code == 2
    assert "repetition: unknown key" in result.stderr


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("application:\n  name: GHZ\n  name: MaxCut\n", "line 3, column 3", "duplicate key 'name' (first at line 2)"),
        (
            "d: &d {a: 1}\napplication:\n  <<: {name: GHZ, name: X}\n",
            "line 3, column 19",
            "duplicate key 'name' (first at line 3)",
        ),
        ("application: {? [a, b] : 1}\n", "line 1, column 17", "a key must be a name, not a sequence"),
        ("application: {1: GHZ}\n", "line 1, column 15", "key `1` is read as the number 1; keys are names"),
        ("application: {null: GHZ}\n", "line 1, column 15", "key `null` is read as null"),
        ("application: !!binary aGVsbG8=\n", "line 1, column 14", "the tag !!binary has no use in a config"),
        ("application: !!timestamp 2026-01-01\n", "line 1, column 14", "the tag !!timestamp has no use"),
        ("application: !!set {a}\n", "line 1, column 14", "the tag !!set has no use"),
        ("repetitions: .nan\n", "line 1, column 14", "`.nan` is not a finite number"),
        ("repetitions: -.inf\n", "line 1, column 14", "`-.inf` is not a finite number"),
        ("repetitions: !!int 1_000\n", "line 1, column 14", "`1_000` is not a whole number"),
        ("application: {<<: [1, 2]}\n", "line 1, column 20", "expected a mapping for merging"),
    ],
)
def test_malformed_yaml_is_one_line_with_line_and_column_and_exit_2(quark, write_config, text, where, message):
    path = write_config(text)
    result = quark("validate", path)
    assert result.exit_code == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: {where}: "), line
    assert message in line, line


def test_repetitions_written_1e3_is_quoted_as_written(quark, write_config):
    result = quark("validate", write_config("application: {name: GHZ}\nrepetitions: 1e3\n"))
    assert result.exit_code == 2
    assert "repetitions: must be a whole number from 1 to 10000, not `1e3`" in result.stderr


@pytest.mark.parametrize(
    ("level", "values", "message"),
    [
        ("application", "edge_probability: [0.5, 1.5]", "edge_probability: 1.5 is out of range: from 0.0 to 1.0"),
        ("application", "nodes: [40]", "nodes: 40 is out of range: from 2 to 20"),
        ("application", "nodes: [0x28]", "nodes: `0x28` is out of range: from 2 to 20"),
        ("application", "nodes: [1]", "nodes: 1 is out of range: from 2 to 20"),
        ("application", "graph_seed: [-1]", "graph_seed: -1 is out of range: at least 0"),
        ("device", "shots: [0]", "shots: 0 is out of range: at least 1"),
        ("device", "seed: [-1]", "seed: -1 is out of range: at least 0"),
        ("solver", "maxiter: [0]", "maxiter: 0 is out of range: at least 1"),
    ],
)
def test_validate_refuses_values_out_of_range_before_anything_runs(
    quark, write_config, tmp_path, level, values, message
):
    configs = {"application": "", "solver": "", "device": ""}
    configs[level] = values
    path = write_config(
        f"""
        application:
          name: MaxCut
          config: {{{configs["application"]}}}
          submodules:
            - name: QAOA
              config: {{{configs["solver"]}}}
              submodules:
                - name: Sampler
                  config: {{{configs["device"]}}}
        """
    )
    for command in (("validate", path), ("submit", path, "-o", tmp_path / "run")):
        result = quark(*command)
        assert result.exit_code == 2, result.stdout + result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.endswith(message), line
    assert not (tmp_path / "run").exists()


def test_more_nodes_than_brute_force_handles_validate_with_a_note(quark, write_config):
    path = write_config(
        "application: {name: MaxCut, config: {nodes: [17]},\n"
        "  submodules: [{name: QAOA, submodules: [{name: Sampler}]}]}\n"
    )
    result = quark("validate", path)
    assert result.exit_code == 0, result.stderr
    assert "nodes: 17 is above 16: the exact optimum is not computed" in result.stderr


@pytest.mark.parametrize(
    ("device", "parameter", "bad"),
    [
        ("QaptivaSampler", "port", "[70000]"),
        ("QaptivaSampler", "timeout", "[0]"),
        ("SlurmSampler", "cpus", "[0]"),
        ("SlurmSampler", "result_grace", "[-5]"),
        ("LocalAsyncSampler", "workers", "[-1]"),
    ],
)
def test_device_settings_out_of_range_are_refused(quark, write_config, device, parameter, bad):
    result = quark("validate", _ghz(write_config, device, f"{parameter}: {bad}"))
    assert result.exit_code == 2
    assert f"{parameter}: {bad[1:-1]} is out of range" in result.stderr


def test_yes_and_no_are_booleans_only_for_a_boolean_parameter_and_that_is_said(quark, write_config):
    path = _ghz(write_config, "QaptivaSampler", "check_host: [no]\nhostname: [yes]")
    (values,) = _device_values(path)
    assert values["check_host"] is False
    assert values["hostname"] == "yes"
    result = quark("validate", path)
    assert result.exit_code == 0, result.stderr
    assert "check_host: `no` taken as false (the parameter is true or false" in result.stderr


def test_a_run_made_before_the_yaml_1_2_rules_keeps_its_values(quark, write_config, tmp_path):
    """An old run (no ``yaml_rules`` in run.json) whose config.json is gone re-reads config.yml as YAML 1.1."""
    path = _ghz(write_config, "Sampler", "shots: [100]\nseed: [010]")
    run = tmp_path / "run"
    assert quark("submit", path, "-o", run).exit_code == 0
    info = json.loads((run / "run.json").read_text())
    assert info["yaml_rules"] == "1.2"
    # what quark-cli before these rules wrote: seed 8, and no yaml_rules
    from quark_cli.config import config_hash

    raw = json.loads((run / "config.json").read_text())["config"]
    raw["application"]["submodules"][0]["submodules"][0]["config"]["seed"] = [8]
    del info["yaml_rules"]
    info["config_hash"] = config_hash(raw)
    (run / "run.json").write_text(json.dumps(info))
    (run / "config.json").unlink()
    collected = quark("collect", run)
    assert collected.exit_code == 0, collected.stderr
    assert "changed since the run was made" not in collected.stderr


@pytest.mark.parametrize(
    ("last", "problem"),
    [(2, None), (True, "`true` is not a number"), ("x", "'x' is not a number"), ([1.0], "[1.0] is not a number")],
)
def test_a_long_sweep_is_checked_value_by_value_up_to_its_last(quark, write_config, last, problem):
    """A sweep of 3,000 numbers: each is as written in the backlog, or the one that is not a number
    is refused, quoted (a whole number for a number is taken, true is not)."""
    sweep = [0.5 * (i + 1) for i in range(2999)] + [last]
    config = write_config(f"application:\n  module: toy_modules:Sleepy\n  config: {{seconds: {json.dumps(sweep)}}}\n")
    if problem is None:
        assert [item.levels[0].config["seconds"] for item in load_config(config).backlog] == sweep
        return
    result = quark("validate", config)
    assert result.exit_code == 2
    assert f"application.config.seconds: {problem}; give a number" in result.stderr, result.stderr
