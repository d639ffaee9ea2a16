"""The walking skeleton as a user meets it: install, --help, --version, modules, quark run."""

from __future__ import annotations

import json
import subprocess
import sys

from quark_cli.modules.maxcut import brute_force_maxcut, cut_value, random_graph


def test_help_and_import_do_not_load_myqlm():
    code = (
        "import sys\n"
        "import quark_cli, quark_cli.cli\n"
        "from typer.testing import CliRunner\n"
        "result = CliRunner().invoke(quark_cli.cli.app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'submit' in result.output\n"
        "loaded = sorted(m for m in sys.modules if m == 'qat' or m.startswith(('qat.', 'qlmaas')))\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_version(quark):
    from quark_cli import __version__

    result = quark("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"quark-cli {__version__}"


def test_modules_lists_parameters_and_submodules(quark):
    result = quark("modules", "--json")
    assert result.exit_code == 0
    described = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert described["QAOA"]["parameters"]["p"]["values"] == [1, 2, 3]
    assert "Sampler" in described["QAOA"]["submodules"]
    assert described["Sampler"]["parameters"]["shots"]["default"] == 1000
    text = quark("modules")
    assert "MaxCut" in text.stdout and "n_qubits" in text.stdout


def test_quark_run_maxcut_gives_one_record_per_item_and_repetition(quark, write_config, tmp_path):
    config = write_config(
        """
        application:
          name: MaxCut
          config: {nodes: [4, 5], graph_seed: [1, 2]}
          submodules:
            - name: QAOA
              config: {p: [1], optimizer: [fixed]}
              submodules: [{name: Sampler, config: {shots: [500], seed: [3]}}]
        repetitions: 2
        """
    )
    run = tmp_path / "run"
    result = quark("run", config, "-o", run)
    assert result.exit_code == 0, result.stderr
    assert "FINISHED" in result.stdout
    records = json.loads((run / "results.json").read_text())
    assert [(r["benchmark_backlog_item_number"], r["repetition"]) for r in records] == [
        (i, rep) for i in range(4) for rep in (1, 2)
    ]
    for record in records:
        app = record["module"]
        assert record["quark_job_status"] == "FINISHED"
        assert 0 < app["approximation_ratio"] <= 1
        settings = app["module_config"]
        edges = random_graph(settings["nodes"], settings["edge_probability"], settings["graph_seed"])
        assert app["optimal_cut"] == brute_force_maxcut(settings["nodes"], edges)
        assert app["best_cut"] == cut_value(edges, app["best_bitstring"])
        assert app["approximation_ratio"] == app["best_cut"] / app["optimal_cut"]


def test_brute_force_agrees_on_known_graphs():
    assert brute_force_maxcut(3, [(0, 1), (1, 2), (0, 2)]) == 2
    assert brute_force_maxcut(4, [(0, 1), (1, 2), (2, 3), (3, 0)]) == 4
    assert cut_value([(0, 1), (1, 2)], "010") == 2
