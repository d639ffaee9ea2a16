"""Solver: the lowest-energy assignment of a small QUBO, by trying every one."""

from __future__ import annotations

import itertools

from q2lib.bases import Solver
from q2lib.core import Core
from q2lib.timing import end_time_measurement, start_time_measurement


def minimize(qubo: dict[tuple[int, int], float]) -> tuple[dict[int, int], float]:
    variables = sorted({v for pair in qubo for v in pair})
    best, best_energy = None, None
    for values in itertools.product((0, 1), repeat=len(variables)):
        sample = dict(zip(variables, values, strict=True))
        energy = sum(weight * sample[i] * sample[j] for (i, j), weight in qubo.items())
        if best_energy is None or energy < best_energy:
            best, best_energy = sample, energy
    return best, best_energy


class Minimizer(Solver):
    def __init__(self) -> None:
        super().__init__()
        self.submodule_options = ["Local CPU"]

    def get_parameter_options(self) -> dict:
        return {"restarts": {"values": [1, 2], "description": "How often to search (all give the same answer)"}}

    def get_default_submodule(self, option: str) -> Core:
        if option == "Local CPU":
            from q2lib.cpu import CPU

            return CPU()
        raise NotImplementedError(f"Device option {option} not implemented")

    def run(self, mapped_problem: dict, device_wrapper, config: dict, **kwargs) -> tuple:
        start = start_time_measurement()
        for _ in range(int(config.get("restarts", 1))):
            sample, energy = minimize(mapped_problem["Q"])
        return sample, end_time_measurement(start), {"energy": energy, "device_seen": device_wrapper.device_name}
