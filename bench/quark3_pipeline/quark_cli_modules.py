"""The bench pipeline as quark-cli modules: application -> (mapping ->) asynchronous device.

Named in the bench's configs by ``module: quark3_pipeline.quark_cli_modules:Class``; the device's
jobs go to the same file service as the QUARK 3 plugin's.
"""

from __future__ import annotations

from typing import Any

from quark3_pipeline import service
from quark_cli import AsyncCore, AsyncJobManager, AsyncStatus, Core


class FileServiceJobManager(AsyncJobManager):
    """A job is a file of the bench's service; its id and the service's folder are saved with it."""

    def submit(self, operation: str, payload: Any, label: str = "") -> dict[str, str]:
        directory = service.service_dir()
        return {"id": service.submit(directory, operation, payload, label), "service": str(directory)}

    def get_status(self) -> AsyncStatus:
        state = service.status(self._job_info["service"], self._job_info["id"])
        if state == "FAILED":
            self.status_reason = "the service does not know the job"
        return AsyncStatus(state)

    def get_result(self) -> Any:
        return service.result(self._job_info["service"], self._job_info["id"])


class BenchApp(Core):
    """Application: the number ``index`` down; its square, as a metric, up."""

    uses_store_dir = False  # writes no files
    reusable = True  # keeps nothing from one stack to the next

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {"index": {"values": [0], "default": 0, "custom_input": True, "description": "the number"}}

    def preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        return config["index"], 0.0

    def postprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        self.metrics.add_metric("squared", input_data)
        return input_data, 0.0


class BenchMid(Core):
    """Mapping: passes data through both ways (gives the tree a level to branch below the root)."""

    uses_store_dir = False  # writes no files
    reusable = True  # keeps nothing from one stack to the next


class BenchDevice(AsyncCore):
    """Asynchronous device: squares the number as a job on the file service."""

    uses_store_dir = False  # writes no files
    reusable = True  # keeps nothing from one stack to the next

    JobManager = FileServiceJobManager

    def __init__(self, name: str | None = None) -> None:
        AsyncCore.__init__(self, interruptable="PRE", name=name)

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {"label": {"values": [""], "default": "", "custom_input": True, "description": "the job's label"}}

    def submit_preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> dict[str, str]:
        return self.job_manager.submit("square", input_data, config.get("label", ""))
