"""Application: find a seeded random bitstring; its parameters depend on the chosen mapping."""

from __future__ import annotations

import random
import time
from pathlib import Path

from q2lib.bases import Application
from q2lib.core import Core
from q2lib.timing import end_time_measurement, start_time_measurement


class BitMatch(Application):
    def __init__(self) -> None:
        super().__init__("BitMatch")
        self.submodule_options = ["Label QUBO"]
        self.depending_parameters = True
        self.problem: dict | None = None

    def get_parameter_options(self) -> dict:
        return {
            "bits": {"values": [4, 6, 8], "description": "How long is the bitstring?"},
            "seed": {"values": [1, 2, 3], "description": "Seed of the bitstring"},
            "delay_ms": {"values": [0], "custom_input": True, "description": "Milliseconds to spend generating"},
        }

    def get_depending_parameters(self, option: str, config: dict) -> dict:
        if option == "Label QUBO":
            return {"weights": {"values": ["uniform", "ramp"], "description": "Weight of each bit"}}
        return {}

    def get_default_submodule(self, option: str) -> Core:
        raise NotImplementedError("BitMatch's submodules come from the module file")

    def preprocess(self, input_data, config: dict, **kwargs) -> tuple:
        start = start_time_measurement()
        time.sleep(config.get("delay_ms", 0) / 1000)
        bits = int(config["bits"])
        target = [int(bit) for bit in format(random.Random(config["seed"]).getrandbits(bits), f"0{bits}b")]
        weights = [float(i + 1) if config.get("weights") == "ramp" else 1.0 for i in range(bits)]
        self.problem = {"target": target, "weights": weights}
        # QUARK 2 hands the application a dict always ({} on a fresh run), so its modules index it freely
        self.metrics.add_metric("resumed_from_status", kwargs["previous_job_info"].get("quark_job_status"))
        self.metrics.add_metric("store_dir", kwargs["store_dir"])
        return self.problem, end_time_measurement(start)

    def save(self, path: str, iter_count: int) -> None:
        (Path(path) / f"target_{iter_count}.txt").write_text("".join(map(str, self.problem["target"])))

    def postprocess(self, input_data, config: dict, **kwargs) -> tuple:
        start = start_time_measurement()
        target, weights = self.problem["target"], self.problem["weights"]
        valid = isinstance(input_data, list) and len(input_data) == len(target)
        score = None
        if valid:
            score = sum(w for bit, t, w in zip(input_data, target, weights, strict=True) if bit == t) / sum(weights)
        self.metrics.add_metric_batch(
            {
                "application_score_value": score,
                "application_score_unit": "weighted fraction of bits",
                "application_score_type": "float",
                "processed_solution": input_data,
            }
        )
        return valid, end_time_measurement(start)
