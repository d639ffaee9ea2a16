"""The QUARK module contract: ``Core``, its ``Metrics`` and the ``Instruction`` enum.

A benchmark is a stack of modules M1 -> ... -> Mn. The BenchmarkManager calls each module's
``preprocess`` on the way down and its ``postprocess`` on the way back up. Nothing here touches the
disk: modules receive data and return data, and the engine decides what is stored.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from enum import Enum
from typing import Any


class Instruction(Enum):
    """What the BenchmarkManager does after a module phase returns.

    PROCEED: carry on walking the stack with the returned data.
    INTERRUPT: the phase handed a job to a service; store its job info and stop this stack here.
    """

    PROCEED = "PROCEED"
    INTERRUPT = "INTERRUPT"


class Metrics:
    """What one module reports about one stack run; it becomes the module's part of a record.

    Keys follow QUARK 2's module record (``module_name``, ``module_config``, times in ms) so that
    QUARK 2 tooling can read our ``results.json``.
    """

    def __init__(self, module_name: str) -> None:
        self.module_name = module_name
        self.module_config: dict[str, Any] = {}
        self.preprocessing_time = 0.0
        self.postprocessing_time = 0.0
        self.additional_metrics: dict[str, Any] = {}

    def set_module_config(self, config: dict[str, Any]) -> None:
        self.module_config = dict(config)

    def set_preprocessing_time(self, milliseconds: float) -> None:
        self.preprocessing_time = milliseconds

    def set_postprocessing_time(self, milliseconds: float) -> None:
        self.postprocessing_time = milliseconds

    def add_metric(self, name: str, value: Any) -> None:
        """Record one value; a later call with the same name replaces it."""
        self.additional_metrics[name] = value

    def add_metric_batch(self, metrics: dict[str, Any]) -> None:
        self.additional_metrics.update(metrics)

    def reset(self) -> None:
        """Forget the values of a previous stack so that one module instance can serve many."""
        self.module_config = {}
        self.preprocessing_time = 0.0
        self.postprocessing_time = 0.0
        self.additional_metrics = {}

    def get(self) -> dict[str, Any]:
        """The module record as QUARK 2 writes it (without the ``submodule`` key)."""
        return {
            "module_name": self.module_name,
            "module_config": copy.deepcopy(self.module_config),
            "preprocessing_time": self.preprocessing_time,
            "preprocessing_time_unit": "ms",
            "postprocessing_time": self.postprocessing_time,
            "postprocessing_time_unit": "ms",
            "total_time": self.preprocessing_time + self.postprocessing_time,
            "total_time_unit": "ms",
            **copy.deepcopy(self.additional_metrics),
        }


class Core:
    """Base class of every module in a benchmark stack.

    A module declares its parameters in ``get_parameter_options`` (the config is validated against
    it), the names of the modules that may follow it in ``submodule_options`` (built by
    ``get_default_submodule``), and transforms data in ``preprocess`` / ``postprocess``. Both phases
    return ``(data, seconds)``; the default implementations pass the data through unchanged.
    """

    #: Names of the modules allowed directly below this one; empty for a leaf.
    submodule_options: list[str] = []

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__
        self.metrics = Metrics(self.name)
        self.submodule_options = list(type(self).submodule_options)

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        """Parameters this module accepts.

        Each entry maps a name to ``{"values": [...], "default": ..., "description": "..."}``.
        ``values`` lists the allowed values; add ``"custom_input": True`` to accept others of the
        default's type.
        """
        return {}

    def get_default_submodule(self, option: str) -> Core:
        """Build the module named ``option`` that may follow this one."""
        raise ValueError(f"{self.name} has no submodule {option!r}; choose one of {self.submodule_options}")

    def get_available_submodule_options(self) -> list[str]:
        return list(self.submodule_options)

    def preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        """Turn the data from the module above into the input of the module below."""
        return input_data, 0.0

    def postprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        """Turn the result of the module below into the result handed to the module above."""
        return input_data, 0.0


def timed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Call ``function`` and return ``(its result, seconds it took)``; for ``(data, seconds)`` phases."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start
