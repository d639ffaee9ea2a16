"""Device: this machine; its postprocess answers with QUARK 2's own ``Instruction``."""

from __future__ import annotations

from q2lib.bases import Device
from q2lib.manager import Instruction
from q2lib.timing import end_time_measurement, start_time_measurement


class CPU(Device):
    def __init__(self, device_name: str = "cpu") -> None:
        super().__init__(device_name)
        self.submodule_options = []

    def get_default_submodule(self, option: str) -> None:
        raise ValueError("This module has no submodules.")

    def postprocess(self, input_data, config: dict, **kwargs) -> tuple:
        start = start_time_measurement()
        self.metrics.add_metric("device", self.device_name)
        return Instruction.PROCEED, input_data, end_time_measurement(start)
