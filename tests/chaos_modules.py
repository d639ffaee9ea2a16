"""Modules and a job manager that go wrong on purpose, where a seed says: the fault-injection test.

Each stack draws its fault from ``random.Random(f"{seed}-{case}")`` (``planned_fault``), so the test
knows what every stack should end as. The service finishes a job as soon as it is submitted.
"""

from __future__ import annotations

import json
import random
from typing import Any

from quark_cli import AsyncCore, AsyncJobManager, AsyncStatus, Core

#: Every fault, where it strikes and what it should leave: FINISHED, FAILED (naming a source) or pending.
FAULTS = {
    "none": "FINISHED",
    "nan_metric": "FINISHED",  # NaN is written as null: not a fault of the stack
    "app_raises": "FAILED",
    "bytes_metric": "FAILED",
    "submit_raises": "FAILED",
    "submit_returns_none": "FAILED",
    "status_garbage": "INTERRUPTED",
    "status_raises": "INTERRUPTED",
    "result_raises": "FAILED",
    "collect_raises": "FAILED",
    "job_fails": "FAILED",
}
#: Who each fault's message must name.
SOURCES = {
    "app_raises": "ChaosApp",
    "bytes_metric": "ChaosApp",
    "submit_raises": "ChaosDevice.submit_preprocess",
    "submit_returns_none": "ChaosJobManager._handle_submit_info",
    "status_garbage": "ChaosJobManager.get_status()",
    "status_raises": "ChaosJobManager.get_status() raised RuntimeError: status service crashed",
    "result_raises": "ChaosJobManager.get_result() raised RuntimeError: result store corrupt",
    "collect_raises": "ChaosDevice.collect_preprocess raised KeyError",
    "job_fails": "calibration lost",
}


def planned_fault(seed: int, case: int) -> str:
    """The fault of stack ``case`` of a run made with ``seed`` (seed 0: none at all)."""
    if seed == 0:
        return "none"
    return random.Random(f"{seed}-{case}").choice(sorted(FAULTS))


class ChaosJobManager(AsyncJobManager):
    """A job is a file; the service finishes it at once. Its fault is written in the job's file."""

    def _job(self) -> dict[str, Any]:
        return json.loads((self.context.job_dir / "chaos.json").read_text())

    def submit(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.context.job_dir.mkdir(parents=True, exist_ok=True)
        state = "FAILED" if payload["fault"] == "job_fails" else "DONE"
        (self.context.job_dir / "chaos.json").write_text(json.dumps({"state": state, **payload}))
        return {"id": f"chaos-{self.context.key}"}

    def get_status(self) -> AsyncStatus:
        job = self._job()
        if job["fault"] == "status_garbage":
            return "DONE"  # type: ignore[return-value]  # the fault under test
        if job["fault"] == "status_raises":
            raise RuntimeError("status service crashed")
        if job["state"] == "FAILED":
            self.status_reason = "calibration lost"
        return AsyncStatus(job["state"])

    def get_result(self) -> Any:
        job = self._job()
        if job["fault"] == "result_raises":
            raise RuntimeError("result store corrupt")
        return job["case"] * 2


class ChaosApp(Core):
    """Application: its case down (with the fault it draws), the device's answer up as a metric."""

    submodule_options = ["ChaosDevice"]

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {
            "seed": {"values": [0], "default": 0, "custom_input": True, "description": "fault seed"},
            "case": {"values": [0], "default": 0, "custom_input": True, "description": "stack number"},
        }

    def get_default_submodule(self, option: str) -> Core:
        return ChaosDevice()

    def preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        fault = planned_fault(config["seed"], config["case"])
        if fault == "app_raises":
            raise ValueError("cannot build the problem")
        return {"case": config["case"], "fault": fault}, 0.0

    def postprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        fault = planned_fault(config["seed"], config["case"])
        value = {"bytes_metric": b"\x00raw", "nan_metric": float("nan")}.get(fault, input_data)
        self.metrics.add_metric("answer", value)
        return input_data, 0.0


class ChaosDevice(AsyncCore, Core):
    """Async device (PRE): the job goes to the chaos service."""

    JobManager = ChaosJobManager

    def __init__(self, name: str | None = None) -> None:
        AsyncCore.__init__(self, interruptable="PRE", name=name)

    def submit_preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> Any:
        if input_data["fault"] == "submit_raises":
            raise ConnectionError("[Errno 111] Connection refused")
        answer = self.job_manager.submit(input_data)
        return None if input_data["fault"] == "submit_returns_none" else answer

    def collect_preprocess(self, server_result: Any, config: dict[str, Any], **kwargs: Any) -> Any:
        if kwargs["input_data"]["fault"] == "collect_raises":
            return {}["missing"]
        return server_result
