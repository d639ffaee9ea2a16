"""QUARK 2 style base classes: Application (``save``), Mapping, Solver (reads ``preprocessed_input``), Device."""

from __future__ import annotations

from abc import ABC, abstractmethod

from q2lib.core import Core
from q2lib.timing import end_time_measurement, start_time_measurement


class Application(Core, ABC):
    def __init__(self, application_name: str) -> None:
        super().__init__(application_name)
        self.application_name = self.name
        self.application = None

    @abstractmethod
    def save(self, path: str, iter_count: int) -> None: ...


class Mapping(Core, ABC):
    def preprocess(self, input_data, config: dict, **kwargs) -> tuple:
        return self.map(input_data, config)

    def postprocess(self, input_data, config: dict, **kwargs) -> tuple:
        return self.reverse_map(input_data)

    @abstractmethod
    def map(self, problem, config: dict) -> tuple: ...

    def reverse_map(self, solution) -> tuple:
        return solution, 0.0


class Solver(Core, ABC):
    def postprocess(self, input_data, config: dict, **kwargs) -> tuple:
        # QUARK 2's solvers rely on the manager having stored what their preprocess returned
        output, elapsed, additional = self.run(self.preprocessed_input, input_data, config, **kwargs)
        self.metrics.add_metric_batch(additional)
        return output, elapsed

    @abstractmethod
    def run(self, mapped_problem, device_wrapper, config: dict, **kwargs) -> tuple: ...


class Device(Core, ABC):
    def __init__(self, device_name: str) -> None:
        super().__init__(device_name)
        self.device = None
        self.config = None
        self.device_name = self.name

    def get_parameter_options(self) -> dict:
        return {}

    def preprocess(self, input_data, config: dict, **kwargs) -> tuple:
        start = start_time_measurement()
        self.config = config
        return self, end_time_measurement(start)

    def postprocess(self, input_data, config: dict, **kwargs) -> tuple:
        start = start_time_measurement()
        self.metrics.add_metric("device", self.device_name)
        return input_data, end_time_measurement(start)
