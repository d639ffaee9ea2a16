"""Asynchronous myQLM devices: the built-in ``Sampler`` upgraded by multiple inheritance (the seed's way).

Each submits ``job_for_circuit(circuit)`` (the exact distribution, ``nbshots=0``) as ONE job and,
when collecting, draws the shots with ``counts_from_result``, exactly as the synchronous ``Sampler``
does, so equal seeds give equal counts whichever backend computed the distribution.
"""

from __future__ import annotations

from typing import Any

from quark_cli.async_core import AsyncCore
from quark_cli.jobs.local import LocalAsyncJobManager
from quark_cli.jobs.qaptiva import QaptivaAsyncJobManager
from quark_cli.jobs.slurm import SlurmAsyncJobManager
from quark_cli.modules import positive_int, settings
from quark_cli.modules.devices import Sampler, counts_from_result, job_for_circuit


class _AsyncSampler(AsyncCore, Sampler):
    """The shared part: submit the circuit's job in preprocess, sample its result when collected."""

    def __init__(self, name: str | None = None) -> None:
        AsyncCore.__init__(self, interruptable="PRE", name=name)
        Sampler.__init__(self, name)

    def submit_preprocess(self, circuit: Any, config: dict[str, Any], **kwargs: Any) -> Any:
        return self.job_manager.submit(job_for_circuit(circuit))

    def collect_preprocess(self, server_result: Any, config: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        full = settings(self, config)
        shots = positive_int(full["shots"], "shots")
        circuit = kwargs["input_data"]
        self.metrics.add_metric_batch({"shots": shots, "qpu": self.qpu_label(full)})
        return counts_from_result(server_result, shots, full["seed"], circuit.nbqbits)

    def qpu_label(self, config: dict[str, Any]) -> str:
        return type(self).__name__


class LocalAsyncSampler(_AsyncSampler):
    """Runs the circuit on this machine, detached: ``quark submit`` returns while it computes.

    Jobs use myQLM's default QPU; ``workers`` bounds how many run at once (default: all cores).
    """

    JobManager = LocalAsyncJobManager

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        options = {name: option for name, option in Sampler.get_parameter_options(self).items() if name != "qpu"}
        options["workers"] = {
            "values": [0, 1, 2, 4],
            "default": 0,
            "custom_input": True,
            "min": 0,
            "max": 256,
            "description": "How many jobs run at once on this machine; 0 means one per core",
        }
        return options

    def qpu_label(self, config: dict[str, Any]) -> str:
        return "default (local async)"


class QaptivaSampler(_AsyncSampler):
    """Runs the circuit on an Eviden Qaptiva (QLMaaS) service through the real ``qat.qlmaas`` client."""

    JobManager = QaptivaAsyncJobManager

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        options = {name: option for name, option in Sampler.get_parameter_options(self).items() if name != "qpu"}
        options.update(
            {
                "hostname": {
                    "values": ["localhost"],
                    "default": "localhost",
                    "custom_input": True,
                    "description": "Host name of the Qaptiva service",
                },
                "port": {
                    "values": [443],
                    "default": 443,
                    "custom_input": True,
                    "min": 1,
                    "max": 65535,
                    "description": "HTTPS port of the Qaptiva service",
                },
                "check_host": {
                    "values": [True, False],
                    "default": True,
                    "description": "Verify the service's TLS certificate",
                },
                "timeout": {
                    "values": [30],
                    "default": 30,
                    "custom_input": True,
                    "min": 1,
                    "description": "Seconds to wait for one answer of the service",
                },
                "qpu": {
                    "values": ["qat.qpus:LinAlg"],
                    "default": "qat.qpus:LinAlg",
                    "custom_input": True,
                    "description": "Remote QPU, as 'module:Class' on the service",
                },
            }
        )
        return options

    def qpu_label(self, config: dict[str, Any]) -> str:
        return f"{config['qpu']} on {config['hostname']}:{config['port']}"


class SlurmSampler(_AsyncSampler):
    """Runs the circuit as a job in a SLURM cluster's queue (``sbatch``), on myQLM's default QPU.

    The run directory must be on a filesystem the nodes share, with the same Python environment
    on the nodes; the job script stays in the job's folder (``slurm.sh``).
    """

    JobManager = SlurmAsyncJobManager

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        options = {name: option for name, option in Sampler.get_parameter_options(self).items() if name != "qpu"}
        options.update(
            {
                "partition": {
                    "values": [""],
                    "default": "",
                    "custom_input": True,
                    "description": "SLURM partition (sbatch --partition); empty: the cluster's default",
                },
                "time_limit": {
                    "values": ["00:10:00", "01:00:00", "1-00:00:00"],
                    "default": "01:00:00",
                    "custom_input": True,
                    "description": "Time limit of each job (sbatch --time: MM, HH:MM:SS or D-HH:MM:SS)",
                },
                "cpus": {
                    "values": [1, 2, 4, 8],
                    "default": 1,
                    "custom_input": True,
                    "min": 1,
                    "description": "CPUs of each job (sbatch --cpus-per-task)",
                },
                "memory": {
                    "values": ["", "4G", "16G"],
                    "default": "",
                    "custom_input": True,
                    "description": "Memory of each job (sbatch --mem, e.g. 4G); empty: the cluster's default",
                },
                "account": {
                    "values": [""],
                    "default": "",
                    "custom_input": True,
                    "description": "Account charged (sbatch --account); empty: your default account",
                },
                "extra_sbatch": {
                    "values": [[]],
                    "default": [],
                    "custom_input": True,
                    "description": "Further sbatch options, one per list entry, e.g. [--qos=debug, --hold]",
                },
                "result_grace": {
                    "values": [300],
                    "default": 300,
                    "custom_input": True,
                    "min": 0,
                    "description": "Seconds after a job's end to wait for its result file on a shared filesystem",
                },
            }
        )
        return options

    def qpu_label(self, config: dict[str, Any]) -> str:
        return f"default (SLURM, partition {config['partition'] or 'default'})"
