"""Config loading: QUARK 2 format, backlog expansion, stable hash, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from quark_cli.config import config_hash, load_config

MAXCUT = """
application:
  name: MaxCut
  config: {nodes: [4, 5], edge_probability: [0.5]}
  submodules:
    - name: QAOA
      config: {p: [1, 2], optimizer: [fixed]}
      submodules:
        - name: Sampler
          config: {shots: [100, 1000]}
repetitions: 3
"""


def test_backlog_is_the_product_of_parameter_lists(write_config):
    config = load_config(write_config(MAXCUT))
    assert len(config.backlog) == 2 * 2 * 2
    assert config.repetitions == 3
    first = config.backlog[0]
    assert first.module_names == ["MaxCut", "QAOA", "Sampler"]
    assert first.levels[0].config == {"edge_probability": 0.5, "graph_seed": 1, "nodes": 4}
    assert first.levels[2].config == {"qpu": "default", "seed": 0, "shots": 100}
    assert [item.index for item in config.backlog] == list(range(8))


def test_backlog_is_numbered_in_quark2_order(write_config):
    """QUARK 2's order: a module's parameter combinations (config key order, last varies fastest)
    outermost, then its branches, recursively."""
    config = load_config(
        write_config(
            """
            application:
              name: MaxCut
              config: {nodes: [4, 5], edge_probability: [0.3, 0.5]}
              submodules:
                - name: QAOA
                  config: {p: [1, 2], optimizer: [fixed]}
                  submodules: [{name: Sampler, config: {seed: [1]}}, {name: Sampler, config: {seed: [2, 3]}}]
            """
        )
    )
    numbered = [
        (
            i.levels[0].config["nodes"],
            i.levels[0].config["edge_probability"],
            i.levels[1].config["p"],
            i.levels[2].config["seed"],
        )
        for i in config.backlog
    ]
    expected = [
        (nodes, probability, p, seed)
        for nodes in (4, 5)
        for probability in (0.3, 0.5)
        for p in (1, 2)
        for seed in (1, 2, 3)
    ]
    assert numbered == expected
    assert list(config.backlog[0].levels[0].config) == ["nodes", "edge_probability", "graph_seed"]


def test_runs_of_quark_cli_0_1_keep_their_numbering(write_config):
    """Branches outermost and parameters by name: how 0.1.0 numbered the stacks it submitted."""
    path = write_config(
        """
        application:
          name: GHZ
          config: {n_qubits: [2, 3]}
          submodules:
            - name: GHZCircuit
              submodules: [{name: Sampler, config: {seed: [1]}}, {name: Sampler, config: {seed: [2]}}]
        """
    )
    legacy = load_config(path, backlog_order="legacy")
    assert [(i.levels[0].config["n_qubits"], i.levels[2].config["seed"]) for i in legacy.backlog] == [
        (2, 1),
        (3, 1),
        (2, 2),
        (3, 2),
    ]


def test_branches_below_the_root_are_separate_stacks(write_config):
    config = load_config(
        write_config(
            """
            application:
              name: GHZ
              config: {n_qubits: [2, 3]}
              submodules:
                - name: GHZCircuit
                  submodules: [{name: Sampler, config: {seed: [1]}}, {name: Sampler, config: {seed: [2]}}]
            """
        )
    )
    assert [(i.levels[0].config["n_qubits"], i.levels[2].config["seed"]) for i in config.backlog] == [
        (2, 1),
        (2, 2),
        (3, 1),
        (3, 2),
    ]


def test_config_hash_is_the_same_in_every_process(write_config):
    path = write_config(MAXCUT)
    here = load_config(path).config_hash
    code = f"from quark_cli.config import load_config; print(load_config({str(path)!r}).config_hash)"
    for seed in ("0", "12345"):
        other = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        )
        assert other.stdout.strip() == here
    assert config_hash({"b": 1, "a": [1, 2]}) == config_hash({"a": [1, 2], "b": 1})


BAD_CONFIGS = [
    ("application: [unclosed", "not valid YAML (did not find expected ',' or ']'); fix the syntax there"),
    ("- just\n- a list\n", "must be a mapping with an 'application' key"),
    ("repetitions: 2\n", "application: missing"),
    ("application: {name: Nope}\n", "application.name: unknown application 'Nope'; available: ['GHZ', 'MaxCut']"),
    (
        "application: {name: GHZ, submodules: [{name: Sampler}]}\n",
        "application.submodules[0].name: GHZ has no submodule 'Sampler'; choose one of ['GHZCircuit']",
    ),
    ("application: {name: GHZ}\n", "application.submodules: GHZ needs a submodule; choose one of ['GHZCircuit']"),
    (
        "application: {name: GHZ, config: {qubits: [3]}, submodules: [{name: GHZCircuit, submodules: [{name: Sampler}]}]}",  # noqa: E501
        "application.config.qubits: unknown parameter of GHZ; known: ['n_qubits']",
    ),
    (
        "application: {name: MaxCut, config: {nodes: []}, submodules: [{name: QAOA, submodules: [{name: Sampler}]}]}",
        "application.config.nodes: empty list; give at least one value",
    ),
    (
        "application: {name: MaxCut, submodules: [{name: QAOA, config: {p: [7]}, submodules: [{name: Sampler}]}]}",
        "application.submodules[0].config.p: 7 is not allowed; choose from [1, 2, 3]",
    ),
    (
        "application: {name: MaxCut, config: {nodes: [six]}, submodules: [{name: QAOA, submodules: [{name: Sampler}]}]}",  # noqa: E501
        "application.config.nodes: 'six' is not a whole number; give a whole number or one of",
    ),
    ("application: {name: GHZ}\nrepetitions: 0\n", "repetitions: must be a whole number from 1 to 10000, not 0"),
    ("application: {name: GHZ}\nrepetitions: two\n", "repetitions: must be a whole number from 1 to 10000"),
    ("application: {name: GHZ}\napplication: {name: MaxCut}\n", "duplicate key 'application'"),
    ("application: {name: GHZ}\nbenchmark: 1\n", "benchmark: unknown key"),
    ("application: {module: 'no_such_pkg.mod:Thing'}\n", "application.module: cannot import 'no_such_pkg.mod:Thing'"),
    ("application: {name: GHZ, submodules: {name: GHZCircuit}}\n", "application.submodules: must be a list"),
    ("application: !!python/object:os.system {}\n", "line 1, column 14: the tag !!python/object:os.system has no use"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_config_gives_one_line_naming_the_field_and_exit_2(quark, write_config, tmp_path, text, message):
    path = write_config(text)
    result = quark("run", path, "-o", tmp_path / "run")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "run").exists()


def test_missing_config_file(quark, tmp_path):
    result = quark("submit", tmp_path / "absent.yml")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'absent.yml'}: no such file; give the path of a config.yml"


def test_debug_shows_the_traceback(quark, write_config):
    result = quark("--debug", "run", write_config("application: {name: Nope}\n"))
    assert result.exit_code == 2
    assert "Traceback" in result.stderr


def test_existing_run_dir_is_not_overwritten(quark, write_config, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "precious.txt").write_text("keep me")
    result = quark("run", write_config(MAXCUT), "-o", run)
    assert result.exit_code == 2
    assert "already exists and is not empty" in result.stderr
    assert (run / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in run.iterdir()) == ["precious.txt"]
