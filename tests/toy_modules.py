"""Small pure-Python modules and a job manager whose jobs finish or fail on command.

They let the engine's tests drive every async path (PRE, POST, PREPOST, two async modules, failures)
in milliseconds and without a real service. ``ControlledJobManager`` is a real backend in miniature:
submissions are files in the job's folder; ``finish_job`` / ``fail_job`` play the service.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from quark_cli import AsyncCore, AsyncJobManager, AsyncStatus, Core
from quark_cli.jobs.base import TransientServiceError
from quark_cli.modules.devices import Sampler, counts_from_result, job_for_circuit

CALLS: list[str] = []
SERVICE_FILE = "controlled.json"


def _service_path(job_dir: Path) -> Path:
    return Path(job_dir) / SERVICE_FILE


def _write(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(value))
    os.replace(temp, path)


def finish_job(job_dir: Path) -> None:
    """Play the service: the job in ``job_dir`` completes."""
    path = _service_path(job_dir)
    state = json.loads(path.read_text())
    state["state"] = "DONE"
    _write(path, state)


def fail_job(job_dir: Path, reason: str = "node crashed") -> None:
    """Play the service: the job in ``job_dir`` fails with ``reason``."""
    path = _service_path(job_dir)
    state = json.loads(path.read_text())
    state.update(state="FAILED", reason=reason)
    _write(path, state)


def submissions(run_dir: Path) -> int:
    """How many times anything was submitted in a run (each submission bumps its job's counter; a retried
    job's earlier attempts keep theirs in ``attempts/<n>/``)."""
    files = [*Path(run_dir).glob(f"jobs/*/{SERVICE_FILE}"), *Path(run_dir).glob(f"jobs/*/attempts/*/{SERVICE_FILE}")]
    return sum(json.loads(p.read_text())["submissions"] for p in files)


class ControlledJobManager(AsyncJobManager):
    """Jobs are files; they stay SUBMITTED until a test finishes or fails them.

    With ``auto_finish`` in the module config a job is DONE at once (for ``quark run``). Each
    submission bumps ``submissions`` in the job folder's service file, so tests count duplicates.
    """

    def submit(self, operation: str, payload: Any) -> dict[str, Any]:
        path = _service_path(self.context.job_dir)
        previous = json.loads(path.read_text())["submissions"] if path.exists() else 0
        state = "DONE" if self.context.config.get("auto_finish") else "SUBMITTED"
        job_id = f"ctl-{self.context.key}-{previous + 1}"
        _write(
            path,
            {
                "state": state,
                "operation": operation,
                "payload": payload,
                "submissions": previous + 1,
                "id": job_id,
                "submission_id": self.context.submission_id,
            },
        )
        return {"id": job_id}

    def find_submitted(self, intent: dict[str, Any]) -> dict[str, Any] | None:
        """The service's file is its acceptance: it names the submission it accepted last."""
        path = _service_path(self.context.job_dir)
        state = json.loads(path.read_text()) if path.exists() else {}
        if intent.get("submission_id") and state.get("submission_id") == intent["submission_id"]:
            return {"id": state["id"]}
        return None

    def _state(self) -> dict[str, Any]:
        return json.loads(_service_path(self.context.job_dir).read_text())

    def get_status(self) -> AsyncStatus:
        state = self._state()
        if state["id"] != self._job_info.get("id"):
            self.status_reason = "unknown job"
            return AsyncStatus.FAILED
        if state["state"] == "FAILED":
            self.status_reason = state.get("reason")
        return AsyncStatus(state["state"])

    def get_result(self) -> Any:
        state = self._state()
        if state["operation"] == "square":
            return [x * x for x in state["payload"]]
        if state["operation"] == "increment":
            return [x + 1 for x in state["payload"]]
        if state["operation"] == "minimize_qubo":  # payload: [[i, j, weight], ...]; answer as JSON would give it
            variables = sorted({v for i, j, _ in state["payload"] for v in (i, j)})
            best = min(
                itertools.product((0, 1), repeat=len(variables)),
                key=lambda values: sum(
                    w * values[variables.index(i)] * values[variables.index(j)] for i, j, w in state["payload"]
                ),
            )
            return {str(variable): value for variable, value in zip(variables, best, strict=True)}
        if state["operation"] == "qat":
            from qat.core import Job
            from qat.qpus import get_default_qpu

            job = Job.load(str(self.context.job_dir / "job.bin"))
            return get_default_qpu().submit(job)
        raise ValueError(state["operation"])


class Numbers(Core):
    """Application: a list of numbers down, their sum (and the list) up."""

    submodule_options = ["Double", "AsyncSquare"]

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {
            "start": {"values": [1, 2, 3], "default": 1, "description": "first number"},
            "count": {"values": [1, 2, 3, 4], "default": 3, "description": "how many"},
        }

    def get_default_submodule(self, option: str) -> Core:
        return {"Double": Double, "AsyncSquare": AsyncSquare}[option]()

    def preprocess(self, input_data, config, **kwargs):
        CALLS.append("Numbers.pre")
        return list(range(config["start"], config["start"] + config["count"])), 0.0

    def postprocess(self, input_data, config, **kwargs):
        CALLS.append("Numbers.post")
        self.metrics.add_metric_batch({"total": sum(input_data), "values": input_data})
        return input_data, 0.0


class Double(Core):
    """Mapping: doubles on the way down, passes through on the way up."""

    submodule_options = ["AsyncSquare", "Recorder"]

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {"factor": {"values": [2, 3], "default": 2, "description": "multiplier"}}

    def get_default_submodule(self, option: str) -> Core:
        return {"AsyncSquare": AsyncSquare, "Recorder": Recorder}[option]()

    def preprocess(self, input_data, config, **kwargs):
        CALLS.append("Double.pre")
        return [x * config["factor"] for x in input_data], 0.0

    def postprocess(self, input_data, config, **kwargs):
        CALLS.append("Double.post")
        self.metrics.add_metric("largest", max(input_data))
        return input_data, 0.0


class Recorder(Core):
    """Synchronous leaf: squares in preprocess."""

    def preprocess(self, input_data, config, **kwargs):
        CALLS.append("Recorder.pre")
        return [x * x for x in input_data], 0.0

    def postprocess(self, input_data, config, **kwargs):
        CALLS.append("Recorder.post")
        return input_data, 0.0


class _ControlledOptions:
    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {"auto_finish": {"values": [False, True], "default": False, "description": "jobs finish at once"}}


class AsyncSquare(_ControlledOptions, AsyncCore):
    """Async leaf (PRE): the service squares the numbers."""

    JobManager = ControlledJobManager

    def __init__(self, name: str | None = None) -> None:
        AsyncCore.__init__(self, interruptable="PRE", name=name)

    def submit_preprocess(self, input_data, config, **kwargs):
        CALLS.append("AsyncSquare.submit_pre")
        return self.job_manager.submit("square", input_data)

    def collect_preprocess(self, server_result):
        CALLS.append("AsyncSquare.collect_pre")
        self.metrics.add_metric("squared", len(server_result))
        return server_result


class AsyncDouble(_ControlledOptions, AsyncCore, Double):
    """Double upgraded to an async POST module by multiple inheritance, as in the seed."""

    JobManager = ControlledJobManager
    submodule_options = ["AsyncSquare", "Recorder"]

    def __init__(self, name: str | None = None) -> None:
        AsyncCore.__init__(self, interruptable="POST", name=name)
        Double.__init__(self, name)

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {**Double.get_parameter_options(self), **_ControlledOptions.get_parameter_options(self)}

    def submit_postprocess(self, input_data, config, **kwargs):
        CALLS.append("AsyncDouble.submit_post")
        return self.job_manager.submit("increment", input_data)

    def collect_postprocess(self, server_result, config, **kwargs):
        CALLS.append("AsyncDouble.collect_post")
        self.metrics.add_metric("largest", max(server_result))
        return server_result


class AsyncPrePost(_ControlledOptions, AsyncCore):
    """Async leaf (PREPOST): squares in a first job, increments in a second."""

    JobManager = ControlledJobManager

    def __init__(self, name: str | None = None) -> None:
        AsyncCore.__init__(self, interruptable="PREPOST", name=name)

    def submit_preprocess(self, input_data, config, **kwargs):
        return self.job_manager.submit("square", input_data)

    def submit_postprocess(self, input_data, config, **kwargs):
        return self.job_manager.submit("increment", input_data)


class NoSubmit(AsyncCore):
    """Declares PRE but forgets submit_preprocess: must be refused."""

    JobManager = ControlledJobManager

    def __init__(self, name: str | None = None) -> None:
        AsyncCore.__init__(self, interruptable="PRE", name=name)


class ControlledSampler(AsyncCore, Sampler):
    """The built-in Sampler upgraded by multiple inheritance onto the controlled service."""

    JobManager = ControlledJobManager

    def __init__(self, name: str | None = None) -> None:
        AsyncCore.__init__(self, interruptable="PRE", name=name)
        Sampler.__init__(self, name)

    def submit_preprocess(self, circuit, config, **kwargs):
        self.job_manager.context.job_dir.mkdir(parents=True, exist_ok=True)
        job_for_circuit(circuit).dump(str(self.job_manager.context.job_dir / "job.bin"))
        self.nbqbits = circuit.nbqbits
        return self.job_manager.submit("qat", None)

    def collect_preprocess(self, server_result, config, input_data=None, **kwargs):
        full = {**{n: o["default"] for n, o in self.get_parameter_options().items()}, **config}
        return counts_from_result(server_result, full["shots"], full["seed"], input_data.nbqbits)


class Sleepy(Core):
    """Application that takes ``seconds`` in its preprocess: keeps a command busy (holding the run) for a while."""

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {"seconds": {"values": [1.0], "default": 1.0, "custom_input": True, "description": "how long"}}

    def preprocess(self, input_data, config, **kwargs):
        import time

        time.sleep(config["seconds"])
        return config["seconds"], config["seconds"]

    def postprocess(self, input_data, config, **kwargs):
        self.metrics.add_metric("slept", input_data)
        return input_data, 0.0


class FetchCountingJobManager(ControlledJobManager):
    """Counts result fetches and how many run at once; each takes 0.2 s, like a download."""

    fetches: ClassVar[list[str]] = []
    running = 0
    most_at_once = 0
    _lock = threading.Lock()

    def get_result(self) -> Any:
        cls = FetchCountingJobManager
        with cls._lock:
            cls.running += 1
            cls.most_at_once = max(cls.most_at_once, cls.running)
            cls.fetches.append(self.context.key)
        time.sleep(0.2)
        with cls._lock:
            cls.running -= 1
        return super().get_result()


class SlowResultSquare(AsyncSquare):
    """AsyncSquare whose results take a while to fetch."""

    JobManager = FetchCountingJobManager


def _signal_once(marker: Path, name: str, raises: type[Exception] = RuntimeError) -> None:
    """Unless ``marker`` exists: make it, send this process SIG``name``, and raise what that raises
    as an error of our own (``raises``), as myQLM's plugins do with a ``PluginException``."""
    if marker.exists():
        return
    marker.write_text("signalled")
    try:
        os.kill(os.getpid(), getattr(signal, f"SIG{name}"))
        time.sleep(30)  # the signal's exception comes first
    except KeyboardInterrupt as error:
        raise raises(f"PluginException: {type(error).__name__}: {error}") from None


class SwallowsSignals(Core):
    """Application whose preprocess, the first time, sends its own process ``signal`` (INT or TERM)
    and turns what that raises into an error of its own, as myQLM's plugins do ("PluginException:
    Terminated: 15"); the file ``marker`` says it did. Later walks compute 7."""

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {
            "signal": {"values": ["TERM"], "default": "TERM", "custom_input": True, "description": "INT or TERM"},
            "marker": {"values": [""], "default": "", "custom_input": True, "description": "file made at the signal"},
        }

    def preprocess(self, input_data, config, **kwargs):
        _signal_once(Path(config["marker"]), config["signal"])
        return 7, 0.0

    def postprocess(self, input_data, config, **kwargs):
        self.metrics.add_metric("value", input_data)
        return input_data, 0.0


class SignalledPollJobManager(ControlledJobManager):
    """A controlled job whose first status call sends its own process the signal named by
    ``$QUARK_TEST_SIGNAL`` (INT or TERM) and turns what that raises into an error of its own: a
    RuntimeError, or with ``$QUARK_TEST_SIGNAL_RAISES=transient`` a TransientServiceError (as a
    client that retries network errors may)."""

    def get_status(self) -> AsyncStatus:
        if os.environ.get("QUARK_TEST_SIGNAL"):
            transient = os.environ.get("QUARK_TEST_SIGNAL_RAISES") == "transient"
            raises = TransientServiceError if transient else RuntimeError
            _signal_once(self.context.job_dir / "signalled", os.environ["QUARK_TEST_SIGNAL"], raises)
        return super().get_status()


class SignalledPollSquare(AsyncSquare):
    """AsyncSquare whose job's first poll meets a signal (``SignalledPollJobManager``)."""

    JobManager = SignalledPollJobManager


class SignalledOptions(Numbers):
    """Numbers whose parameter listing (read while the config is checked), once, sends its own process
    the signal named by ``$QUARK_TEST_SIGNAL`` and turns it into an error of its own; the file
    ``$QUARK_TEST_SIGNAL_MARKER`` says it did."""

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        if os.environ.get("QUARK_TEST_SIGNAL"):
            _signal_once(Path(os.environ["QUARK_TEST_SIGNAL_MARKER"]), os.environ["QUARK_TEST_SIGNAL"])
        return super().get_parameter_options()


#: Every module of the reuse tests as it is constructed (its class name), in order.
BUILT: list[str] = []


class ReusableNumbers(Numbers):
    """Numbers, built once for many stacks (``reusable``); ``fail`` makes its postprocess raise."""

    reusable = True
    submodule_options = ["ReusableSquare", "AsyncSquare"]

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        BUILT.append(type(self).__name__)

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {**super().get_parameter_options(), "fail": {"values": [False, True, "transient"], "default": False}}

    def get_default_submodule(self, option: str) -> Core:
        return {"ReusableSquare": ReusableSquare, "AsyncSquare": AsyncSquare}[option]()

    def postprocess(self, input_data, config, **kwargs):
        if config["fail"]:
            self.leftover = "from a failed stack"
            if config["fail"] == "transient":  # the stack stays INTERRUPTED, for the next collect
                raise TransientServiceError("the service is down")
            raise RuntimeError("asked to fail")
        if getattr(self, "leftover", None):
            raise RuntimeError(f"built once, yet it kept {self.leftover!r}")
        return super().postprocess(input_data, config, **kwargs)


class ReusableSquare(AsyncSquare):
    """AsyncSquare, built once for many stacks."""

    reusable = True

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        BUILT.append(type(self).__name__)


class TokenExpiringJobManager(ControlledJobManager):
    """A remote service (each status call takes 0.3 s, so the jobs are polled on threads) whose token
    is refused after 0.05 s for the job of stack ``002-r1``: the refusal comes back once every poll
    has started, while the others' answers are still on their way."""

    def get_status(self) -> AsyncStatus:
        if self.context.key.startswith("002-r1-"):
            from quark_cli.errors import ServiceAuthError

            time.sleep(0.05)
            raise ServiceAuthError("token expired")
        time.sleep(0.3)
        return super().get_status()


class TokenExpiringSquare(AsyncSquare):
    """AsyncSquare on a service whose token expires while it is polled."""

    JobManager = TokenExpiringJobManager
