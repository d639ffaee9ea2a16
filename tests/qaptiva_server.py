"""A local stand-in for a Qaptiva (QLMaaS) server, so tests can drive the real ``qat.qlmaas`` client offline.

Why: the code under test talks to Qaptiva through the unmodified ``qat.qlmaas.QLMaaSConnection``. Real
servers are remote, slow and cannot be told to fail on demand; this one runs on 127.0.0.1, executes jobs
on a local myQLM QPU and lets a test inject the faults (failed, cancelled, lost jobs, 503s, held queues,
expired sessions) the code must survive. It lives under ``tests/`` and is never imported by ``quark_cli``.

Wire protocol served (as the 1.14 client speaks it):

* ``POST /login/`` with JSON ``{"username", "password"}``: 200 and ``sessionid`` / ``csrftoken`` cookies,
  or 401. Later requests without a known session cookie (or without the matching ``X-CSRFToken`` header)
  get 403.
* ``POST /qlm/<Service>/<method>`` (``Scheduler`` or ``QLMHelpers``): the body is the bare Thrift-binary
  ``<method>_args`` struct, the answer the bare ``<method>_result`` struct (no message envelope), with a
  ``Qaptiva-Server: 1.14.0`` header on every answer.
* ``GET /logout/``: forgets the session.
* ``POST /_standin/control`` (not part of Qaptiva; no login needed): JSON ``{"action": ..., ...}`` to drive
  the fault controls of a server running as a separate process, see :func:`control`.

How a client connects:

* ``QLMaaSConnection(hostname="127.0.0.1", port=server.port, check_host=False, timeout=10)``. The
  certificate is self-signed, made at start-up in a temp dir (SAN ``localhost`` and ``127.0.0.1``). With
  ``check_host=False`` the client's SSL context is ``CERT_NONE`` without hostname check, nothing else is
  needed. With ``check_host=True`` it verifies against the default trust store, which honours the
  ``SSL_CERT_FILE`` environment variable: set that to ``server.cert_path`` and verification passes. Pass a
  ``timeout``: the client's default is 600 s.
* Credentials: the client reads ``~/.netrc`` (``HOME`` looked up at login time) and that wins over
  ``QLM_USER`` / ``QLM_PASSWD``; with neither it prompts. So tests set both env vars and point ``HOME`` at
  a temp dir. Config files ``~/.qlmaas/config.ini`` and ``/etc/qlmaas/client.ini`` are located when
  ``qat.qlmaas`` is imported, so a later ``HOME`` does not move them: patch
  ``qat.qlmaas.https.QLMAAS_USER_CONFIG`` / ``QLMAAS_GLOBAL_CONFIG`` as well (constructor arguments win
  over the files anyway, except e.g. ``authentication``).

What the client does with the answers (observed with qlmaas 1.14.0):

* ``conn.get_status(job_id)`` returns ``'waiting'``, ``'running'``, ``'done'``, ``'failed'``,
  ``'cancelled'``, ``'deleted'`` or ``'unknown_job'`` (the ``JobStatus`` name in lower case); a lost job is
  answered with ``JobInfo(status=UNKNOWN_JOB)``.
* ``get_result`` of a waiting/running job: empty answer, the client prints ``The result is not
  available.`` and returns ``None``. Failed job: ``QPUException`` carrying the message. Cancelled/deleted:
  ``QLMServiceException``. Lost job: ``get_result`` and ``cancel_job`` raise ``QLMServiceException``.
* ``cancel_job`` returns ``True`` for a waiting/running job, ``False`` once it has ended.
* ``get_qpus`` is cached by the client after its first good answer (one request per connection).
* Injected 503 → ``RuntimeError("Service Unavailable - ...")``, 403 → ``RuntimeError("Forbidden - ...")``.
  The client leaves the error body unread, so on a kept-alive connection its *next* request reaches the
  server twice (stale connection, then a fresh one): a submit right after a 503 creates two jobs (the
  client reports the second). ``close_on_fault=True`` avoids it. After a 403 its logout fails (warning).
* The client keeps its latest connection alive in ``sys.modules["qlmaas.connection"].CONNECTION``; a
  connection logs out (``GET /logout/``) only when collected.

Run as a process (for CLI subprocess tests, e.g. "server down" ones)::

    python tests/qaptiva_server.py --port 0 --user alice --password wonderland --delay 0.5

Other flags: ``--host``, ``--fail-rate``, ``--seed``, ``--hold``, ``--fail-jobs MESSAGE``,
``--close-on-fault``. It prints the port it listens on as the first line of stdout, then serves until
SIGTERM/SIGINT (exit code 0). Drive it from the test with :func:`control`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import http.cookies
import json
import random
import secrets
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from standin_https import QueueControls, TrackingHandler, TrackingHTTPServer, close, listen, make_certificate

SERVER_VERSION = "1.14.0"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
DEFAULT_USER = "alice"
DEFAULT_PASSWORD = "wonderland"


def _default_qpus() -> dict[str, Callable[[], Any]]:
    """QPU names the stand-in offers; ``qat.qpus:LinAlg`` is not importable from myQLM, so map it locally."""
    from qat.qpus import get_default_qpu

    return {"qat.qpus:LinAlg": get_default_qpu}


# QPU instances are shared by every stand-in of the process: building myQLM's default stack takes about a
# second (scipy imports), and the simulators are run one job at a time.
_QPU_CACHE: dict[Callable[[], Any], Any] = {}
_QPU_LOCK = threading.RLock()


def _qpu_instance(factory: Callable[[], Any]) -> Any:
    with _QPU_LOCK:
        if factory not in _QPU_CACHE:
            _QPU_CACHE[factory] = factory()
        return _QPU_CACHE[factory]


def _now() -> str:
    return dt.datetime.now().strftime(DATE_FORMAT)


@dataclass
class _Job:
    """Server-side record of one submitted batch."""

    id: str
    owner: str
    qpu_name: str
    batch: Any  # qat.core.Batch
    batch_type: int
    submitted_at: float  # time.monotonic() at submission, the delay counts from it
    submission_date: str
    status: int
    starting_date: str | None = None
    ending_date: str | None = None
    message: str | None = None
    result: Any = None  # qat.core.BatchResult once done
    meta_data: dict[str, str] = field(default_factory=dict)


class _RequestHandler(TrackingHandler):
    """Thin HTTP layer; all state and decisions live in :class:`StandInQaptiva`."""

    server: _HTTPServer

    def _send(
        self,
        code: int,
        body: bytes = b"",
        content_type: str = "text/plain",
        cookies: dict | None = None,
        close: bool = False,
    ) -> None:
        self.send_response(code)
        self.send_header("Qaptiva-Server", SERVER_VERSION)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (cookies or {}).items():
            self.send_header("Set-Cookie", f"{key}={value}; Path=/; SameSite=Lax")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _cookies(self) -> dict[str, str]:
        jar = http.cookies.SimpleCookie()
        for header in self.headers.get_all("Cookie") or []:
            jar.load(header)
        return {key: morsel.value for key, morsel in jar.items()}

    def do_POST(self) -> None:  # noqa: N802 - name set by the base class
        """Route login, Thrift calls and stand-in control requests."""
        owner = self.server.owner
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        if path.rstrip("/") == "/login":
            code, payload, cookies = owner._login(body)
            self._send(code, payload, "application/json", cookies)
        elif path.startswith("/qlm/"):
            parts = path.strip("/").split("/")
            if len(parts) != 3:
                self._send(404, b"Not found")
                return
            code, payload = owner._call(parts[1], parts[2], body, self._cookies(), self.headers.get("X-CSRFToken"))
            close = code != 200 and owner.close_on_fault
            self._send(code, payload, "application/octet-stream" if code == 200 else "text/plain", close=close)
        elif path.rstrip("/") == "/_standin/control":
            code, payload = owner._control_request(body)
            self._send(code, payload, "application/json")
        else:
            self._send(404, b"Not found")

    def do_GET(self) -> None:  # noqa: N802 - name set by the base class
        """Only logout is a GET."""
        if self.path.split("?", 1)[0].rstrip("/") == "/logout":
            self.server.owner._logout(self._cookies())
            self._send(200, b'{"detail": "logged out"}', "application/json")
        else:
            self._send(404, b"Not found")


class _HTTPServer(TrackingHTTPServer):
    """The stand-in's HTTPS server; ``owner`` answers every request."""

    owner: StandInQaptiva


class StandInQaptiva(QueueControls):
    """A Qaptiva (QLMaaS) look-alike on 127.0.0.1 that the real ``qat.qlmaas`` client can use.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`). Jobs are queued as WAITING, run on a
    local myQLM QPU once ``delay`` seconds have passed since submission (the delay is read live, so
    :meth:`set_delay` also affects jobs already waiting) and unless the queue is held, then become DONE.
    """

    def __init__(
        self,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        *,
        delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        fail_rate: float = 0.0,
        seed: int = 0,
        hold: bool = False,
        fail_jobs: str | None = None,
        close_on_fault: bool = False,
        qpus: dict[str, Callable[[], Any]] | None = None,
    ) -> None:
        """Configure credentials, queueing and faults; nothing listens until :meth:`start`.

        ``fail_rate``: fraction of ``/qlm/`` requests answered 503 (drawn from ``random.Random(seed)``).
        ``fail_jobs``: if set, every job fails on execution with that message (handy in process mode).
        ``close_on_fault``: send ``Connection: close`` with error answers. By default the connection is kept
        alive, like the real service, and then the 1.14 client sends its next request twice (on the stale
        connection, then on a fresh one): a submit right after a 503 creates two jobs.
        ``qpus``: QPU name -> factory of a local QPU; default maps ``qat.qpus:LinAlg`` to myQLM's default QPU.
        """
        self.user = user
        self.password = password
        self.hostname = host
        self._requested_port = port
        self.fail_rate = fail_rate
        self.fail_jobs = fail_jobs
        self.close_on_fault = close_on_fault
        self._random = random.Random(seed)
        self._delay = float(delay)
        self._held = hold
        self._stall = 0.0
        self._fail_next: list[int] = []
        self._qpus = qpus if qpus is not None else _default_qpus()
        self._cond = threading.Condition()
        self._jobs: dict[str, _Job] = {}
        self._job_counter = 0
        self._sessions: dict[str, tuple[str, str]] = {}  # sessionid -> (user, csrftoken)
        self.request_log: list[tuple[str, str]] = []
        self.injected_faults: list[tuple[str, str]] = []
        self.logins = 0
        self.logouts = 0
        self._stopped = False
        self._tmpdir: Path | None = None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self.cert_path: Path | None = None
        self._key_path: Path | None = None
        self._down_port = 0

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> StandInQaptiva:
        """Make the certificate, bind the port and serve in a background thread."""
        self._tmpdir = Path(tempfile.mkdtemp(prefix="qaptiva-standin-"))
        self.cert_path, self._key_path = make_certificate(self._tmpdir)
        self._listen(self._requested_port)
        warm_up = threading.Thread(target=self._warm_up, name="standin-warm-up", daemon=True)
        self._workers.append(warm_up)
        warm_up.start()
        return self

    def _listen(self, port: int) -> None:
        httpd = _HTTPServer((self.hostname, port), _RequestHandler, bind_and_activate=True)
        httpd.owner = self
        self._httpd, self._thread = listen(httpd, self.cert_path, self._key_path, "qaptiva-standin")

    def _close_listener(self) -> None:
        close(self._httpd, self._thread)

    def go_down(self) -> None:
        """An outage: stop listening (clients get 'connection refused') but keep jobs and sessions."""
        self._down_port = self.port
        self._close_listener()

    def come_back(self) -> None:
        """End the outage: listen again on the same port, with the same jobs and sessions."""
        self._listen(self._down_port)

    def _warm_up(self) -> None:
        """Build the QPUs while the client logs in, so the first job does not take a second longer."""
        for factory in self._qpus.values():
            if self._stopped:
                return
            _qpu_instance(factory)

    def stop(self) -> None:
        """Stop serving, wake and drop the job threads, remove the certificate; safe to call twice."""
        with self._cond:
            if self._stopped:
                return
            self._stopped = True
            self._cond.notify_all()
        self._close_listener()
        for worker in list(self._workers):
            worker.join(timeout=5)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> StandInQaptiva:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port actually bound (a free one when constructed with ``port=0``)."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL, e.g. ``https://127.0.0.1:43817``."""
        return f"https://{self.hostname}:{self.port}"

    # -- fault controls and inspection (for tests) ---------------------------------------------------------

    def fail_job(self, job_id: str, message: str = "Job failed (injected by the stand-in)") -> None:
        """Mark a job FAILED now, whatever its state; ``get_result`` then raises the message."""
        with self._cond:
            job = self._job_or_keyerror(job_id)
            job.status = self._status("FAILED")
            job.message = message
            job.result = None
            job.ending_date = _now()
            self._cond.notify_all()

    def cancel(self, job_id: str) -> None:
        """Cancel a job server-side (as if an operator did), whatever its state."""
        with self._cond:
            job = self._job_or_keyerror(job_id)
            job.status = self._status("CANCELLED")
            job.ending_date = _now()
            self._cond.notify_all()

    def lose_job(self, job_id: str) -> None:
        """Forget a job entirely: its status becomes ``unknown_job``, get_result/cancel raise in the client."""
        with self._cond:
            self._job_or_keyerror(job_id)
            del self._jobs[job_id]
            self._cond.notify_all()

    def fail_next(self, count: int = 1, code: int = 503) -> None:
        """Answer the next ``count`` ``/qlm/`` requests with HTTP ``code``: a deterministic transient fault."""
        with self._cond:
            self._fail_next.extend([code] * count)

    def set_fail_rate(self, rate: float) -> None:
        """Answer this fraction of ``/qlm/`` requests with 503 from now on (0 turns the injection off)."""
        with self._cond:
            self.fail_rate = float(rate)

    def set_stall(self, seconds: float) -> None:
        """Sleep this long before answering each ``/qlm/`` request (for client timeout tests)."""
        self._stall = float(seconds)

    def expire_sessions(self) -> None:
        """Drop every session, as a server restart or expiry would: the next calls get 403."""
        with self._cond:
            self._sessions.clear()

    def job_ids(self) -> list[str]:
        """Ids of the jobs the server currently knows, in submission order."""
        with self._cond:
            return list(self._jobs)

    def job_status(self, job_id: str) -> str:
        """Status name as the client spells it (``'waiting'``, ``'done'``, ... or ``'unknown_job'``)."""
        with self._cond:
            job = self._jobs.get(job_id)
            return self._status_name(job.status if job else self._status("UNKNOWN_JOB"))

    def wait_for(self, job_id: str, status: str, timeout: float = 10.0) -> None:
        """Block until a job reaches ``status`` (e.g. ``'running'``); ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.job_status(job_id) != status:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{job_id} is {self.job_status(job_id)!r}, not {status!r}")
                self._cond.wait(remaining)

    def calls(self, method: str | None = None) -> list[tuple[str, str]]:
        """Copy of the request log, ``(service, method)`` per ``/qlm/`` request, optionally for one method."""
        with self._cond:
            return [entry for entry in self.request_log if method is None or entry[1] == method]

    def count(self, method: str) -> int:
        """How many ``/qlm/`` requests named ``method`` arrived (including ones answered with a fault)."""
        return len(self.calls(method))

    def clear_log(self) -> None:
        """Forget the request log and injected-fault log."""
        with self._cond:
            self.request_log.clear()
            self.injected_faults.clear()

    # -- HTTP endpoints ------------------------------------------------------------------------------------

    def _login(self, body: bytes) -> tuple[int, bytes, dict[str, str] | None]:
        try:
            creds = json.loads(body or b"{}")
            username, password = creds.get("username"), creds.get("password")
        except (ValueError, AttributeError):
            return 400, b'{"detail": "Bad request"}', None
        if username != self.user or password != self.password:
            return 401, b'{"detail": "Invalid username or password"}', None
        session, csrf = secrets.token_hex(16), secrets.token_hex(16)
        with self._cond:
            self._sessions[session] = (username, csrf)
            self.logins += 1
        return 200, b'{"detail": "logged in"}', {"sessionid": session, "csrftoken": csrf}

    def _logout(self, cookies: dict[str, str]) -> None:
        with self._cond:
            self._sessions.pop(cookies.get("sessionid", ""), None)
            self.logouts += 1

    def _call(
        self, service: str, method: str, body: bytes, cookies: dict[str, str], csrf_header: str | None
    ) -> tuple[int, bytes]:
        with self._cond:
            session = self._sessions.get(cookies.get("sessionid", ""))
            if session is None or csrf_header != session[1]:
                return 403, b"Forbidden: no valid session"
            user = session[0]
            self.request_log.append((service, method))
            fault = self._fail_next.pop(0) if self._fail_next else None
            if fault is None and self.fail_rate > 0 and self._random.random() < self.fail_rate:
                fault = 503
            if fault is not None:
                self.injected_faults.append((service, method))
        if fault is not None:
            return fault, f"HTTP {fault} injected by the Qaptiva stand-in".encode()
        if self._stall:
            time.sleep(self._stall)
        module = _service_module(service)
        handler = getattr(self, f"_rpc_{service}_{method}", None)
        if module is None or handler is None:
            return 404, f"Unknown method {service}.{method}".encode()
        from qat.comm.thrift_utils import deserialize, serialize

        args = getattr(module, f"{method}_args")()
        try:
            deserialize(args, body)
        except Exception as exc:  # noqa: BLE001 - any decoding problem is the client's fault
            return 400, f"Cannot decode {method}_args: {exc}".encode()
        result = getattr(module, f"{method}_result")()
        try:
            handler(args, result, user)
        except Exception as exc:  # noqa: BLE001 - a stand-in bug must show up as an answer, not a dropped socket
            return 500, f"Stand-in error in {service}.{method}: {exc!r}".encode()
        return 200, serialize(result)[0]

    def _control_request(self, body: bytes) -> tuple[int, bytes]:
        try:
            request = json.loads(body or b"{}")
            answer = self._control(request.pop("action"), **request)
        except (KeyError, TypeError, ValueError) as exc:
            return 400, json.dumps({"error": repr(exc)}).encode()
        return 200, json.dumps({"ok": True, "result": answer}).encode()

    def _control(self, action: str, **kwargs: Any) -> Any:
        """Dispatch of the ``/_standin/control`` actions: the public test methods, by name."""
        allowed = {
            "fail_job",
            "cancel",
            "lose_job",
            "set_delay",
            "hold_all",
            "release_all",
            "fail_next",
            "set_fail_rate",
            "set_stall",
            "expire_sessions",
            "job_ids",
            "job_status",
            "calls",
            "count",
            "clear_log",
        }
        if action not in allowed:
            raise ValueError(f"unknown action {action!r}")
        return getattr(self, action)(**kwargs)

    # -- Thrift methods: QLMHelpers ------------------------------------------------------------------------

    def _rpc_QLMHelpers_get_qpus(self, args: Any, result: Any, user: str) -> None:  # noqa: N802
        from qat.comm.qlmaas.ttypes import ServiceDescription

        result.success = [
            ServiceDescription(name=name, description=f"stand-in for {name} (local myQLM)", warning_message=None)
            for name in self._qpus
        ]

    def _rpc_QLMHelpers_get_plugins(self, args: Any, result: Any, user: str) -> None:  # noqa: N802
        result.success = []

    def _rpc_QLMHelpers_get_generators(self, args: Any, result: Any, user: str) -> None:  # noqa: N802
        result.success = []

    def _rpc_QLMHelpers_check_qpu_constructor(self, args: Any, result: Any, user: str) -> None:  # noqa: N802
        if args.qpu_name in self._qpus:
            result.success = True
        else:
            result.err = _service_error(f"Unknown QPU {args.qpu_name}", "QLMHelpers")

    # -- Thrift methods: Scheduler -------------------------------------------------------------------------

    def _rpc_Scheduler_submit_batch(self, args: Any, result: Any, user: str) -> None:  # noqa: N802
        from qat.core import Batch

        async_batch = args.batch
        qpu_name = async_batch.qpu.name if async_batch.qpu is not None else None
        if qpu_name not in self._qpus:
            result.err = _service_error(f"Unknown QPU {qpu_name}", "Scheduler")
            return
        batch = Batch.from_thrift(async_batch.batch)  # wraps the jobs into qat.core.Job too
        with self._cond:
            self._job_counter += 1
            job_id = f"Job{self._job_counter}"
            job = _Job(
                id=job_id,
                owner=user,
                qpu_name=qpu_name,
                batch=batch,
                batch_type=async_batch.type or 0,
                submitted_at=time.monotonic(),
                submission_date=_now(),
                status=self._status("WAITING"),
                meta_data=dict(batch.meta_data or {}),
            )
            self._jobs[job_id] = job
            worker = threading.Thread(target=self._run_job, args=(job,), name=f"standin-{job_id}", daemon=True)
            self._workers.append(worker)
        worker.start()
        result.success = job_id

    def _rpc_Scheduler_get_job_info(self, args: Any, result: Any, user: str) -> None:  # noqa: N802
        with self._cond:
            job = self._jobs.get(args.job_id)
            result.success = self._job_info(job, args.job_id)

    def _rpc_Scheduler_get_jobs_info(self, args: Any, result: Any, user: str) -> None:  # noqa: N802
        with self._cond:
            result.success = [self._job_info(job, job.id) for job in self._jobs.values() if job.owner == user]

    def _rpc_Scheduler_get_result(self, args: Any, result: Any, user: str) -> None:  # noqa: N802
        from qat.comm.asynchronous.ttypes import QLMaaSResult
        from qat.comm.exceptions.ttypes import QPUException

        with self._cond:
            job = self._jobs.get(args.job_id)
            if job is None:
                result.err = _service_error(f"Unknown job {args.job_id}", "Scheduler")
            elif job.status == self._status("FAILED"):
                result.qpu_err = QPUException(code=0, modulename="qat.qpus", message=job.message)
            elif job.status in (self._status("WAITING"), self._status("RUNNING")):
                pass  # an empty answer: the client prints "The result is not available." and returns None
            elif job.status != self._status("DONE"):
                status = self._status_name(job.status).upper()
                result.err = _service_error(f"Job {job.id} has no result (status {status})", "Scheduler")
            else:
                result.success = QLMaaSResult(results=job.result, batch=job.batch)

    def _rpc_Scheduler_get_asyncbatch(self, args: Any, result: Any, user: str) -> None:  # noqa: N802
        from qat.comm.asynchronous.ttypes import AsyncBatch, QLMServiceIdentifier

        with self._cond:
            job = self._jobs.get(args.job_id)
            if job is None:
                result.err = _service_error(f"Unknown job {args.job_id}", "Scheduler")
            else:
                result.success = AsyncBatch(
                    type=job.batch_type, qpu=QLMServiceIdentifier(name=job.qpu_name), batch=job.batch
                )

    def _rpc_Scheduler_cancel_job(self, args: Any, result: Any, user: str) -> None:  # noqa: N802
        with self._cond:
            job = self._jobs.get(args.job_id)
            if job is None:
                result.err = _service_error(f"Unknown job {args.job_id}", "Scheduler")
            elif job.status in (self._status("WAITING"), self._status("RUNNING")):
                job.status = self._status("CANCELLED")
                job.ending_date = _now()
                self._cond.notify_all()
                result.success = True
            else:
                result.success = False

    def _rpc_Scheduler_delete_job_files(self, args: Any, result: Any, user: str) -> None:  # noqa: N802
        with self._cond:
            job = self._jobs.get(args.job_id)
            if job is None:
                result.err = _service_error(f"Unknown job {args.job_id}", "Scheduler")
            elif job.status in (self._status("WAITING"), self._status("RUNNING")):
                result.success = False
            else:
                job.status = self._status("DELETED")
                job.result = None
                result.success = True

    # -- job execution -------------------------------------------------------------------------------------

    def _run_job(self, job: _Job) -> None:
        """Wait for the delay (and release), run on the local QPU, store the outcome unless overridden."""
        waiting = self._status("WAITING")
        with self._cond:
            while not self._stopped and job.status == waiting and self._jobs.get(job.id) is job:
                remaining = job.submitted_at + self._delay - time.monotonic()
                if not self._held and remaining <= 0:
                    break
                self._cond.wait(None if self._held else remaining)
            if self._stopped or job.status != waiting or self._jobs.get(job.id) is not job:
                return
            job.status = self._status("RUNNING")
            job.starting_date = _now()
            self._cond.notify_all()
        outcome, message = None, None
        try:
            if self.fail_jobs is not None:
                raise RuntimeError(self.fail_jobs)
            with _QPU_LOCK:
                # to_thrift() packs in-memory data (e.g. a statevector) into bytes that survive the wire
                outcome = _qpu_instance(self._qpus[job.qpu_name]).submit(job.batch).to_thrift()
        except Exception as exc:  # noqa: BLE001 - a QPU error becomes a FAILED job, as on the real service
            message = f"{type(exc).__name__}: {exc}" if self.fail_jobs is None else self.fail_jobs
        with self._cond:
            if job.status != self._status("RUNNING"):  # cancelled, failed or deleted meanwhile
                return
            job.ending_date = _now()
            if message is None:
                job.status, job.result = self._status("DONE"), outcome
            else:
                job.status, job.message = self._status("FAILED"), message
            self._cond.notify_all()

    def _job_info(self, job: _Job | None, job_id: str) -> Any:
        from qat.comm.qlmaas.ttypes import JobInfo

        if job is None:
            return JobInfo(id=job_id, status=self._status("UNKNOWN_JOB"))
        queue_pos = None
        if job.status == self._status("WAITING"):
            waiting = [other for other in self._jobs.values() if other.status == job.status]
            queue_pos = waiting.index(job)
        return JobInfo(
            id=job.id,
            status=job.status,
            submission_date=job.submission_date,
            owner=job.owner,
            type=job.batch_type,
            resources=[],
            message=job.message,
            queue_pos=queue_pos,
            starting_date=job.starting_date,
            ending_date=job.ending_date,
            meta_data=job.meta_data,
        )

    def _job_or_keyerror(self, job_id: str) -> _Job:
        if job_id not in self._jobs:
            raise KeyError(f"no job {job_id!r} on the stand-in")
        return self._jobs[job_id]

    @staticmethod
    def _status(name: str) -> int:
        from qat.comm.qlmaas.ttypes import JobStatus

        return JobStatus._NAMES_TO_VALUES[name]

    @staticmethod
    def _status_name(value: int) -> str:
        from qat.comm.qlmaas.ttypes import JobStatus

        return JobStatus._VALUES_TO_NAMES[value].lower()


def _service_module(service: str) -> Any:
    if service == "Scheduler":
        from qat.comm.qlmaas import Scheduler

        return Scheduler
    if service == "QLMHelpers":
        from qat.comm.qlmaas import QLMHelpers

        return QLMHelpers
    return None


def _service_error(message: str, service: str) -> Any:
    from qat.comm.qlmaas.ttypes import QLMServiceException

    return QLMServiceException(message=message, service_name=service)


def control(url: str, action: str, **kwargs: Any) -> Any:
    """Drive a stand-in running in another process: ``control(url, "lose_job", job_id="Job1")``.

    Actions are the names of the public test methods of :class:`StandInQaptiva` (``fail_job``, ``cancel``,
    ``lose_job``, ``set_delay``, ``hold_all``, ``release_all``, ``fail_next``, ``set_stall``,
    ``set_fail_rate``, ``expire_sessions``, ``job_ids``, ``job_status``, ``calls``, ``count``,
    ``clear_log``); keyword arguments are passed through. Returns the method's result (JSON-decoded).
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
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return json.loads(response.read())["result"]


def main(argv: list[str] | None = None) -> int:
    """Process mode: serve until SIGTERM/SIGINT, printing the bound port first so a test can read it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--user", default=DEFAULT_USER)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds a job waits before running")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="fraction of /qlm/ requests answered 503")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault injection")
    parser.add_argument("--hold", action="store_true", help="keep jobs waiting until released via control")
    parser.add_argument("--fail-jobs", metavar="MESSAGE", help="every job fails on execution with MESSAGE")
    parser.add_argument("--close-on-fault", action="store_true", help="close the connection after error answers")
    options = parser.parse_args(argv)
    server = StandInQaptiva(
        options.user,
        options.password,
        delay=options.delay,
        host=options.host,
        port=options.port,
        fail_rate=options.fail_rate,
        seed=options.seed,
        hold=options.hold,
        fail_jobs=options.fail_jobs,
        close_on_fault=options.close_on_fault,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start()
    print(server.port, flush=True)
    try:
        done.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())


def drop_client_connections() -> None:
    """Let the client's connections log out now, while their server still answers (else: a RuntimeWarning).

    A connection logs out when collected, but the client keeps the latest one alive in the module global
    ``qlmaas.connection.CONNECTION`` (for ``qlmaas.jobs``), so clear that first.
    """
    module = sys.modules.get("qlmaas.connection")
    if module is not None and hasattr(module, "CONNECTION"):
        module.CONNECTION = None
    gc.collect()
