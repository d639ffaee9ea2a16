"""QUARK 2 style metrics: phase times in ms, ``total_time`` only after ``validate()``."""

from __future__ import annotations

from typing import Any


class Metrics:
    def __init__(self, module_name: str, module_src: str) -> None:
        self.module_name = module_name
        self.module_src = module_src
        self.module_config: dict[str, Any] | None = None
        self.preprocessing_time: float | None = None
        self.postprocessing_time: float | None = None
        self.total_time: float | None = None
        self.additional_metrics: dict[str, Any] = {}

    def validate(self) -> None:
        assert self.preprocessing_time is not None, "preprocessing time must be set before validate()"
        assert self.postprocessing_time is not None, "postprocessing time must be set before validate()"
        self.total_time = self.preprocessing_time + self.postprocessing_time

    def set_module_config(self, config: dict[str, Any]) -> None:
        self.module_config = config

    def set_preprocessing_time(self, value: float) -> None:
        self.preprocessing_time = value

    def set_postprocessing_time(self, value: float) -> None:
        self.postprocessing_time = value

    def add_metric(self, name: str, value: Any) -> None:
        self.additional_metrics[name] = value

    def add_metric_batch(self, values: dict[str, Any]) -> None:
        self.additional_metrics.update(values)

    def reset(self) -> None:
        self.preprocessing_time = None
        self.postprocessing_time = None
        self.additional_metrics = {}

    def get(self) -> dict[str, Any]:
        return {
            "module_name": self.module_name,
            "module_src": self.module_src,
            "module_config": self.module_config,
            "total_time": self.total_time,
            "total_time_unit": "ms",
            "preprocessing_time": self.preprocessing_time,
            "preprocessing_time_unit": "ms",
            "postprocessing_time": self.postprocessing_time,
            "postprocessing_time_unit": "ms",
            **self.additional_metrics,
        }
