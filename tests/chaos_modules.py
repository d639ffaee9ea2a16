"""Modules and a job manager that go wrong on purpose, where a seed says: the fault-injection test.

Each stack draws its fault from ``random.Random(f"{seed}-{case}")`` (``planned_fault``), so the test
knows what every stack should end as. The service finishes a job as soon as it is submitted.
"""

from __future__ import annotations

import json
import random
import threading
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
    "status_exits": "INTERRUPTED",  # SystemExit from get_status: no command may end with it
    "result_generator_exit": "FAILED",
    "app_base_exception": "FAILED",
    "manager_unreadable": "INTERRUPTED",  # from_job_info raises: this job only waits
    "reason_bytes": "FAILED",
    "numpy_id": "FINISHED",
    "lock_metric": "FAILED",
    "cyclic_metric": "FAILED",
    "huge_int_metric": "FAILED",
    "tuple_metric_name": "FINISHED",
    "markup_in_error": "FAILED",
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
    "status_exits": "ChaosJobManager.get_status() raised SystemExit: 3",
    "result_generator_exit": "ChaosJobManager.get_result() raised GeneratorExit",
    "app_base_exception": "ChaosApp.preprocess: Meltdown: reactor",
    "manager_unreadable": "ChaosJobManager.from_job_info() raised RuntimeError: cannot read its info",
    "reason_bytes": "b'HTTP 500 from the queue'",
    "lock_metric": "ChaosApp: its metrics cannot be read",
    "cyclic_metric": "ChaosApp: metric answer",
    "huge_int_metric": "ChaosApp: metric answer is an integer of more than 4000 digits",
    "markup_in_error": "ChaosApp.preprocess: ValueError: input not found: [/data/input]",
}


class Meltdown(BaseException):
    """Not an Exception: what careless code raises sometimes."""


def planned_fault(seed: int, case: int) -> str:
    """The fault of stack ``case`` of a run made with ``seed`` (seed 0: none at all)."""
    if seed == 0:
        return "none"
    return random.Random(f"{seed}-{case}").choice(sorted(FAULTS))


class ChaosJobManager(AsyncJobManager):
    """A job is a file; the service finishes it at once. Its fault is written in the job's file."""

    @classmethod
    def from_job_info(cls, job_info: dict[str, Any], context: Any = None) -> ChaosJobManager:
        manager = cls(context=context, job_info=job_info)
        if context is not None and (context.job_dir / "chaos.json").exists():
            if manager._job()["fault"] == "manager_unreadable":
                raise RuntimeError("cannot read its info")
        return manager

    def _handle_submit_info(self, value: dict[str, Any]) -> None:
        import numpy as np

        numpy_id = self._job()["fault"] == "numpy_id"
        self.set_info(id=np.int64(7) if numpy_id else value["id"])

    def _job(self) -> dict[str, Any]:
        return json.loads((self.context.job_dir / "chaos.json").read_text())

    def submit(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.context.job_dir.mkdir(parents=True, exist_ok=True)
        state = "FAILED" if payload["fault"] in ("job_fails", "reason_bytes") else "DONE"
        (self.context.job_dir / "chaos.json").write_text(json.dumps({"state": state, **payload}))
        return {"id": f"chaos-{self.context.key}"}

    def get_status(self) -> AsyncStatus:
        job = self._job()
        if job["fault"] == "status_garbage":
            return "DONE"  # type: ignore[return-value]  # the fault under test
        if job["fault"] == "status_raises":
            raise RuntimeError("status service crashed")
        if job["fault"] == "status_exits":
            raise SystemExit(3)
        if job["state"] == "FAILED":
            self.status_reason = b"HTTP 500 from the queue" if job["fault"] == "reason_bytes" else "calibration lost"
        return AsyncStatus(job["state"])

    def get_result(self) -> Any:
        job = self._job()
        if job["fault"] == "result_raises":
            raise RuntimeError("result store corrupt")
        if job["fault"] == "result_generator_exit":
            raise GeneratorExit
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
        if fault == "app_base_exception":
            raise Meltdown("reactor")
        if fault == "markup_in_error":
            raise ValueError("input not found: [/data/input]")
        return {"case": config["case"], "fault": fault}, 0.0

    def postprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        fault = planned_fault(config["seed"], config["case"])
        cycle: list[Any] = []
        cycle.append(cycle)
        odd = {
            "bytes_metric": b"\x00raw",
            "nan_metric": float("nan"),
            "lock_metric": threading.Lock(),
            "cyclic_metric": cycle,
            "huge_int_metric": 10**5000,
        }
        self.metrics.add_metric("answer", odd.get(fault, input_data))
        if fault == "tuple_metric_name":
            self.metrics.add_metric(("shots", "seed"), 1)
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
