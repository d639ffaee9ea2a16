"""QAOA for MaxCut, with the angle optimisation done classically before the one device job.

Definition of ONE JOB (it matters for asynchronous devices): ``QAOA.preprocess`` chooses the angles
itself, on a noiseless exact simulation (myQLM's default QPU, ``nbshots=0``, the expected cut read
off the exact distribution), with scipy's COBYLA from fixed initial angles; or, with
``optimizer="fixed"``, it takes fixed literature angles and simulates nothing. It then hands the
final circuit with those angles to the device below, which samples it. That final sampling is the
one job an asynchronous device submits; the optimisation never waits in a queue.

Data between the levels:

* down: ``{"n_nodes", "edges"}`` -> ``QAOA`` -> ``qat.core.Circuit`` (n_nodes qubits) -> device;
* up: device ``{"counts", "shots", "nbqbits"}`` -> ``QAOA`` -> ``{"best_bitstring", "best_cut",
  "counts", "shots", "nbqbits", "optimal_angles"}`` -> ``MaxCut``.

Conventions: the cost is C = sum over edges of (1 - Z_i Z_j) / 2 (the cut value); layer k applies
exp(-i gamma_k C) then exp(-i beta_k sum X). Angles are listed as [gamma_1..gamma_p, beta_1..beta_p].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quark_cli.core import Core, timed, warm_up
from quark_cli.modules import DEVICE_OPTIONS, build_submodule, positive_int, settings
from quark_cli.modules.devices import warm_myqlm, warm_numpy
from quark_cli.modules.maxcut import all_cut_values, best_bitstring, cut_value

#: Fixed angles (gammas, betas) for p = 1, 2, 3 from Wurtz & Lykov, "The fixed angle conjecture for
#: QAOA on regular MaxCut graphs" (2021), for 3-regular graphs; a good, graph-independent start.
FIXED_ANGLES: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {
    1: ((0.616,), (0.393,)),
    2: ((0.488, 0.898), (0.555, 0.293)),
    3: ((0.422, 0.798, 0.937), (0.609, 0.459, 0.235)),
}


def fixed_angles(p: int) -> list[float]:
    """The literature angles for depth ``p`` as ``[gammas..., betas...]``."""
    if p not in FIXED_ANGLES:
        raise ValueError(f"no fixed angles for p={p}; choose one of {sorted(FIXED_ANGLES)}")
    gammas, betas = FIXED_ANGLES[p]
    return [*gammas, *betas]


def qaoa_circuit(n_nodes: int, edges: Sequence[Sequence[int]], angles: Sequence[float]) -> Any:
    """The depth-p QAOA circuit for ``angles = [gammas..., betas...]`` (p = len(angles) // 2)."""
    from qat.lang.AQASM import CNOT, RX, RZ, H, Program

    p = len(angles) // 2
    program = Program()
    qubits = program.qalloc(n_nodes)
    for q in qubits:
        H(q)
    for gamma, beta in zip(angles[:p], angles[p:], strict=True):
        for i, j in edges:  # exp(-i gamma (1 - Z_i Z_j) / 2) up to a global phase
            CNOT(qubits[i], qubits[j])
            RZ(-float(gamma))(qubits[j])
            CNOT(qubits[i], qubits[j])
        for q in qubits:
            RX(2 * float(beta))(q)
    return program.to_circ()


def expected_cut(qpu: Any, n_nodes: int, edges: Sequence[Sequence[int]], angles: Sequence[float], cuts: Any) -> float:
    """The exact expected cut of the QAOA state: one noiseless ``nbshots=0`` simulation."""
    result = qpu.submit(qaoa_circuit(n_nodes, edges, angles).to_job(nbshots=0))
    if getattr(result, "has_statevector", False) and not result.lsb_first:  # fast path of local QPUs
        import numpy as np

        return float(np.dot(np.abs(result.statevector) ** 2, cuts))
    return float(sum(sample.probability * cuts[sample.state.int] for sample in result))


def optimize_angles(n_nodes: int, edges: Sequence[Sequence[int]], p: int, maxiter: int) -> dict[str, Any]:
    """COBYLA from the fixed angles, maximising the exact expected cut; deterministic.

    Returns ``{"angles", "expected_cut", "evaluations"}``; evaluations counts the simulations.
    """
    from qat.qpus import get_default_qpu
    from scipy.optimize import minimize

    qpu = get_default_qpu()
    cuts = all_cut_values(n_nodes, edges)
    evaluations = 0

    def negative_cut(angles: Any) -> float:
        nonlocal evaluations
        evaluations += 1
        return -expected_cut(qpu, n_nodes, edges, angles, cuts)

    result = minimize(negative_cut, fixed_angles(p), method="COBYLA", options={"maxiter": maxiter, "rhobeg": 0.2})
    return {"angles": [float(a) for a in result.x], "expected_cut": float(-result.fun), "evaluations": evaluations}


class QAOA(Core):
    """Solver: QAOA angles found classically, then one sampling job of the final circuit on the device."""

    uses_store_dir = False  # writes no files

    submodule_options = list(DEVICE_OPTIONS)
    # Set by preprocess; postprocess needs the graph to score the device's samples.
    _edges: list[tuple[int, int]] | None = None
    _angles: list[float] | None = None

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {
            "p": {"values": [1, 2, 3], "default": 1, "description": "Number of QAOA layers"},
            "optimizer": {
                "values": ["COBYLA", "fixed"],
                "default": "COBYLA",
                "description": "COBYLA on an exact simulation, or fixed literature angles (no simulation)",
            },
            "maxiter": {
                "values": [50],
                "default": 50,
                "custom_input": True,
                "min": 1,
                "description": "Most iterations of the angle optimiser",
            },
        }

    def get_default_submodule(self, option: str) -> Core:
        return build_submodule(self, option)

    def preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        """Choose the angles and build the final circuit; seconds.

        When ``collect`` rebuilds this stack, ``previous_job_info`` (QAOA's own level of the saved
        record) already holds the angles this config optimised to: they are reused, not optimised
        again, and the time reported is the original optimisation's (the work this output cost).
        """
        full = settings(self, config)
        previous = kwargs.get("previous_job_info") or {}
        saved = _saved_angles(previous, config, full["p"])
        if saved is not None:
            circuit = self._prepare(input_data, full, saved)
            return circuit, float(previous.get("preprocessing_time") or 0.0) / 1000
        warm_numpy()
        warm_myqlm()
        if full["optimizer"] == "COBYLA":
            warm_up("scipy.optimize", _import_scipy_optimize)
        return timed(self._prepare, input_data, full)

    def _prepare(self, graph: dict[str, Any], config: dict[str, Any], found: dict[str, Any] | None = None) -> Any:
        n_nodes, edges = graph["n_nodes"], [tuple(edge) for edge in graph["edges"]]
        if found is None:
            found = _find_angles(n_nodes, edges, config)
        circuit = qaoa_circuit(n_nodes, edges, found["angles"])
        if found["expected_cut"] is None:  # one reporting simulation, not part of any optimiser
            from qat.qpus import get_default_qpu

            cuts = all_cut_values(n_nodes, edges)
            found["expected_cut"] = expected_cut(get_default_qpu(), n_nodes, edges, found["angles"], cuts)
        self._edges = edges
        self._angles = found["angles"]
        self.metrics.add_metric_batch(
            {
                "circuit_evaluations": found["evaluations"],
                "optimal_angles": found["angles"],
                "expected_cut_noiseless": found["expected_cut"],
            }
        )
        return circuit

    def postprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        return timed(self._best, input_data)

    def _best(self, data: dict[str, Any]) -> dict[str, Any]:
        if self._edges is None:
            raise RuntimeError(
                "QAOA.postprocess needs the graph from QAOA.preprocess; "
                "run preprocess on this instance first (it is deterministic, so re-running it is safe)"
            )
        best = best_bitstring(data["counts"], self._edges)
        return {
            **data,
            "best_bitstring": best,
            "best_cut": cut_value(self._edges, best),
            "optimal_angles": self._angles,
        }


def _import_scipy_optimize() -> None:
    from scipy.optimize import minimize  # noqa: F401


def _find_angles(n_nodes: int, edges: list[tuple[int, int]], config: dict[str, Any]) -> dict[str, Any]:
    """``{"angles", "expected_cut", "evaluations"}`` by the configured optimiser (None: not simulated yet)."""
    p = config["p"]
    if config["optimizer"] == "COBYLA":
        return optimize_angles(n_nodes, edges, p, positive_int(config["maxiter"], "maxiter"))
    if config["optimizer"] == "fixed":
        return {"angles": fixed_angles(p), "expected_cut": None, "evaluations": 0}
    raise ValueError(f"optimizer must be 'COBYLA' or 'fixed', not {config['optimizer']!r}")


def _saved_angles(previous: dict[str, Any], config: dict[str, Any], p: int) -> dict[str, Any] | None:
    """The angles, expected cut and evaluations QAOA's saved record level holds for this very config."""
    angles = previous.get("optimal_angles")
    if previous.get("module_config") != config or not isinstance(angles, list) or len(angles) != 2 * p:
        return None
    if not all(isinstance(angle, int | float) and not isinstance(angle, bool) for angle in angles):
        return None
    return {
        "angles": [float(angle) for angle in angles],
        "expected_cut": previous.get("expected_cut_noiseless"),
        "evaluations": previous.get("circuit_evaluations", 0),
    }
