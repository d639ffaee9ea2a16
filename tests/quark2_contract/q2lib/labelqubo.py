"""Mapping: one QUBO variable per bit, numbered in the iteration order of a set of labels.

Like QUARK 2's QubovertQUBO, the numbering follows Python's salted string hashes, so it changes with
``PYTHONHASHSEED``: a collect that rebuilt this mapping under another salt would read the solver's
sample back under other numbers.
"""

from __future__ import annotations

import logging

from q2lib.bases import Mapping
from q2lib.core import Core
from q2lib.timing import end_time_measurement, start_time_measurement


def numbering(bits: int) -> dict[str, int]:
    labels = {f"x{i}" for i in range(bits)}
    return {label: number for number, label in enumerate(labels)}


class LabelQUBO(Mapping):
    def __init__(self) -> None:
        super().__init__()
        self.submodule_options = ["Minimizer"]
        self.numbers: dict[str, int] = {}

    def get_parameter_options(self) -> dict:
        return {"penalty": {"values": [1.0, 2.0], "description": "Energy of a wrong bit"}}

    def get_default_submodule(self, option: str) -> Core:
        raise NotImplementedError("LabelQUBO's submodules come from the module file")

    def preprocess(self, input_data, config: dict, **kwargs) -> tuple:
        previous = kwargs.get("previous_job_info") or {}
        self.metrics.add_metric("previous_level_of", previous.get("module_name"))
        return super().preprocess(input_data, config, **kwargs)

    def map(self, problem: dict, config: dict) -> tuple:
        start = start_time_measurement()
        logging.info("mapping %d bits", len(problem["target"]))  # a bare call, as QUARK 2's modules make
        self.numbers = numbering(len(problem["target"]))
        penalty = config.get("penalty", 1.0)
        qubo = {}
        for i, (bit, weight) in enumerate(zip(problem["target"], problem["weights"], strict=True)):
            number = self.numbers[f"x{i}"]
            qubo[(number, number)] = -weight * penalty if bit else weight * penalty
        return {"Q": qubo}, end_time_measurement(start)

    def reverse_map(self, solution: dict) -> tuple:
        start = start_time_measurement()
        bits = [solution[self.numbers[f"x{i}"]] for i in range(len(self.numbers))]
        return bits, end_time_measurement(start)
