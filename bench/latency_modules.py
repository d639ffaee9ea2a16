"""A job service with a fixed latency per status call, and the modules that use it.

The benches need thousands of jobs whose status costs what a remote call costs (50 ms by default)
without a real service: ``LatencyJobManager`` keeps each job's state in a file in its job folder
and sleeps ``QUARK_BENCH_LATENCY`` seconds in every ``get_status``, like one round trip (and
``QUARK_BENCH_RESULT_LATENCY``, default 0, in every ``get_result``, ``QUARK_BENCH_SUBMIT_LATENCY``,
default 0, in every submission).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from quark_cli import AsyncCore, AsyncJobManager, AsyncStatus, Core

STATE = "bench.json"


def latency() -> float:
    return float(os.environ.get("QUARK_BENCH_LATENCY", "0.05"))


#: The batch service's list of finished jobs (one key a line), in the run directory.
DONE_LIST = "bench-service-done.txt"


def finish_all(run_dir: Path, limit: int | None = None) -> int:
    """Play the service: every job of the run not done yet (the first ``limit`` of those, in key
    order) is done now.

    Each job's own file says DONE, and its key is added to the service's list of finished jobs,
    which ``BatchLatencyJobManager.get_statuses`` reads. Returns how many were done now.
    """
    done = []
    for path in sorted(Path(run_dir).glob(f"jobs/*/{STATE}")):
        if limit is not None and len(done) == limit:
            break
        state = json.loads(path.read_text())
        if state.get("state") != "DONE":
            path.write_text(json.dumps({**state, "state": "DONE"}))
            done.append(path)
    with open(Path(run_dir) / DONE_LIST, "a", encoding="utf-8") as listing:
        listing.writelines(f"{path.parent.name}\n" for path in done)
    return len(done)


def fail_every(run_dir: Path, nth: int) -> int:
    """Play the service: every ``nth`` job of the run (in key order, the first included) fails.
    Returns how many failed."""
    failed = 0
    for position, path in enumerate(sorted(Path(run_dir).glob(f"jobs/*/{STATE}"))):
        if position % nth == 0:
            path.write_text(json.dumps({**json.loads(path.read_text()), "state": "FAILED"}))
            failed += 1
    return failed


class LatencyJobManager(AsyncJobManager):
    """File-backed jobs; every status call waits like a network round trip."""

    def submit(self, value: Any) -> dict[str, Any]:
        time.sleep(float(os.environ.get("QUARK_BENCH_SUBMIT_LATENCY", "0")))
        self.context.job_dir.mkdir(parents=True, exist_ok=True)
        state = {"state": "SUBMITTED", "value": value, "submission_id": self.context.submission_id}
        temp = self.context.job_dir / f".{STATE}.tmp"  # whole or absent, as a service's job is, after a kill
        temp.write_text(json.dumps(state))
        temp.replace(self.context.job_dir / STATE)
        return {"id": self.context.key}

    def find_submitted(self, intent: dict[str, Any]) -> dict[str, Any] | None:
        """The service keeps the submission id it accepted with the job."""
        path = self.context.job_dir / STATE
        accepted = json.loads(path.read_text()) if path.exists() else {}
        if intent.get("submission_id") and accepted.get("submission_id") == intent["submission_id"]:
            return {"id": self.context.key}
        return None

    def get_status(self) -> AsyncStatus:
        if latency():
            time.sleep(latency())
        return AsyncStatus(json.loads((self.context.job_dir / STATE).read_text())["state"])

    def get_result(self) -> Any:
        time.sleep(float(os.environ.get("QUARK_BENCH_RESULT_LATENCY", "0")))
        return 2 * json.loads((self.context.job_dir / STATE).read_text()).get("value", 1)


class BatchLatencyJobManager(LatencyJobManager):
    """The same service with a batch status call, as IBM's job listing and SLURM's squeue are: one
    round trip answers for every job (the list of finished ones)."""

    @classmethod
    def get_statuses(cls, managers: list[AsyncJobManager]) -> list[AsyncStatus]:
        """One listing for the batch: quark-cli polls each run on its own, so every job of one call
        is of the same run (whose folder holds the service's list of finished jobs)."""
        if latency():
            time.sleep(latency())
        if not managers:
            return []
        listing = managers[0].context.job_dir.parent.parent / DONE_LIST
        done = set(listing.read_text().split()) if listing.exists() else set()
        finished, submitted = AsyncStatus.DONE, AsyncStatus.SUBMITTED
        return [finished if manager.context.key in done else submitted for manager in managers]


class Counter(Core):
    """Application: hands nothing down, reports what comes back up."""

    uses_store_dir = False  # writes no files
    reusable = True  # keeps nothing from one stack to the next

    submodule_options = ["LatencyDevice", "BatchLatencyDevice", "SyncDevice"]

    def get_default_submodule(self, option: str) -> Core:
        devices = {"LatencyDevice": LatencyDevice, "BatchLatencyDevice": BatchLatencyDevice, "SyncDevice": SyncDevice}
        return devices[option]()

    def postprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        self.metrics.add_metric("doubled", input_data)
        return input_data, 0.0


class _Numbered:
    uses_store_dir = False  # writes no files
    reusable = True  # keeps nothing from one stack to the next

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {"n": {"values": [1], "default": 1, "custom_input": True, "description": "the number"}}


class SyncDevice(_Numbered, Core):
    """Leaf that doubles at once: stacks that finish in ``quark submit``."""

    def preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        return 2 * config["n"], 0.0


class LatencyDevice(_Numbered, AsyncCore):
    """Async leaf: the service doubles the number."""

    JobManager = LatencyJobManager

    def __init__(self, name: str | None = None) -> None:
        AsyncCore.__init__(self, interruptable="PRE", name=name)

    def submit_preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> Any:
        return self.job_manager.submit(config["n"])


class BatchLatencyDevice(LatencyDevice):
    """``LatencyDevice`` on the service with a batch status call."""

    JobManager = BatchLatencyJobManager
