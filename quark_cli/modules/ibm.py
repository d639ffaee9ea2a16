"""``IBMSampler``: our ``Sampler`` upgraded by multiple inheritance to run on IBM Quantum Platform.

preprocess submits the circuit: it is converted to qiskit (``qat-qiskit``), measured on every qubit
(register ``meas``), transpiled to the backend's ISA (``optimization_level``) and sent as one
SamplerV2 job of ``shots`` shots. Collecting turns the job's ``BitArray`` into our device output
``{"counts", "shots", "nbqbits"}`` with qubit 0 first (qiskit writes qubit 0 last).

Unlike the myQLM devices, the counts are the service's own measurements: there is no seed.
"""

from __future__ import annotations

from typing import Any

from quark_cli.async_core import AsyncCore
from quark_cli.jobs.ibm import IBMAsyncJobManager
from quark_cli.jobs.ibm_service import DEFAULT_CHANNEL, DEFAULT_TIMEOUT
from quark_cli.modules import positive_int, settings
from quark_cli.modules.devices import Sampler

#: The measured register ``QuantumCircuit.measure_all`` adds.
REGISTER = "meas"


def to_qiskit(circuit: Any) -> Any:
    """A myQLM ``Circuit`` as a qiskit ``QuantumCircuit`` measured on every qubit into ``meas``.

    Qubit i stays qubit i; the conversion is qat-qiskit's ``qaptiva_to_qiskit``.
    """
    from qat.qiskit.converters import qaptiva_to_qiskit

    converted = qaptiva_to_qiskit(circuit)
    converted.measure_all()
    return converted


def transpile_for(circuit: Any, backend: Any, optimization_level: int) -> tuple[Any, dict[str, int]]:
    """The ISA circuit for ``backend`` and its figures: qubits used, depth, two-qubit gates.

    ``qubits_used`` counts the device qubits any operation touches; ``depth`` is qiskit's
    ``QuantumCircuit.depth()`` of the ISA circuit (barriers excluded).
    """
    from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager

    isa = generate_preset_pass_manager(optimization_level=optimization_level, backend=backend).run(circuit)
    used = {isa.find_bit(qubit).index for instruction in isa.data for qubit in instruction.qubits}
    two_qubit = sum(
        1
        for instruction in isa.data
        if instruction.operation.num_qubits == 2 and instruction.operation.name != "barrier"
    )
    depth = isa.depth(lambda instruction: instruction.operation.name != "barrier")
    return isa, {"qubits_used": len(used), "transpiled_depth": depth, "two_qubit_gates": two_qubit}


def counts_from_bitarray(result: Any, shots: int, nbqbits: int) -> dict[str, Any]:
    """Our device output from a ``PrimitiveResult`` of one SamplerV2 pub.

    Returns ``{"counts": {bitstring: count}, "shots": shots, "nbqbits": nbqbits}``, bitstrings with
    qubit 0 first (qiskit's are reversed), sorted. Raises ValueError when the result holds no
    ``meas`` register of ``nbqbits`` bits.
    """
    data = result[0].data
    bits = getattr(data, REGISTER, None)
    if bits is None or getattr(bits, "num_bits", None) != nbqbits:
        raise ValueError(f"the IBM Quantum result has no '{REGISTER}' register of {nbqbits} bits")
    counts = {key[::-1]: int(value) for key, value in bits.get_counts().items()}
    measured = sum(counts.values())
    if measured != shots:
        raise ValueError(f"the IBM Quantum result holds {measured} shots, not the {shots} asked for")
    return {"counts": dict(sorted(counts.items())), "shots": shots, "nbqbits": nbqbits}


class IBMSampler(AsyncCore, Sampler):
    """Runs the circuit on an IBM Quantum backend through the real ``qiskit-ibm-runtime`` client.

    Credentials: ``QISKIT_IBM_TOKEN`` or an account saved with ``QiskitRuntimeService.save_account``;
    never in the config.
    """

    JobManager = IBMAsyncJobManager

    def __init__(self, name: str | None = None) -> None:
        AsyncCore.__init__(self, interruptable="PRE", name=name)
        Sampler.__init__(self, name)

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {
            "backend": {
                "values": ["ibm_brisbane", "ibm_torino"],
                "default": "ibm_brisbane",
                "custom_input": True,
                "description": "Name of the IBM Quantum backend (a QPU of your instance)",
            },
            "shots": Sampler.get_parameter_options(self)["shots"],
            "optimization_level": {
                "values": [0, 1, 2, 3],
                "default": 1,
                "min": 0,
                "max": 3,
                "description": "Transpiler optimization level for the backend's ISA (qiskit's preset pass managers)",
            },
            "channel": {
                "values": [DEFAULT_CHANNEL, "ibm_cloud"],
                "default": DEFAULT_CHANNEL,
                "description": "The client's channel",
            },
            "instance": {
                "values": [""],
                "default": "",
                "custom_input": True,
                "description": "Instance CRN or name; empty: the saved account's or QISKIT_IBM_INSTANCE",
            },
            "url": {
                "values": [""],
                "default": "",
                "custom_input": True,
                "description": "Service base URL; the Runtime API is <url>/api/v1. Empty: the account's",
            },
            "timeout": {
                "values": [DEFAULT_TIMEOUT],
                "default": DEFAULT_TIMEOUT,
                "custom_input": True,
                "min": 1,
                "description": "Seconds to wait for one answer of the service",
            },
        }

    def submit_preprocess(self, circuit: Any, config: dict[str, Any], **kwargs: Any) -> Any:
        full = settings(self, config)
        shots = positive_int(full["shots"], "shots")
        backend = self.job_manager.backend()
        isa, figures = transpile_for(to_qiskit(circuit), backend, int(full["optimization_level"]))
        self.job_manager.set_info(transpiled=figures)
        return self.job_manager.submit(isa, shots, backend)

    def collect_preprocess(self, server_result: Any, config: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        full = settings(self, config)
        shots = positive_int(full["shots"], "shots")
        circuit = kwargs["input_data"]
        info = self.job_manager.job_info
        self.metrics.add_metric_batch(
            {
                "shots": shots,
                "qpu": f"{info.get('backend') or full['backend']} (IBM Quantum)",
                "backend": info.get("backend"),
            }
        )
        self.metrics.add_metric_batch(dict(info.get("transpiled") or {}))
        return counts_from_bitarray(server_result, shots, circuit.nbqbits)
