"""The synchronous myQLM device: the leaf of every built-in stack.

A device turns a ``qat.core.Circuit`` into measurement counts. It does so in two steps that are
public so that asynchronous devices (which submit the job to a service and collect the result
later) produce byte-identical counts:

1. ``job_for_circuit(circuit)``: the job asks for the exact distribution (``nbshots=0``) over all
   qubits, measured in the computational basis at the end of the circuit;
2. ``counts_from_result(result, shots, seed, nbqbits)``: ``shots`` samples drawn from that
   distribution with ``numpy.random.default_rng(seed)``.

Sampling ourselves, rather than asking the QPU for shots, makes the counts a pure function of the
distribution and the seed, whichever simulator or service computed the distribution.

Bitstrings put qubit 0 first: ``"100"`` means qubit 0 measured 1, qubits 1 and 2 measured 0.
"""

from __future__ import annotations

import importlib
from typing import Any

from quark_cli.core import Core, timed, warm_up
from quark_cli.modules import positive_int, settings


def _import_myqlm() -> None:
    from qat.lang.AQASM import Program  # noqa: F401
    from qat.qpus import get_default_qpu

    get_default_qpu()  # the first call imports the simulator's plugins


def warm_myqlm() -> None:
    """Import myQLM and build its default QPU once per process, outside any module's clock."""
    warm_up("myQLM", _import_myqlm)


def warm_numpy() -> None:
    """Import numpy once per process, outside any module's clock."""
    warm_up("numpy", lambda: importlib.import_module("numpy.random"))  # numpy 2 loads random lazily


def job_for_circuit(circuit: Any) -> Any:
    """The myQLM job of one device run: the exact distribution over all qubits (``nbshots=0``)."""
    return circuit.to_job(nbshots=0)


def distribution(result: Any, nbqbits: int) -> dict[str, float]:
    """``{bitstring: probability}`` of a ``nbshots=0`` result, qubit 0 first, sorted by bitstring.

    Equal states are merged and zero probabilities dropped, so the outcome depends only on the
    distribution, not on how a QPU happened to list it.
    """
    lsb_first = bool(getattr(result, "lsb_first", False))
    probabilities: dict[str, float] = {}
    for sample in result:
        probability = float(sample.probability or 0.0)
        if probability <= 0.0:
            continue
        bits = format(int(sample.state.int), f"0{nbqbits}b")
        if lsb_first:
            bits = bits[::-1]
        probabilities[bits] = probabilities.get(bits, 0.0) + probability
    return dict(sorted(probabilities.items()))


def counts_from_result(result: Any, shots: int, seed: int, nbqbits: int) -> dict[str, Any]:
    """The device output for a ``nbshots=0`` result: ``shots`` samples drawn with ``seed``.

    Returns ``{"counts": {bitstring: count}, "shots": shots, "nbqbits": nbqbits}``; ``counts`` holds
    only observed bitstrings (qubit 0 first), sorted, and sums to ``shots``. Sync and async devices
    both call this, so equal distributions and seeds give equal counts.
    """
    import numpy as np

    shots = positive_int(shots, "shots")
    probabilities = distribution(result, nbqbits)
    if not probabilities:
        raise ValueError("the QPU result holds no state with a positive probability")
    states = list(probabilities)
    weights = np.fromiter(probabilities.values(), dtype=float, count=len(states))
    drawn = np.random.default_rng(seed).multinomial(shots, weights / weights.sum())
    counts = {state: int(n) for state, n in zip(states, drawn, strict=True) if n}
    return {"counts": counts, "shots": shots, "nbqbits": nbqbits}


def circuit_depth(circuit: Any) -> int:
    """Number of time steps when every operation takes one step and waits for its qubits.

    Our own count because ``Circuit.depth()`` gives every gate zero time by default (0 for a GHZ
    circuit); a GHZ circuit on n qubits (H, then a chain of n-1 CNOTs) has depth n.
    """
    ready = [0] * circuit.nbqbits
    for op in circuit.ops:
        qubits = list(op.qbits or [])
        if qubits:
            step = max(ready[q] for q in qubits) + 1
            for q in qubits:
                ready[q] = step
    return max(ready, default=0)


def make_qpu(name: str) -> Any:
    """The QPU for the ``qpu`` option: ``"default"`` or a ``package.module:Class`` built without arguments."""
    if name == "default":
        from qat.qpus import get_default_qpu

        return get_default_qpu()
    module_name, sep, class_name = name.partition(":")
    if not sep:
        raise ValueError(f"qpu must be 'default' or 'package.module:Class', not {name!r}")
    return getattr(importlib.import_module(module_name), class_name)()


def qpu_name(qpu: Any, option: str) -> str:
    """A readable name of the QPU for the metrics, e.g. ``default (ScipyMinimizePlugin | ... | CLinalg)``."""
    return f"{option} ({qpu})" if option == "default" else option


class Sampler(Core):
    """Samples a circuit on a local myQLM QPU (noiseless by default): exact distribution, then shots.

    preprocess: ``qat.core.Circuit`` -> ``{"counts", "shots", "nbqbits"}``; postprocess passes it up.
    """

    uses_store_dir = False  # writes no files

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {
            "shots": {
                "values": [100, 1000, 10000],
                "default": 1000,
                "custom_input": True,
                "min": 1,
                "description": "How many measurements to draw from the circuit's distribution",
            },
            "seed": {
                "values": [0, 1, 2],
                "default": 0,
                "custom_input": True,
                "min": 0,
                "description": "Seed of the sampler's random generator; equal seeds give equal counts",
            },
            "qpu": {
                "values": ["default"],
                "default": "default",
                "custom_input": True,
                "description": "myQLM QPU: 'default' (qat.qpus.get_default_qpu) or 'package.module:Class'",
            },
        }

    def preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        full = settings(self, config)
        warm_numpy()
        if full["qpu"] == "default":
            warm_myqlm()
        return timed(self._sample, input_data, full)

    def _sample(self, circuit: Any, config: dict[str, Any]) -> dict[str, Any]:
        shots = positive_int(config["shots"], "shots")
        qpu = make_qpu(config["qpu"])
        result = qpu.submit(job_for_circuit(circuit))
        output = counts_from_result(result, shots, config["seed"], circuit.nbqbits)
        self.metrics.add_metric_batch({"shots": shots, "qpu": qpu_name(qpu, config["qpu"])})
        return output

    def postprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        return input_data, 0.0
