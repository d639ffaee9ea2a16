"""The bench pipeline as a QUARK 3 plugin: application -> (mapping ->) asynchronous device.

QUARK 3 has no job manager: a module that must wait returns ``Sleep(stored_data)`` from its
preprocess; QUARK 3 pickles the remaining pipeline tree and exits, and ``quark --resume-dir DIR``
calls that preprocess again with ``stored_data`` instead of the upstream data. So the device submits
on its first call and checks its job on every later one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quark.core import Core, Data, Failed, Sleep
from quark.interface_types import Other
from quark.plugin_manager import factory

from quark3_pipeline import service


@dataclass(frozen=True)
class Submitted:
    """What the device keeps across a Sleep: its job and the service holding it."""

    job_id: str
    service_dir: str


@dataclass
class BenchApp(Core):
    """Application: the number ``index`` down; its square, as a metric, up."""

    index: int = 0
    squared: Any = field(default=None, init=False)

    def preprocess(self, data: Any) -> Data:
        return Data(Other(self.index))

    def postprocess(self, data: Any) -> Data:
        self.squared = data.data
        return Data(None)

    def get_metrics(self) -> dict:
        return {"squared": self.squared}


@dataclass
class BenchMid(Core):
    """Mapping: passes data through both ways (gives the tree a level to branch below the root)."""

    def preprocess(self, data: Any) -> Data:
        return Data(data)

    def postprocess(self, data: Any) -> Data:
        return Data(data)


@dataclass
class BenchDevice(Core):
    """Asynchronous device: squares the number as a job on the file service."""

    label: str = ""
    job_id: str | None = field(default=None, init=False)
    result: Any = field(default=None, init=False)

    def preprocess(self, data: Any) -> Data | Sleep | Failed:
        if isinstance(data, Submitted):  # a resume: QUARK 3 hands back what Sleep stored
            state = service.status(data.service_dir, data.job_id)
            if state == "DONE":
                self.result = Other(service.result(data.service_dir, data.job_id))
                return Data(self.result)
            if state == "FAILED":
                return Failed(f"job {data.job_id} failed")
            return Sleep(data)
        directory = service.service_dir()
        self.job_id = service.submit(directory, "square", data.data, self.label)
        return Sleep(Submitted(self.job_id, str(directory)))

    def postprocess(self, data: Any) -> Data:
        # a leaf's postprocess receives None in QUARK 3: it hands up what its preprocess produced
        return Data(self.result)

    def get_metrics(self) -> dict:
        return {"job_id": self.job_id}


def register() -> None:
    """Called by QUARK 3 for each plugin named in a config's ``plugins``."""
    factory.register("bench_app", BenchApp)
    factory.register("bench_mid", BenchMid)
    factory.register("bench_device", BenchDevice)
