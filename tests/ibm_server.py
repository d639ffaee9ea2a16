"""A local stand-in for IBM Quantum Platform, so tests can drive the real ``qiskit_ibm_runtime`` client offline.

Why: the code under test talks to IBM Quantum through the unmodified ``QiskitRuntimeService`` and
``SamplerV2`` (qiskit-ibm-runtime 0.51). The real service is remote, slow, costs money and cannot be told to
fail on demand; this one runs on 127.0.0.1, simulates jobs with qiskit's ``StatevectorSampler`` and lets a
test inject the faults the code must survive (failed, cancelled, too-long, lost jobs, 5xx answers lost after
the job was created, stalls, revoked tokens, a wrong API key, IAM or the API being down). It lives under
``tests/`` and is never imported by ``quark_cli``.

Two HTTPS listeners, each able to go down and come back on the same port (:meth:`StandInIBM.go_down`):

* IAM (``iam_port``): ``POST /identity/token`` with the form ``grant_type=urn:ibm:params:oauth:grant-type:
  apikey&apikey=KEY``. Right key: 200 and ``{"access_token": <JWT with iat/exp, unsigned>, "expires_in":
  3600, ...}``. Wrong key: 400 and ``{"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not
  be found.", ...}`` like real IAM.
* Everything else (``port``):

  - IBM Cloud Global Search: ``POST /v3/resources/search`` -> ``{"items": [one instance with our CRN, a plan
    id and a non-empty ``doc.extensions``]}`` (no ``search_cursor``: the client would loop on it).
  - IBM Cloud Global Catalog: ``GET /catalog/api/v1/{plan id}`` -> ``{"overview_ui": {"en":
    {"display_name": "Open"}}, "metadata": {"pricing": {"type": "free"}}}``.
  - Runtime API under ``/api/v1`` (``IBM-API-Version`` is accepted, not checked):
    ``GET /backends`` -> ``{"devices": [{name, status: {name: "online"}, queue_length, qubits,
    physical_qubits}]}``; ``GET /backends/{name}/configuration|properties|status``; ``GET
    /instances/usage``; ``POST /jobs`` (``{"program_id": "sampler", "backend", "tags", "params": {"pubs":
    [[QuantumCircuit (QPY), parameter values, shots]], "options", "version": 2, "support_qiskit": true}}``)
    -> ``{"id", "backend"}``; ``GET /jobs`` (``exclude_params``, ``limit``, ``offset``, ``pending``,
    repeated ``tags`` (a job must carry all of them), ``backend``, ``program``, ``session_id``,
    ``created_after``, ``created_before``, ``sort=ASC``) -> ``{"jobs": [...], "count": N}``, newest first;
    ``GET /jobs/{id}`` (``exclude_params``); ``GET /jobs/{id}/results``; ``GET /jobs/{id}/metrics``
    (``timestamps: {created, running, finished}``, ``usage``); ``POST /jobs/{id}/cancel`` (204, 409 once
    final, 404 unknown); ``PUT /jobs/{id}/tags`` (204).
  - Every request there needs ``Authorization: Bearer <a token this IAM issued>`` (else 401) and, under
    ``/api/v1``, ``Service-CRN: <instance>`` (else 403). Errors carry IBM Cloud's ``{"errors": [{"code",
    "message"}], "status_code"}`` body.

* ``POST /_standin/control`` (not IBM's; no token; served on BOTH listeners so it stays reachable while one
  part is down): JSON ``{"action": ..., ...}``, see :func:`control`.

Job records: ``{"id", "backend", "state": {"status", "reason", "reason_code"}, "status", "program": {"id"},
"created", "tags", "session_id": null, "runtime": "", "private": false, "cost", "usage", "user_id",
"estimated_running_time_seconds"}`` plus ``"params"`` unless ``exclude_params=true``. Statuses are spelled
like the real API (``Queued``, ``Running``, ``Completed``, ``Failed``, ``Cancelled``); the client upper-cases
them and maps COMPLETED -> DONE, FAILED -> ERROR, and CANCELLED with ``reason_code`` 1305 -> ERROR. All
times are UTC ISO 8601 with a ``Z``. A job is Queued for ``delay / 2`` seconds after submission (longer
while held), then Running (the simulation happens here) for at least ``delay / 2``, then Completed.
``GET /jobs/{id}/results`` of a Completed job is the ``RuntimeEncoder`` JSON of a ``PrimitiveResult`` of
``SamplerPubResult`` s (one per pub; data fields named after the circuit's classical registers, each a
``BitArray``; metadata ``circuit_metadata``, result metadata ``execution.execution_spans`` and ``version:
2``); of a failed / too-long job it is plain text (the client reads it to build its error message).

Simulation: each ISA circuit is cut down to the qubits its non-barrier instructions touch, then run with
``StatevectorSampler(seed=seed)``: the counts are the same for the same circuit, shots and seed. Only the
``sampler`` program is served (SamplerV2; the 0.50+ client-side ``executor`` primitives are not).

Backends: any ``qiskit_ibm_runtime.fake_provider`` fake by its ``backend_name`` (default ``fake_brisbane``,
127 qubits, ECR basis, and ``fake_manila``, 5 qubits, CX basis); the stand-in serves the fake's
``conf_*.json`` / ``props_*.json`` with ``backend_name`` replaced by the fake's name.

How a client connects (what the tests do)::

    for key, value in server.env().items():       # IAM_URL, GLOBAL_SEARCH_URL, GLOBAL_CATALOG_URL,
        monkeypatch.setenv(key, value)             # REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE
    service = QiskitRuntimeService(
        channel="ibm_quantum_platform", token=server.api_key, instance=server.instance, url=server.url,
        url_resolver=lambda url, instance, private_endpoint=False, channel="ibm_quantum_platform": url + "/api/v1",
    )

* ``url_resolver`` is called as ``url_resolver(url, instance, private_endpoint, channel)`` (positional, see
  ``ClientParameters.get_runtime_api_base_url``) and returns the Runtime API base; without it the client
  would go to ``https://quantum.127.0.0.1/api/v1``. It cannot be saved with ``save_account``.
* ``IAM_URL`` is read by the client when it builds its authenticators (at service construction), the
  Global Search / Catalog URLs by the IBM SDK's ``configure_service`` (also at construction); the CA bundle
  by ``requests`` at each request. TLS verification stays on: the certificate is self-signed, made at
  start-up (SAN ``localhost`` and ``127.0.0.1``), and ``REQUESTS_CA_BUNDLE`` points at it.
* The client asks IAM twice per service (the Global Search authenticator and the Runtime API one) and keeps
  its token for 80 % of ``expires_in``: an IAM outage after construction goes unnoticed.

What the client does with the answers (observed with 0.51.0):

* Construction: ``POST /identity/token``, ``POST /v3/resources/search``, ``GET /catalog/api/v1/<plan>``,
  ``POST /identity/token``, ``GET /api/v1/backends``. A wrong key (IAM 400), IAM down and the API down all
  raise ``InvalidAccountError("Unable to retrieve instances. Please check that you are using a valid API
  token.")``; ``__cause__`` is an ``ibm_cloud_sdk_core.ApiException`` (``status_code`` 400) for the wrong
  key and a ``requests.exceptions.ConnectionError`` for either outage; only its ``request.url`` (IAM's
  ``/identity/token`` or the API port's ``/v3/resources/search``) tells the two outages apart.
* ``service.backend(b)``: ``GET /backends``, ``GET /backends/{b}/configuration`` (cached per service);
  ``backend.target`` (transpiling): ``GET /backends/{b}/properties``. ``SamplerV2.run``: ``GET
  /instances/usage``, ``GET /backends/{b}/status``, ``POST /jobs``.
* The client retries (urllib3: up to 5 retries, after 0, 1, 2, 4, 8 s) on 500/502/503/504/520/521/
  522/524, ``POST /jobs`` included: with ``fail_next(after=True)`` the first job exists, its answer is lost,
  the retry creates a second job with the same tags and ``run`` returns the second id.
* ``status()`` is one ``GET /jobs/{id}`` until final; on ERROR it also reads ``/results`` for the message.
  ``result()`` polls every 0.5 s with no timeout, and requests are sent with no read timeout: a stalled
  server (:meth:`StandInIBM.set_stall`, which processes the request and then holds the answer back) hangs
  the client until the stall ends.
* 401 raises ``IBMNotAuthorizedError`` (not wrapped by ``service.job``); a lost job raises
  ``RuntimeJobNotFound``; cancelling a final job raises ``RuntimeInvalidStateError``.

Run as a process (for CLI subprocess tests)::

    python tests/ibm_server.py --port 0 --iam-port 0 --delay 0.5 --api-key KEY [--hold] [--seed N]
        [--backends fake_brisbane,fake_manila]

The first stdout line is JSON ``{"port", "iam_port", "url", "iam_url", "instance", "cert", "api_key",
"env"}``; it then serves until SIGTERM/SIGINT (exit code 0). Drive it with :func:`control`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import fnmatch
import json
import secrets
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from standin_https import QueueControls, TrackingHandler, TrackingHTTPServer, close, listen, make_certificate

DEFAULT_API_KEY = "test-api-key"
DEFAULT_BACKENDS = ("fake_brisbane", "fake_manila")
API_PREFIX = "/api/v1"
CATALOG_PREFIX = "/catalog/api/v1"
ACCOUNT_ID = "abcdef0123456789abcdef0123456789"
INSTANCE_GUID = "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"
PLAN_ID = "standin-open-plan"
TOO_LONG_CODE = 1305
TOO_LONG_REASON = "Ran too long"
MAX_SIMULATED_QUBITS = 24
FINAL = ("Completed", "Failed", "Cancelled")
PENDING = ("Queued", "Running")
CONTROL_ACTIONS = (
    "hold_all",
    "release_all",
    "set_delay",
    "fail_job",
    "cancel_job",
    "cancel_too_long",
    "lose_job",
    "fail_next",
    "set_stall",
    "reject_tokens",
    "go_down",
    "come_back",
    "job_ids",
    "job",
    "counts",
    "calls",
    "clear_log",
    "wait_for",
)


def _utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime | None) -> str | None:
    """UTC ISO 8601 with milliseconds and a ``Z``, as the real API writes them."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _parse_time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _fake_backend_files(name: str) -> tuple[dict, dict]:
    """Configuration and properties JSON of the ``qiskit_ibm_runtime`` fake whose ``backend_name`` is ``name``."""
    from qiskit_ibm_runtime import fake_provider

    for attr in dir(fake_provider):
        cls = getattr(fake_provider, attr)
        if isinstance(cls, type) and getattr(cls, "backend_name", None) == name and hasattr(cls, "conf_filename"):
            directory = Path(cls.dirname)
            conf = json.loads((directory / cls.conf_filename).read_text())
            props = json.loads((directory / cls.props_filename).read_text())
            conf["backend_name"] = props["backend_name"] = name
            return conf, props
    raise ValueError(f"no fake backend named {name!r} in qiskit_ibm_runtime.fake_provider")


def _cut_to_used_qubits(circuit: Any) -> Any:
    """Drop the idle qubits of an ISA circuit (it spans the whole device) so a statevector stays small."""
    from qiskit.circuit import QuantumCircuit, QuantumRegister

    ignored = ("barrier", "delay")
    used = sorted(
        {circuit.find_bit(q).index for inst in circuit.data if inst.operation.name not in ignored for q in inst.qubits}
    )
    if len(used) > MAX_SIMULATED_QUBITS:
        raise ValueError(f"circuit uses {len(used)} qubits, the stand-in simulates at most {MAX_SIMULATED_QUBITS}")
    register = QuantumRegister(max(len(used), 1), "q")
    mapping = {circuit.qubits[old]: register[new] for new, old in enumerate(used)}
    small = QuantumCircuit(register, name=circuit.name, global_phase=circuit.global_phase, metadata=circuit.metadata)
    for creg in circuit.cregs:
        small.add_register(creg)
    loose = [bit for bit in circuit.clbits if not circuit.find_bit(bit).registers]
    if loose:
        small.add_bits(loose)
    for inst in circuit.data:
        qubits = [mapping[q] for q in inst.qubits if q in mapping]
        if inst.operation.name in ignored:
            if inst.operation.name == "barrier" and qubits:
                small.barrier(*qubits)
            continue
        small.append(inst.operation, qubits, inst.clbits)
    return small


@dataclass
class _Job:
    """Server-side record of one submitted job."""

    id: str
    backend: str
    program_id: str
    tags: list[str]
    params: dict  # as received (JSON), returned unless exclude_params
    pubs: list[tuple[Any, Any, int]]  # decoded (circuit, parameter values or None, shots)
    submitted: float  # time.monotonic(), the delay counts from it
    created: dt.datetime
    status: str = "Queued"
    reason: str | None = None
    reason_code: int | None = None
    running: dt.datetime | None = None
    finished: dt.datetime | None = None
    result_json: str | None = None
    counts: list[dict[str, int]] = field(default_factory=list)
    failure_text: str | None = None  # /results body of a Failed or too-long job
    session_id: str | None = None
    private: bool = False
    cost: int | None = None

    def record(self, exclude_params: bool = True) -> dict[str, Any]:
        """The job as ``GET /jobs/{id}`` and ``GET /jobs`` answer it."""
        quantum_seconds = (
            round((self.finished - self.running).total_seconds(), 3) if self.finished and self.running else 0
        )
        data: dict[str, Any] = {
            "id": self.id,
            "backend": self.backend,
            "state": {"status": self.status, "reason": self.reason, "reason_code": self.reason_code},
            "status": self.status,
            "program": {"id": self.program_id},
            "created": _iso(self.created),
            "ended": _iso(self.finished),
            "tags": list(self.tags),
            "session_id": self.session_id,
            "runtime": "",
            "private": self.private,
            "cost": self.cost or 600,
            "user_id": "IBMid-standin",
            "usage": {"quantum_seconds": quantum_seconds, "seconds": quantum_seconds},
            "estimated_running_time_seconds": 1.0,
        }
        if not exclude_params:
            data["params"] = self.params
        return data

    def metrics(self) -> dict[str, Any]:
        """The job as ``GET /jobs/{id}/metrics`` answers it."""
        quantum_seconds = (
            round((self.finished - self.running).total_seconds(), 3) if self.finished and self.running else 0
        )
        return {
            "timestamps": {
                "created": _iso(self.created),
                "running": _iso(self.running),
                "finished": _iso(self.finished),
            },
            "bss": {"seconds": quantum_seconds},
            "usage": {
                "quantum_seconds": quantum_seconds,
                "seconds": quantum_seconds,
                "qpu_charge_time_seconds": quantum_seconds,
                "status": "final" if self.status in FINAL else "pending",
            },
            "executions": sum(shots for _, _, shots in self.pubs),
            "num_circuits": len(self.pubs),
            "num_qubits": [circuit.num_qubits for circuit, _, _ in self.pubs],
            "circuit_depths": [circuit.depth() for circuit, _, _ in self.pubs],
            "caller": "qiskit_ibm_runtime~sampler.py",
        }


@dataclass
class _Rule:
    """One ``fail_next`` injection: answer ``code`` to the next ``remaining`` requests matching ``pattern``."""

    pattern: str | None
    code: int
    remaining: int
    after: bool


class _HTTPServer(TrackingHTTPServer):
    """The HTTPS server of one part (``api`` or ``iam``); ``owner`` answers every request."""

    quiet_errors = (OSError,)  # SSL errors, hang-ups and time-outs, and any other socket error
    owner: StandInIBM
    part: str


class _RequestHandler(TrackingHandler):
    """Thin HTTP layer; all state and decisions live in :class:`StandInIBM`."""

    server: _HTTPServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        code, payload, content_type = self.server.owner._serve(
            self.server.part, self.command, split.path, query, self.headers, body, self.request
        )
        self.send_response(code)
        if code != 204:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815 - names set by the base class


class StandInIBM(QueueControls):
    """An IBM Quantum Platform look-alike on 127.0.0.1 that the real ``qiskit_ibm_runtime`` client can use.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`). See the module docstring for the wire
    protocol and how to construct a client against it.
    """

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        delay: float = 0.5,
        seed: int = 1234,
        backends: tuple[str, ...] | list[str] = DEFAULT_BACKENDS,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        iam_port: int = 0,
        hold: bool = False,
        region: str = "us-east",
        token_lifetime: int = 3600,
    ) -> None:
        """Configure credentials, queueing and backends; nothing listens until :meth:`start`.

        ``delay``: seconds from submission to completion (half queued, half running); ``seed``: the
        ``StatevectorSampler`` seed; ``backends``: names of ``qiskit_ibm_runtime.fake_provider`` fakes
        (``backend_name``, e.g. ``fake_manila``); ``hold``: start with the queue held (see :meth:`hold_all`).
        """
        self.api_key = api_key
        self.seed = seed
        self.hostname = host
        self.region = region
        self.token_lifetime = token_lifetime
        self._delay = float(delay)
        self._held = hold
        self._backend_names = tuple(backends)
        self._backends: dict[str, tuple[dict, dict]] = {}
        self._requested = {"api": port, "iam": iam_port}
        self._ports: dict[str, int] = {}
        self._servers: dict[str, _HTTPServer] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._cond = threading.Condition(threading.RLock())
        self._jobs: dict[str, _Job] = {}
        self._lost: dict[str, _Job] = {}
        self._tokens: set[str] = set()
        self._rules: list[_Rule] = []
        self._stall: tuple[float, str | None] = (0.0, None)
        self._stall_generation = 0
        self._reject_tokens = False
        self._log: list[str] = []
        self._log_queries: list[str] = []
        self._workers: list[threading.Thread] = []
        self._sim_lock = threading.Lock()
        self._stopped = False
        self._tmpdir: Path | None = None
        self._key_path: Path | None = None
        self.cert_path: Path | None = None
        self.injected_faults: list[str] = []

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> StandInIBM:
        """Load the backends, make the certificate, bind both ports and serve in background threads."""
        for name in self._backend_names:
            self._backends[name] = _fake_backend_files(name)
        from qiskit_ibm_runtime.json import RuntimeDecoder, RuntimeEncoder  # noqa: F401 - warm the import

        self._tmpdir = Path(tempfile.mkdtemp(prefix="ibm-standin-"))
        self.cert_path, self._key_path = make_certificate(self._tmpdir)
        for part in ("api", "iam"):
            self._listen(part, self._requested[part])
        return self

    def _listen(self, part: str, port: int) -> None:
        httpd = _HTTPServer((self.hostname, port), _RequestHandler, bind_and_activate=True)
        httpd.owner, httpd.part = self, part
        self._ports[part] = httpd.server_address[1]
        self._servers[part], self._threads[part] = listen(httpd, self.cert_path, self._key_path, f"ibm-standin-{part}")

    def _close(self, part: str) -> None:
        close(self._servers.pop(part, None), self._threads.pop(part, None))

    def go_down(self, part: str = "api", for_seconds: float | None = None) -> None:
        """An outage of ``part`` (``"api"``, ``"iam"`` or ``"all"``): stop listening, clients get 'connection
        refused'; jobs keep their state (and keep progressing). With ``for_seconds`` it comes back by itself.
        """
        parts = self._parts(part)
        for name in parts:
            self._close(name)
        if for_seconds is not None:
            timer = threading.Timer(for_seconds, lambda: [self.come_back(name) for name in parts])
            timer.daemon = True
            timer.start()

    def come_back(self, part: str = "api") -> None:
        """End the outage of ``part``: listen again on the same port."""
        for name in self._parts(part):
            if name not in self._servers and not self._stopped:
                self._listen(name, self._ports[name])

    @staticmethod
    def _parts(part: str) -> tuple[str, ...]:
        if part not in ("api", "iam", "all"):
            raise ValueError(f"part must be 'api', 'iam' or 'all', not {part!r}")
        return ("api", "iam") if part == "all" else (part,)

    def is_up(self, part: str = "api") -> bool:
        """Whether ``part`` is listening."""
        return part in self._servers

    def stop(self) -> None:
        """Stop serving, drop the job threads, remove the certificate; safe to call twice."""
        with self._cond:
            if self._stopped:
                return
            self._stopped = True
            self._cond.notify_all()
        for part in list(self._servers):
            self._close(part)
        for worker in list(self._workers):
            worker.join(timeout=5)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> StandInIBM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """Port of the Runtime API / Global Search / Global Catalog listener."""
        if "api" not in self._ports:
            raise RuntimeError("server not started")
        return self._ports["api"]

    @property
    def iam_port(self) -> int:
        """Port of the IAM listener."""
        if "iam" not in self._ports:
            raise RuntimeError("server not started")
        return self._ports["iam"]

    @property
    def url(self) -> str:
        """Service base URL (the client's ``url=``), e.g. ``https://127.0.0.1:43817``; API at ``url + '/api/v1'``."""
        return f"https://{self.hostname}:{self.port}"

    @property
    def backend_name(self) -> str:
        """Name of the first backend offered (``fake_brisbane`` by default)."""
        return self._backend_names[0]

    @property
    def backend_names(self) -> tuple[str, ...]:
        """Names of all backends offered."""
        return self._backend_names

    @property
    def api_url(self) -> str:
        """Runtime API base: what ``url_resolver`` must return."""
        return self.url + API_PREFIX

    @property
    def iam_url(self) -> str:
        """IAM base URL (the ``IAM_URL`` environment variable)."""
        return f"https://{self.hostname}:{self.iam_port}"

    @property
    def instance(self) -> str:
        """Instance CRN the client is given (region ``us-east`` by default)."""
        return f"crn:v1:bluemix:public:quantum-computing:{self.region}:a/{ACCOUNT_ID}:{INSTANCE_GUID}::"

    def env(self) -> dict[str, str]:
        """Environment variables a client process needs to reach this stand-in (not the token)."""
        cert = str(self.cert_path)
        return {
            "IAM_URL": self.iam_url,
            "GLOBAL_SEARCH_URL": self.url,
            "GLOBAL_CATALOG_URL": self.url + CATALOG_PREFIX,
            "REQUESTS_CA_BUNDLE": cert,
            "CURL_CA_BUNDLE": cert,
            "SSL_CERT_FILE": cert,
        }

    @staticmethod
    def url_resolver(url: str, instance: str, private_endpoint: bool | None = False, channel: str = "") -> str:
        """A ``url_resolver`` for ``QiskitRuntimeService``: the Runtime API is ``<url>/api/v1``."""
        return url.rstrip("/") + API_PREFIX

    # -- fault controls (for tests) ------------------------------------------------------------------------

    def fail_job(self, job_id: str, reason: str = "Job failed (injected by the stand-in)") -> None:
        """Make a job Failed now with ``reason`` (the client shows it in ``error_message()``)."""
        self._finish(job_id, "Failed", reason, None, f"Traceback (most recent call last):\nRuntimeError: {reason}\n")

    def cancel_job(self, job_id: str) -> None:
        """Cancel a job server-side (as an operator would): status Cancelled, client CANCELLED."""
        self._finish(job_id, "Cancelled", None, None, None)

    def cancel_too_long(self, job_id: str, reason: str = TOO_LONG_REASON) -> None:
        """Cancel a job as the service does when it exceeds its time limit: Cancelled, ``reason_code`` 1305.

        The client then reports ERROR, ``error_message()`` is "Job <id> ran longer than maximum execution
        time. Job was cancelled:\\n<results text>" and ``result()`` raises ``RuntimeJobMaxTimeoutError("Error
        code 1305; <reason>")``. The stand-in answers ``/results`` of such a job with ``"Error code 1305;
        <reason>"`` too (what the real service writes there is not known).
        """
        text = f"Error code {TOO_LONG_CODE}; {reason}"  # the stand-in's choice: the real text is not known here
        self._finish(job_id, "Cancelled", reason, TOO_LONG_CODE, text)

    def _finish(self, job_id: str, status: str, reason: str | None, code: int | None, text: str | None) -> None:
        with self._cond:
            job = self._job_or_keyerror(job_id)
            job.status, job.reason, job.reason_code, job.failure_text = status, reason, code, text
            job.result_json, job.counts = None, []
            job.finished = _utc()
            self._cond.notify_all()

    def lose_job(self, job_id: str) -> None:
        """Forget a job: 404 for it, absent from listings (:meth:`job` still describes it, ``lost: True``)."""
        with self._cond:
            self._lost[job_id] = self._job_or_keyerror(job_id)
            del self._jobs[job_id]
            self._cond.notify_all()

    def fail_next(self, count: int = 1, code: int = 502, path: str | None = "POST /jobs", after: bool = False) -> None:
        """Answer HTTP ``code`` to the next ``count`` requests matching ``path`` (see :meth:`calls`; ``None``:
        any request). With ``after=True`` the request is processed first and only its answer is replaced: for
        ``POST /jobs`` the job exists but the client never learns its id (and its retry makes a second one).
        """
        with self._cond:
            self._rules.append(_Rule(path, int(code), int(count), bool(after)))

    def set_stall(self, seconds: float, path: str | None = None) -> None:
        """Hold back for ``seconds`` the answer to each request matching ``path`` (``None``: every request on
        both listeners; 0 turns it off). The request is processed first (a stalled ``POST /jobs`` creates its
        job), then the answer waits. Any later ``set_stall`` call releases the answers being held.
        """
        with self._cond:
            self._stall = (float(seconds), path)
            self._stall_generation += 1
            self._cond.notify_all()

    def reject_tokens(self, reject: bool = True) -> None:
        """While on, every request but IAM and control answers 401 (a revoked token)."""
        with self._cond:
            self._reject_tokens = bool(reject)

    # -- observation (for tests) ---------------------------------------------------------------------------

    def job_ids(self) -> list[str]:
        """Ids of the jobs the server knows (not lost ones), in submission order."""
        with self._cond:
            return list(self._jobs)

    def job(self, job_id: str) -> dict[str, Any]:
        """A job as ``GET /jobs/{id}?exclude_params=true`` shows it (``id, backend, state: {status, reason,
        reason_code}, status, program, created, tags, ...``) plus ``reason, reason_code, program_id, running,
        finished, shots`` (one per pub) and ``lost``. Statuses in API spelling (``"Completed"``)."""
        with self._cond:
            job = self._jobs.get(job_id) or self._lost.get(job_id)
            if job is None:
                raise KeyError(f"no job {job_id!r} on the stand-in")
            return {
                **job.record(exclude_params=True),
                "reason": job.reason,
                "reason_code": job.reason_code,
                "program_id": job.program_id,
                "running": _iso(job.running),
                "finished": _iso(job.finished),
                "shots": [shots for _, _, shots in job.pubs],
                "lost": job_id in self._lost,
            }

    def counts(self, job_id: str) -> list[dict[str, int]]:
        """Simulated counts of a Completed job, one dict per pub, keys in qiskit bit order (qubit 0 last).

        With several classical registers the keys are the registers joined (``join_data().get_counts()``).
        """
        with self._cond:
            job = self._jobs.get(job_id) or self._lost.get(job_id)
            if job is None:
                raise KeyError(f"no job {job_id!r} on the stand-in")
            return [dict(c) for c in job.counts]

    def calls(self, pattern: str | None = None, with_query: bool = False) -> list[str]:
        """Requests received on both listeners (not control ones), as ``"METHOD /path"`` (full path, e.g.
        ``"POST /api/v1/jobs"``, ``"POST /identity/token"``), optionally with the query string.

        ``pattern`` is ``"[METHOD ]/path"``; the path may leave out the ``/api/v1`` prefix and may use
        ``fnmatch`` wildcards (``"GET /jobs/*"``).
        """
        with self._cond:
            entries = self._log_queries if with_query else self._log
            return [
                entry
                for entry, plain in zip(entries, self._log, strict=True)
                if pattern is None or _matches(pattern, plain)
            ]

    def clear_log(self) -> None:
        """Forget the request log and the injected-fault log."""
        with self._cond:
            self._log.clear()
            self._log_queries.clear()
            self.injected_faults.clear()

    def wait_for(self, job_id: str, status: str, timeout: float = 10.0) -> None:
        """Block until a job has ``status`` (API spelling, any case; ``DONE``: Completed), else ``TimeoutError``."""
        wanted = {"DONE": "COMPLETED"}.get(status.upper(), status.upper())
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                job = self._jobs.get(job_id) or self._lost.get(job_id)
                current = job.status.upper() if job else "UNKNOWN"
                if current == wanted:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{job_id} is {current}, not {wanted}")
                self._cond.wait(remaining)

    # -- request handling ----------------------------------------------------------------------------------

    def _serve(
        self, part: str, method: str, path: str, query: dict, headers: Any, body: bytes, sock: Any
    ) -> tuple[int, bytes, str]:
        """Log, inject faults, route; returns ``(code, body, content type)``."""
        if method == "POST" and path.rstrip("/") == "/_standin/control":
            return self._control_request(part, body)
        entry = f"{method} {path}"
        query_string = urllib.parse.urlencode(query, doseq=True)
        with self._cond:
            self._log.append(entry)
            self._log_queries.append(f"{entry}?{query_string}" if query_string else entry)
            stall_seconds, stall_path = self._stall
            stall_generation = self._stall_generation
            rule = next((r for r in self._rules if r.remaining > 0 and _matches(r.pattern, entry)), None)
            if rule is not None:
                rule.remaining -= 1
                self.injected_faults.append(entry)
            self._rules = [r for r in self._rules if r.remaining > 0]
        if rule is not None and not rule.after:
            answer = self._error(rule.code, "InjectedFault", f"HTTP {rule.code} injected by the IBM stand-in")
        else:
            try:
                if part == "iam":
                    answer = self._route_iam(method, path, body)
                else:
                    answer = self._route_api(method, path, query, headers, body)
            except Exception as exc:  # noqa: BLE001 - a stand-in bug must show up as an answer, not a dropped socket
                answer = self._error(500, "StandInError", f"stand-in error: {exc!r}")
            if rule is not None:
                answer = self._error(
                    rule.code, "InjectedFault", f"HTTP {rule.code} injected by the IBM stand-in (after)"
                )
        if stall_seconds > 0 and (stall_path is None or _matches(stall_path, entry)):
            self._hold_answer(stall_seconds, stall_generation)
        return answer

    def _hold_answer(self, seconds: float, generation: int) -> None:
        """Sleep before sending an answer; any :meth:`set_stall` call or :meth:`stop` ends the sleep early."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while not self._stopped and self._stall_generation == generation:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    @staticmethod
    def _json(code: int, data: Any) -> tuple[int, bytes, str]:
        return code, json.dumps(data).encode(), "application/json"

    def _error(self, code: int, error_code: str, message: str) -> tuple[int, bytes, str]:
        return self._json(
            code,
            {
                "errors": [{"code": error_code, "message": message, "more_info": "https://cloud.ibm.com/apidocs"}],
                "trace": secrets.token_hex(16),
                "status_code": code,
            },
        )

    # IAM

    def _route_iam(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        if method != "POST" or path.rstrip("/") != "/identity/token":
            return self._json(404, {"errorCode": "BXNIM0102E", "errorMessage": "Not found."})
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        if form.get("grant_type", [""])[0] != "urn:ibm:params:oauth:grant-type:apikey":
            return self._json(400, {"errorCode": "BXNIM0104E", "errorMessage": "Property 'grant_type' is invalid."})
        if form.get("apikey", [""])[0] != self.api_key:
            return self._json(
                400,
                {
                    "context": {"requestId": secrets.token_hex(8), "requestType": "incoming.Identity_Token"},
                    "errorCode": "BXNIM0415E",
                    "errorMessage": "Provided API key could not be found.",
                    "errorDetails": "",
                },
            )
        now = int(time.time())
        header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "standin"}).encode())
        claims = {
            "iam_id": "IBMid-standin",
            "sub": "standin@example.com",
            "account": {"bss": ACCOUNT_ID},
            "iat": now,
            "exp": now + self.token_lifetime,
            "iss": self.iam_url + "/identity",
            "grant_type": "urn:ibm:params:oauth:grant-type:apikey",
            "jti": secrets.token_hex(8),
        }
        token = f"{header}.{_b64url(json.dumps(claims).encode())}.{_b64url(secrets.token_bytes(32))}"
        with self._cond:
            self._tokens.add(token)
        return self._json(
            200,
            {
                "access_token": token,
                "refresh_token": "not_supported",
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "expiration": now + self.token_lifetime,
                "scope": "ibm openid",
            },
        )

    # Global Search, Global Catalog, Runtime API

    def _route_api(self, method: str, path: str, query: dict, headers: Any, body: bytes) -> tuple[int, bytes, str]:
        auth = headers.get("Authorization") or ""
        with self._cond:
            known = auth.startswith("Bearer ") and auth[len("Bearer ") :] in self._tokens
            rejecting = self._reject_tokens
        if rejecting or not known:
            return self._error(401, "Unauthorized", "Invalid or expired authentication token.")
        if method == "POST" and path.rstrip("/") == "/v3/resources/search":
            return self._json(200, self._search_answer())
        if method == "GET" and path.startswith(CATALOG_PREFIX + "/"):
            if path[len(CATALOG_PREFIX) + 1 :] != PLAN_ID:
                return self._error(404, "NotFound", "catalog entry not found")
            return self._json(
                200,
                {
                    "id": PLAN_ID,
                    "name": "open",
                    "kind": "plan",
                    "overview_ui": {"en": {"display_name": "Open", "description": "Stand-in open plan"}},
                    "metadata": {"pricing": {"type": "free"}},
                },
            )
        if not path.startswith(API_PREFIX + "/"):
            return self._error(404, "NotFound", f"no route for {method} {path}")
        if headers.get("Service-CRN") != self.instance:
            return self._error(403, "Forbidden", "Service-CRN header missing or not an instance of this account.")
        return self._route_runtime(method, path[len(API_PREFIX) :].rstrip("/"), query, body)

    def _search_answer(self) -> dict[str, Any]:
        return {
            "items": [
                {
                    "crn": self.instance,
                    "name": "standin-instance",
                    "service_plan_unique_id": PLAN_ID,
                    "tags": [],
                    "doc": {"extensions": {"allocation": {"backends": list(self._backend_names)}}},
                }
            ],
            "limit": 100,
        }

    def _route_runtime(self, method: str, path: str, query: dict, body: bytes) -> tuple[int, bytes, str]:
        parts = path.strip("/").split("/")
        if method == "GET" and parts == ["backends"]:
            return self._json(200, {"devices": [self._device(name) for name in self._backend_names]})
        if method == "GET" and len(parts) == 3 and parts[0] == "backends":
            name, what = parts[1], parts[2]
            if name not in self._backends:
                return self._error(404, "BackendNotFound", f"backend {name} not found")
            conf, props = self._backends[name]
            if what == "configuration":
                return self._json(200, conf)
            if what == "properties":
                return self._json(200, props)
            if what == "status":
                with self._cond:
                    queued = sum(1 for j in self._jobs.values() if j.backend == name and j.status in PENDING)
                return self._json(
                    200,
                    {
                        "state": True,
                        "status": "active",
                        "message": "",
                        "length_queue": queued,
                        "backend_version": conf.get("backend_version", "0.0.0"),
                    },
                )
        if method == "GET" and parts == ["instances", "usage"]:
            with self._cond:
                consumed = sum(j.record()["usage"]["quantum_seconds"] for j in self._jobs.values())
            return self._json(
                200,
                {"instance_id": self.instance, "usage_consumed_seconds": consumed, "usage_limit_reached": False},
            )
        if parts[0] == "jobs":
            if len(parts) == 1 and method == "POST":
                return self._submit(body)
            if len(parts) == 1 and method == "GET":
                return self._list_jobs(query)
            return self._job_request(method, parts[1], parts[2] if len(parts) > 2 else "", query)
        return self._error(404, "NotFound", f"no route for {method} {API_PREFIX}{path}")

    def _device(self, name: str) -> dict[str, Any]:
        conf, _ = self._backends[name]
        with self._cond:
            queued = sum(1 for j in self._jobs.values() if j.backend == name and j.status in PENDING)
        return {
            "name": name,
            "status": {"name": "online", "reason": "available"},
            "queue_length": queued,
            "qubits": conf["n_qubits"],
            "physical_qubits": conf["n_qubits"],
            "processor_type": conf.get("processor_type", {}),
        }

    def _submit(self, body: bytes) -> tuple[int, bytes, str]:
        from qiskit.circuit import QuantumCircuit
        from qiskit_ibm_runtime.json import RuntimeDecoder

        try:
            request = json.loads(body or b"{}")
            params = request["params"]
            backend = request.get("backend")
            program_id = request["program_id"]
        except (ValueError, KeyError, TypeError) as exc:
            return self._error(400, "BadRequest", f"invalid job request: {exc!r}")
        if program_id != "sampler":
            return self._error(
                400, "ProgramNotSupported", f"the stand-in only runs program 'sampler', not {program_id!r}"
            )
        if backend not in self._backends:
            return self._error(400, "BackendNotFound", f"backend {backend!r} is not available to this instance")
        tags = request.get("tags") or []
        try:
            decoded = json.loads(json.dumps(params["pubs"]), cls=RuntimeDecoder)
            default_shots = (params.get("options") or {}).get("default_shots") or 4096
            pubs = []
            for pub in decoded:
                pub = list(pub) if isinstance(pub, (list, tuple)) else [pub]
                circuit = pub[0]
                if not isinstance(circuit, QuantumCircuit):
                    raise TypeError(f"pub circuit is a {type(circuit).__name__}")
                values = pub[1] if len(pub) > 1 and circuit.num_parameters else None
                shots = pub[2] if len(pub) > 2 and pub[2] is not None else default_shots
                pubs.append((circuit, values, int(shots)))
            n_qubits = self._backends[backend][0]["n_qubits"]
            for circuit, _, _ in pubs:
                if circuit.num_qubits > n_qubits:
                    raise ValueError(f"circuit has {circuit.num_qubits} qubits, {backend} has {n_qubits}")
        except Exception as exc:  # noqa: BLE001 - any decoding problem is the client's
            return self._error(400, "InvalidParams", f"cannot decode the pubs: {exc!r}")
        with self._cond:
            job_id = "d" + "".join(secrets.choice("abcdefghijklmnopqrstuv0123456789") for _ in range(19))
            job = _Job(
                id=job_id,
                backend=backend,
                program_id=program_id,
                tags=list(tags),
                params=params,
                pubs=pubs,
                submitted=time.monotonic(),
                created=_utc(),
                session_id=request.get("session_id"),
                private=bool(request.get("private", False)),
                cost=request.get("cost"),
            )
            self._jobs[job_id] = job
            worker = threading.Thread(target=self._run_job, args=(job,), name=f"ibm-standin-{job_id}", daemon=True)
            self._workers.append(worker)
        worker.start()
        return self._json(200, {"id": job_id, "backend": backend})

    def _list_jobs(self, query: dict) -> tuple[int, bytes, str]:
        def first(key: str) -> str | None:
            values = query.get(key)
            return values[0] if values else None

        try:
            limit = int(first("limit") or 10)
            offset = int(first("offset") or 0)
            after = _parse_time(first("created_after")) if first("created_after") else None
            before = _parse_time(first("created_before")) if first("created_before") else None
        except ValueError as exc:
            return self._error(400, "BadRequest", f"invalid query: {exc}")
        pending = first("pending")
        tags = query.get("tags", [])
        exclude = (first("exclude_params") or "false").lower() == "true"
        with self._cond:
            selected = [
                job
                for job in self._jobs.values()
                if (pending is None or (job.status in PENDING) == (pending.lower() == "true"))
                and all(tag in job.tags for tag in tags)
                and (first("backend") is None or job.backend == first("backend"))
                and (first("program") is None or job.program_id == first("program"))
                and (first("session_id") is None or job.session_id == first("session_id"))
                and (after is None or job.created >= after)
                and (before is None or job.created <= before)
            ]
            selected.sort(key=lambda job: job.created, reverse=(first("sort") or "").upper() != "ASC")
            page = [job.record(exclude_params=exclude) for job in selected[offset : offset + limit]]
        return self._json(200, {"jobs": page, "count": len(selected), "limit": limit, "offset": offset})

    def _job_request(self, method: str, job_id: str, what: str, query: dict) -> tuple[int, bytes, str]:
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                return self._error(404, "JobNotFound", f"Job not found: {job_id}")
            if method == "GET" and what == "":
                exclude = (query.get("exclude_params", ["false"])[0]).lower() == "true"
                return self._json(200, job.record(exclude_params=exclude))
            if method == "GET" and what == "metrics":
                return self._json(200, job.metrics())
            if method == "GET" and what == "results":
                if job.status == "Completed":
                    return 200, job.result_json.encode(), "application/json"
                if job.failure_text is not None:
                    return 200, job.failure_text.encode(), "text/plain"
                if job.status == "Cancelled":
                    return 200, f"Job {job_id} was cancelled.".encode(), "text/plain"
                return self._error(404, "ResultsNotFound", f"Results of job {job_id} are not available yet.")
            if method == "GET" and what == "logs":
                return 200, b"", "text/plain"
            if method == "POST" and what == "cancel":
                if job.status in FINAL:
                    return self._error(409, "Conflict", f"Job {job_id} is {job.status} and cannot be cancelled.")
                job.status, job.finished = "Cancelled", _utc()
                self._cond.notify_all()
                return 204, b"", "text/plain"
        return self._error(404, "NotFound", f"no route for {method} jobs/{job_id}/{what}")

    # -- job execution -------------------------------------------------------------------------------------

    def _run_job(self, job: _Job) -> None:
        """Queued for ``delay / 2`` (and while held), Running (simulate) for at least ``delay / 2``, Completed."""
        with self._cond:
            while not self._stopped and job.status == "Queued":
                remaining = job.submitted + self._delay / 2 - time.monotonic()
                if not self._held and remaining <= 0:
                    break
                self._cond.wait(None if self._held else remaining)
            if self._stopped or job.status != "Queued":
                return
            job.status, job.running = "Running", _utc()
            started = time.monotonic()
            self._cond.notify_all()
        try:
            result_json, counts, failure = *self._simulate(job), None
        except Exception as exc:  # noqa: BLE001 - a simulation error becomes a Failed job, as on the real service
            result_json, counts, failure = None, [], f"{type(exc).__name__}: {exc}"
        with self._cond:
            while not self._stopped and job.status == "Running":
                remaining = started + self._delay / 2 - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._stopped or job.status != "Running":  # cancelled, failed or lost meanwhile
                return
            job.finished = _utc()
            if failure is None:
                job.status, job.result_json, job.counts = "Completed", result_json, counts
            else:
                job.status, job.reason, job.failure_text = (
                    "Failed",
                    failure,
                    f"Traceback (most recent call last):\n{failure}\n",
                )
            self._cond.notify_all()

    def _simulate(self, job: _Job) -> tuple[str, list[dict[str, int]]]:
        from qiskit.primitives import PrimitiveResult, SamplerPubResult, StatevectorSampler
        from qiskit_ibm_runtime.execution_span import ExecutionSpans, SliceSpan
        from qiskit_ibm_runtime.json import RuntimeEncoder

        start = _utc()
        pub_results, counts, slices = [], [], {}
        with self._sim_lock:
            for index, (circuit, values, shots) in enumerate(job.pubs):
                small = _cut_to_used_qubits(circuit)
                pub = (small, values, shots) if values is not None else (small, None, shots)
                result = StatevectorSampler(seed=self.seed).run([pub]).result()[0]
                pub_results.append(SamplerPubResult(result.data, metadata={"circuit_metadata": circuit.metadata}))
                counts.append(result.join_data().get_counts())
                shape = tuple(result.data.shape) + (shots,)
                slices[index] = (shape, slice(0, int(_prod(shape))))
        span = SliceSpan(start, _utc(), slices)
        primitive = PrimitiveResult(
            pub_results, metadata={"execution": {"execution_spans": ExecutionSpans([span])}, "version": 2}
        )
        return json.dumps(primitive, cls=RuntimeEncoder), counts

    def _job_or_keyerror(self, job_id: str) -> _Job:
        if job_id not in self._jobs:
            raise KeyError(f"no job {job_id!r} on the stand-in")
        return self._jobs[job_id]

    # -- control endpoint ----------------------------------------------------------------------------------

    def _control_request(self, part: str, body: bytes) -> tuple[int, bytes, str]:
        try:
            request = json.loads(body or b"{}")
            action = request.pop("action")
            if action not in CONTROL_ACTIONS:
                raise ValueError(f"unknown action {action!r}")
            if action == "go_down" and part in self._parts(request.get("part", "api")):
                # Taking down the listener that carries this very request: answer first, then go down.
                timer = threading.Timer(0.2, lambda: self.go_down(**request))
                timer.daemon = True
                timer.start()
                answer = None
            else:
                answer = getattr(self, action)(**request)
        except (KeyError, TypeError, ValueError, TimeoutError) as exc:
            return self._json(400, {"error": repr(exc)})
        return self._json(200, {"ok": True, "result": answer})


def _prod(shape: tuple[int, ...]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def _matches(pattern: str | None, entry: str) -> bool:
    """Whether a ``"METHOD /path"`` log entry matches ``"[METHOD ]/path"`` (``/api/v1`` optional, fnmatch)."""
    if pattern is None:
        return True
    method, _, path = entry.partition(" ")
    want_method, _, want_path = pattern.partition(" ") if " " in pattern else ("", "", pattern)
    if want_method and want_method.upper() != method:
        return False
    candidates = [path]
    if path.startswith(API_PREFIX + "/"):
        candidates.append(path[len(API_PREFIX) :])
    return any(fnmatch.fnmatchcase(candidate, want_path) for candidate in candidates)


def control(url: str, action: str, **kwargs: Any) -> Any:
    """Drive a stand-in running in another process: ``control(url, "fail_job", job_id="d...", reason="boom")``.

    ``url`` is the stand-in's ``url`` or ``iam_url``: both listeners serve the control endpoint, so use the
    other one while a part is down (``control(iam_url, "come_back", part="api")``). Actions are the public
    test methods of :class:`StandInIBM` (``hold_all``, ``release_all``, ``set_delay``, ``fail_job``,
    ``cancel_job``, ``cancel_too_long``, ``lose_job``, ``fail_next``, ``set_stall``, ``reject_tokens``,
    ``go_down``, ``come_back``, ``job_ids``, ``job``, ``counts``, ``calls``, ``clear_log``, ``wait_for``);
    keyword arguments are passed through. Returns the method's result (JSON-decoded). A ``go_down`` of the
    listener that carries the request happens 0.2 s after the answer.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(
        f"{url}/_standin/control",
        data=json.dumps({"action": action, **kwargs}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    timeout = 10 + float(kwargs.get("timeout", 0) if action == "wait_for" else 0)
    with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
        return json.loads(response.read())["result"]


def main(argv: list[str] | None = None) -> int:
    """Process mode: serve until SIGTERM/SIGINT, printing ports and URLs as JSON on the first stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="API port; 0 picks a free one")
    parser.add_argument("--iam-port", type=int, default=0, help="IAM port; 0 picks a free one")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds from submission to completion")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the StatevectorSampler")
    parser.add_argument("--backends", default=",".join(DEFAULT_BACKENDS), help="comma-separated fake backend names")
    parser.add_argument("--hold", action="store_true", help="keep jobs queued until released via control")
    options = parser.parse_args(argv)
    server = StandInIBM(
        options.api_key,
        delay=options.delay,
        seed=options.seed,
        backends=tuple(name for name in options.backends.split(",") if name),
        host=options.host,
        port=options.port,
        iam_port=options.iam_port,
        hold=options.hold,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start()
    info = {
        "port": server.port,
        "iam_port": server.iam_port,
        "url": server.url,
        "iam_url": server.iam_url,
        "api_url": server.api_url,
        "instance": server.instance,
        "cert": str(server.cert_path),
        "api_key": server.api_key,
        "env": server.env(),
    }
    print(json.dumps(info), flush=True)
    try:
        done.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
