"""GHZ state preparation: the smallest benchmark whose ideal answer is known exactly.

Stack: ``GHZ`` (application) -> ``GHZCircuit`` (mapping) -> a device. Data between the levels:

* down: ``GHZ`` -> ``{"n_qubits": n}`` -> ``GHZCircuit`` -> ``qat.core.Circuit`` -> device;
* up: device -> ``{"counts", "shots", "nbqbits"}`` -> ``GHZCircuit`` adds ``circuit_depth`` and
  ``n_gates`` -> ``GHZ``, which scores how much of the shots landed in |0...0> or |1...1>.

A noiseless simulator puts every shot there (population 1.0); noise or a faulty backend lowers it.
"""

from __future__ import annotations

import functools
from typing import Any

from quark_cli.core import Core, timed
from quark_cli.modules import DEVICE_OPTIONS, build_submodule, positive_int, settings

#: Largest GHZ state accepted: the devices simulate it exactly, 2**26 amplitudes (a 26-qubit run
#: took 7 s and 2.3 GB here; each further qubit doubles both).
MAX_QUBITS = 26


@functools.lru_cache(maxsize=32)
def ghz_circuit(n_qubits: int) -> Any:
    """The GHZ circuit on ``n_qubits``: H on qubit 0, then CNOT(i, i+1) down the chain.

    No explicit measurement: myQLM treats measure instructions as intermediate measurements, which
    forbid exact (``nbshots=0``) simulation; the device's job measures all qubits at the end.
    Cached per process (myQLM's ``to_circ`` costs milliseconds): callers must not modify it.
    """
    from qat.lang.AQASM import CNOT, H, Program

    program = Program()
    qubits = program.qalloc(positive_int(n_qubits, "n_qubits"))
    H(qubits[0])
    for i in range(n_qubits - 1):
        CNOT(qubits[i], qubits[i + 1])
    return program.to_circ()


def circuit_stats(circuit: Any) -> dict[str, int]:
    """``circuit_depth`` and ``n_gates`` of a circuit, as the mappings report them."""
    from quark_cli.modules.devices import circuit_depth

    return {"circuit_depth": circuit_depth(circuit), "n_gates": len(circuit.ops)}


class GHZ(Core):
    """Application: prepare an n-qubit GHZ state and measure how often the ideal outcomes appear."""

    uses_store_dir = False  # writes no files

    submodule_options = ["GHZCircuit"]

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {
            "n_qubits": {
                "values": [2, 3, 4, 5, 6, 8, 10],
                "default": 3,
                "custom_input": True,
                "min": 1,
                "max": MAX_QUBITS,
                "description": "Number of qubits of the GHZ state",
            }
        }

    def get_default_submodule(self, option: str) -> Core:
        return build_submodule(self, option)

    def preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        n_qubits = positive_int(settings(self, config)["n_qubits"], "n_qubits")
        return {"n_qubits": n_qubits}, 0.0

    def postprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        return timed(self._score, input_data)

    def _score(self, data: dict[str, Any]) -> dict[str, Any]:
        counts, shots, n = data["counts"], data["shots"], data["nbqbits"]
        p_all_zero = counts.get("0" * n, 0) / shots
        p_all_one = counts.get("1" * n, 0) / shots
        metrics = {
            "population": p_all_zero + p_all_one,
            "p_all_zero": p_all_zero,
            "p_all_one": p_all_one,
            "shots": shots,
            "circuit_depth": data.get("circuit_depth"),
        }
        self.metrics.add_metric_batch(metrics)
        return {**metrics, "counts": counts}


class GHZCircuit(Core):
    """Mapping: ``{"n_qubits": n}`` -> the GHZ circuit; reports its depth and gate count."""

    uses_store_dir = False  # writes no files

    submodule_options = list(DEVICE_OPTIONS)

    def get_default_submodule(self, option: str) -> Core:
        return build_submodule(self, option)

    def preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        from quark_cli.modules.devices import warm_myqlm

        warm_myqlm()
        return timed(self._circuit, input_data["n_qubits"])

    def _circuit(self, n_qubits: int) -> Any:
        circuit = ghz_circuit(n_qubits)
        self.metrics.add_metric_batch(circuit_stats(circuit))
        return circuit

    def postprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        # Rebuilt from the result, not remembered from preprocess: a stack continued after an
        # asynchronous job may call postprocess on a fresh instance.
        return timed(self._annotate, input_data)

    def _annotate(self, data: dict[str, Any]) -> dict[str, Any]:
        stats = circuit_stats(ghz_circuit(data["nbqbits"]))
        self.metrics.add_metric_batch(stats)
        return {**data, **stats}
