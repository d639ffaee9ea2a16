"""The built-in modules called directly, stacks walked by hand (no engine, no CLI)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from quark_cli.core import Core
from quark_cli.modules import APPLICATIONS, MODULES, ModuleLoadError, build_submodule, load_class
from quark_cli.modules.devices import Sampler, counts_from_result, job_for_circuit
from quark_cli.modules.ghz import GHZ, GHZCircuit, ghz_circuit
from quark_cli.modules.maxcut import MaxCut, brute_force_maxcut, cut_value, random_graph
from quark_cli.modules.qaoa import QAOA

C4 = [(0, 1), (1, 2), (2, 3), (0, 3)]


def walk(modules: list[Core], configs: list[dict[str, Any]]) -> Any:
    """Preprocess down the stack, postprocess back up, as the engine does for a synchronous stack."""
    data = None
    for module, config in zip(modules, configs, strict=True):
        data, seconds = module.preprocess(data, config)
        assert seconds >= 0
    for module, config in zip(reversed(modules), reversed(configs), strict=True):
        data, seconds = module.postprocess(data, config)
        assert seconds >= 0
    return data


def ghz_stack(n_qubits: int, shots: int = 1000, seed: int = 0) -> tuple[list[Core], Any]:
    ghz = GHZ()
    mapping = ghz.get_default_submodule("GHZCircuit")
    device = mapping.get_default_submodule("Sampler")
    modules = [ghz, mapping, device]
    return modules, walk(modules, [{"n_qubits": n_qubits}, {}, {"shots": shots, "seed": seed}])


@pytest.mark.parametrize("n_qubits", [3, 5])
def test_ghz_stack_is_perfect_on_the_noiseless_simulator(n_qubits: int) -> None:
    (ghz, mapping, device), result = ghz_stack(n_qubits)
    metrics = ghz.metrics.get()
    assert metrics["population"] == 1.0
    assert metrics["p_all_zero"] + metrics["p_all_one"] == 1.0
    assert 0.4 < metrics["p_all_zero"] < 0.6
    assert metrics["shots"] == 1000
    assert metrics["circuit_depth"] == n_qubits
    assert mapping.metrics.get()["circuit_depth"] == n_qubits
    assert mapping.metrics.get()["n_gates"] == n_qubits
    assert device.metrics.get()["shots"] == 1000
    assert device.metrics.get()["qpu"].startswith("default")
    assert set(result["counts"]) == {"0" * n_qubits, "1" * n_qubits}


def test_counts_are_deterministic_and_sum_to_shots() -> None:
    _, first = ghz_stack(4, shots=777, seed=3)
    _, again = ghz_stack(4, shots=777, seed=3)
    _, other = ghz_stack(4, shots=777, seed=4)
    assert first["counts"] == again["counts"]
    assert sum(first["counts"].values()) == 777
    assert first["counts"] != other["counts"]


def test_bitstrings_put_qubit_0_first_and_async_helpers_match_the_device() -> None:
    from qat.lang.AQASM import Program, X
    from qat.qpus import get_default_qpu

    program = Program()
    qubits = program.qalloc(3)
    X(qubits[0])
    output, _ = Sampler().preprocess(program.to_circ(), {"shots": 10})
    assert output == {"counts": {"100": 10}, "shots": 10, "nbqbits": 3}

    circuit = ghz_circuit(4)
    device_output, _ = Sampler().preprocess(circuit, {"shots": 500, "seed": 9})
    result = get_default_qpu().submit(job_for_circuit(circuit))
    assert counts_from_result(result, 500, 9, circuit.nbqbits) == device_output


def test_sampler_rejects_bad_shots() -> None:
    with pytest.raises(ValueError, match="shots"):
        Sampler().preprocess(ghz_circuit(2), {"shots": 0})


@pytest.mark.parametrize(
    ("n_nodes", "edges", "optimum"),
    [
        (3, [(0, 1), (1, 2), (0, 2)], 2),
        (4, C4, 4),
        (4, [(i, j) for i in range(4) for j in range(i + 1, 4)], 4),
        (4, [(0, 1), (1, 2), (2, 3)], 3),
    ],
)
def test_brute_force_maxcut(n_nodes: int, edges: list[tuple[int, int]], optimum: int) -> None:
    assert brute_force_maxcut(n_nodes, edges) == optimum


def test_cut_value() -> None:
    assert cut_value(C4, "0101") == 4
    assert cut_value(C4, "0011") == 2
    assert cut_value(C4, "0000") == 0
    assert cut_value([(0, 2)], "100") == 1


def test_random_graph_is_seeded_and_never_empty() -> None:
    assert random_graph(8, 0.5, 1) == random_graph(8, 0.5, 1)
    assert random_graph(8, 0.5, 1) != random_graph(8, 0.5, 2)
    assert random_graph(5, 0.0, 1) == [(0, 1)]
    assert len(random_graph(5, 1.0, 1)) == 10
    assert all(i < j for i, j in random_graph(10, 0.5, 3))


def maxcut_stack(maxcut_config: dict[str, Any], qaoa_config: dict[str, Any]) -> tuple[list[Core], Any]:
    app = MaxCut()
    solver = app.get_default_submodule("QAOA")
    device = solver.get_default_submodule("Sampler")
    modules = [app, solver, device]
    return modules, walk(modules, [maxcut_config, qaoa_config, {"shots": 1000, "seed": 0}])


def test_maxcut_qaoa_stack_reports_a_valid_approximation_ratio() -> None:
    (app, solver, _), result = maxcut_stack({"nodes": 5, "edge_probability": 0.5, "graph_seed": 1}, {"p": 1})
    metrics = app.metrics.get()
    assert 0 < metrics["approximation_ratio"] <= 1
    assert 0 < metrics["expected_cut_ratio"] <= 1
    assert metrics["best_cut"] == cut_value(random_graph(5, 0.5, 1), metrics["best_bitstring"])
    assert metrics["n_edges"] == len(random_graph(5, 0.5, 1))
    solver_metrics = solver.metrics.get()
    assert 0 < solver_metrics["circuit_evaluations"] <= 50
    assert len(solver_metrics["optimal_angles"]) == 2
    assert solver_metrics["expected_cut_noiseless"] > 0
    assert result["best_bitstring"] == metrics["best_bitstring"]


def test_qaoa_reaches_the_optimum_of_the_4_cycle() -> None:
    solver = QAOA()
    device = solver.get_default_submodule("Sampler")
    circuit, _ = solver.preprocess({"n_nodes": 4, "edges": C4}, {"p": 1, "optimizer": "COBYLA"})
    counts, _ = device.preprocess(circuit, {"shots": 1000, "seed": 0})
    result, _ = solver.postprocess(counts, {})
    assert result["best_cut"] == 4
    assert result["best_bitstring"] in {"0101", "1010"}
    # p=1 QAOA on a ring cannot beat 3/4 of the edges in expectation; COBYLA gets there.
    assert solver.metrics.get()["expected_cut_noiseless"] == pytest.approx(3.0, abs=1e-3)


def test_fixed_angles_need_no_optimiser_evaluations() -> None:
    (app, solver, _), _ = maxcut_stack({"nodes": 4}, {"p": 2, "optimizer": "fixed"})
    assert solver.metrics.get()["circuit_evaluations"] == 0
    assert solver.metrics.get()["optimal_angles"] == [0.488, 0.898, 0.555, 0.293]
    assert 0 < app.metrics.get()["approximation_ratio"] <= 1


def test_registry_loads_classes_and_names_what_is_missing() -> None:
    assert set(APPLICATIONS) <= set(MODULES)
    assert load_class("Sampler") is Sampler
    assert load_class("quark_cli.modules.ghz:GHZCircuit") is GHZCircuit
    assert isinstance(GHZCircuit().get_default_submodule("Sampler"), Sampler)
    assert GHZCircuit().submodule_options == QAOA().submodule_options
    assert "LocalAsyncSampler" in QAOA().submodule_options
    with pytest.raises(ModuleLoadError, match="does_not_exist"):
        load_class("quark_cli.modules.does_not_exist:Nope")
    with pytest.raises(ModuleLoadError, match="Nope"):
        load_class("Nope")
    with pytest.raises(ModuleLoadError, match="QAOA"):
        build_submodule(GHZ(), "QAOA")


@pytest.mark.parametrize(
    "module",
    [
        "quark_cli.modules",
        *sorted({path.partition(":")[0] for path in MODULES.values()} - {"quark_cli.modules.async_devices"}),
    ],
)
def test_importing_modules_loads_no_simulator(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'qat', 'numpy', 'scipy', 'networkx'})\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
