"""QUARK 2 style ``Core``: abstract, phases return ms, children built from ``sub_options`` when set."""

from __future__ import annotations

import importlib
import os
import sys
from abc import ABC, abstractmethod
from typing import final

from q2lib.metrics import Metrics


class Core(ABC):
    def __init__(self, name: str | None = None) -> None:
        self.submodule_options: list[str] = []
        self.sub_options: list[dict] = []
        self.depending_parameters = False
        self.preprocessed_input = None
        self.postprocessed_input = None
        self.name = name or self.__class__.__name__
        self.metrics = Metrics(self.name, os.path.relpath(sys.modules[self.__module__].__file__))

    @abstractmethod
    def get_parameter_options(self) -> dict: ...

    @abstractmethod
    def get_default_submodule(self, option: str) -> Core: ...

    def get_available_submodules(self, option: list) -> list:
        return []

    def get_depending_parameters(self, option: str, config: dict) -> dict:
        return {}

    @final
    def get_submodule(self, option: str) -> Core:
        if not self.sub_options:
            return self.get_default_submodule(option)
        for entry in self.sub_options:
            if entry["name"] == option:
                if entry.get("dir") and entry["dir"] not in sys.path:
                    sys.path.append(entry["dir"])
                cls = getattr(importlib.import_module(entry["module"]), entry.get("class", option))
                instance = cls(**(entry.get("args") or {}))
                instance.sub_options = entry.get("submodules") or []
                return instance
        raise ValueError(f"{option} not found in {self.sub_options}")

    @final
    def get_available_submodule_options(self) -> list:
        if not self.sub_options:
            return self.submodule_options
        return [entry["name"] for entry in self.sub_options]

    @staticmethod
    def get_requirements() -> list:
        return []

    def preprocess(self, input_data, config: dict, **kwargs) -> tuple:
        return input_data, 0.0

    def postprocess(self, input_data, config: dict, **kwargs) -> tuple:
        return input_data, 0.0
