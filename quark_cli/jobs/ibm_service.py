"""One ``QiskitRuntimeService`` per (channel, url, instance) per command, with bounded calls.

The real client (``qiskit-ibm-runtime``) is imported here, lazily: never at ``quark --help``.

Credentials come only from the client's own sources: ``QISKIT_IBM_TOKEN`` (with ``QISKIT_IBM_URL`` /
``QISKIT_IBM_INSTANCE``) or an account saved with ``QiskitRuntimeService.save_account`` in
``~/.qiskit/qiskit-ibm.json``. A config gives ``channel``, ``instance`` and ``url``, never a token.
The token and the url are passed to the client explicitly, so the config's ``url`` wins over the
account's (the client would otherwise log "Input 'url' is ignored" and use the account's).

The client has no read timeout and ``result()`` waits for ever; every call here runs in a daemon
thread and is abandoned after ``timeout`` seconds (``TransientServiceError``: the next collect asks
again). The client gives "wrong API key", "IAM unreachable" and "API unreachable" the same
``InvalidAccountError``; ``describe_failure`` tells them apart by the exception's cause chain.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from typing import Any

from quark_cli.errors import NotSubmittedError, ServiceAuthError
from quark_cli.jobs.base import TransientServiceError

log = logging.getLogger("quark_cli")

DEFAULT_CHANNEL = "ibm_quantum_platform"
DEFAULT_TIMEOUT = 60  # seconds for one call of the client (it retries 5xx answers itself within it)
DEFAULT_IAM_URL = "https://iam.cloud.ibm.com"
INSTALL_HINT = "install it with: pip install qiskit-ibm-runtime qat-qiskit"

_services: dict[tuple[str, ...], Any] = {}
_objects: dict[tuple[Any, ...], Any] = {}  # a service's backends and jobs, fetched once per command
_lock = threading.Lock()


def forget() -> None:
    """Drop every service, backend and job object this process holds (a new command starts clean)."""
    with _lock:
        _services.clear()
        _objects.clear()


def once(service: Any, kind: str, name: str, fetch: Any) -> Any:
    """``fetch()`` the first time ``service`` is asked for its ``kind`` ``name`` in this process; then the same object.

    A backend is fetched with its configuration and properties, a job with its final status: asking
    again would repeat those requests for every job of a command.
    """
    key = (id(service), kind, name)
    if key not in _objects:
        value = fetch()
        with _lock:
            _objects.setdefault(key, value)
    return _objects[key]


def bounded(what: str, timeout: float, function: Any, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, abandoned after ``timeout`` seconds.

    Runs the call in a daemon thread, so a stalled connection can neither hang the command nor keep
    the process alive at exit. Raises ``TransientServiceError`` naming ``what`` when no answer came
    in time; whatever the call raised otherwise.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = function(*args, **kwargs)
        except BaseException as error:  # handed to the caller's thread
            box["error"] = error
        finally:
            done.set()

    threading.Thread(target=target, name=f"ibm {what}", daemon=True).start()
    if not done.wait(timeout):
        raise TransientServiceError(f"{what}: IBM Quantum did not answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _quiet_client() -> None:
    """The client's logger prints "Loading account with the given token" to stderr at every service."""
    client_log = logging.getLogger("qiskit_ibm_runtime")
    if client_log.level < logging.ERROR:
        client_log.setLevel(logging.ERROR)


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and every exception it was raised from, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _iam_url() -> str:
    return os.environ.get("IAM_URL") or DEFAULT_IAM_URL


def describe_failure(error: BaseException, url: str | None) -> tuple[str, bool]:
    """A one-line reason for a failed call and whether it is the credentials' fault.

    ``(message, True)`` for a refused API key or token (IAM's 400/401, the API's 401); ``(message,
    False)`` for an unreachable IAM or API, a time-out or a 5xx, which a later try may get past.
    ``url`` is the service's base URL, None when the account's (not known here).
    """
    import requests

    service = f"IBM Quantum at {url}" if url else "IBM Quantum"

    for cause in _causes(error):
        code = getattr(cause, "status_code", None) or getattr(cause, "code", None)
        name = type(cause).__name__
        if name == "ApiException" and code in (400, 401, 403):
            asked = getattr(getattr(cause, "http_response", None), "url", "") or ""
            if asked.startswith(_iam_url()):
                return f"IBM Cloud IAM at {_iam_url()} refused the API key (HTTP {code})", True
            return f"{service} refused the token (HTTP {code})", True
        if name == "IBMNotAuthorizedError" or (name == "RequestsApiError" and code == 401):
            return f"{service} refused the token (HTTP 401)", True
        if isinstance(cause, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            target = getattr(getattr(cause, "request", None), "url", "") or ""
            if target.startswith(_iam_url()):
                return f"cannot reach IBM Cloud IAM at {_iam_url()} ({type(cause).__name__})", False
            return f"cannot reach {service} ({type(cause).__name__})", False
    return f"{service}: {type(error).__name__}: {error}", False


def is_transient(error: BaseException) -> bool:
    """True for faults a later try may get past: no connection, a time-out, a 5xx answer."""
    import requests

    for cause in _causes(error):
        if isinstance(cause, TransientServiceError | requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return True
        if isinstance(cause, requests.exceptions.RetryError):
            return True
        code = getattr(cause, "status_code", None)
        if isinstance(code, int) and code >= 500:
            return True
    return False


def _refused_or_described(error: BaseException, url: str | None) -> str:
    """``describe_failure``'s message; ``ServiceAuthError`` instead when the credentials were refused."""
    message, refused = describe_failure(error, url)
    if refused:
        raise ServiceAuthError(f"{message}; check QISKIT_IBM_TOKEN or the saved account") from None
    return message


def call(what: str, settings: dict[str, Any], function: Any, *args: Any, **kwargs: Any) -> Any:
    """A bounded call of the client; its faults as quark's errors.

    Raises ``ServiceAuthError`` for refused credentials, ``TransientServiceError`` for an unreachable
    service, a time-out (``settings["timeout"]`` seconds) or a 5xx, and re-raises anything else.
    """
    try:
        return bounded(what, float(settings.get("timeout") or DEFAULT_TIMEOUT), function, *args, **kwargs)
    except TransientServiceError:
        raise
    except Exception as error:
        message = _refused_or_described(error, settings.get("url") or None)
        if is_transient(error):
            raise TransientServiceError(f"{what}: {message}") from error
        raise


def _account(channel: str) -> Any:
    """The client's account for ``channel``: from ``QISKIT_IBM_TOKEN`` or the saved accounts."""
    from qiskit_ibm_runtime.accounts import AccountManager
    from qiskit_ibm_runtime.accounts.exceptions import AccountNotFoundError, InvalidAccountError

    try:
        return AccountManager.get(channel=channel)  # type: ignore[arg-type]
    except (AccountNotFoundError, InvalidAccountError, ValueError) as error:
        raise ServiceAuthError(
            f"no IBM Quantum credentials for channel {channel!r} ({error}): set QISKIT_IBM_TOKEN, or save an "
            "account with QiskitRuntimeService.save_account(channel=..., token=..., instance=...)"
        ) from None


def service_for(settings: dict[str, Any], submitting: bool) -> Any:
    """The ``QiskitRuntimeService`` for ``settings`` (channel, url, instance, timeout), made once per command.

    ``settings["url"]`` is the service's base URL; the Runtime API is ``<url>/api/v1``. Empty: the
    account's url, resolved by the client (``https://quantum.cloud.ibm.com/api/v1`` for us-east).
    Raises ``ServiceAuthError`` for missing or refused credentials; for an unreachable IAM or API,
    ``NotSubmittedError`` when ``submitting`` (nothing reached the service) and
    ``TransientServiceError`` otherwise (the next collect asks again).
    """
    try:
        import qiskit_ibm_runtime  # noqa: F401
    except ImportError:
        raise NotSubmittedError(
            f"IBMSampler needs qiskit-ibm-runtime, which is not installed; {INSTALL_HINT}"
        ) from None
    channel = settings.get("channel") or DEFAULT_CHANNEL
    with _lock:
        _quiet_client()
        account = _account(channel)
        token = hashlib.sha256(str(account.token).encode()).hexdigest()  # a new token is a new service
        key = (channel, settings.get("url") or "", settings.get("instance") or "", token, _iam_url())
        if key in _services:
            return _services[key]
        url = settings.get("url") or account.url or "https://cloud.ibm.com"
        try:
            service = bounded("connect", float(settings.get("timeout") or DEFAULT_TIMEOUT), _connect, account, settings)
        except TransientServiceError as error:
            if submitting:
                raise NotSubmittedError(f"IBM Quantum at {url}: {error}") from None
            raise
        except Exception as error:
            message = _refused_or_described(error, url)
            if submitting:
                raise NotSubmittedError(message) from None
            raise TransientServiceError(message) from error
        _services[key] = service
        return service


def _connect(account: Any, settings: dict[str, Any]) -> Any:
    from qiskit_ibm_runtime import QiskitRuntimeService

    url = settings.get("url") or ""
    return QiskitRuntimeService(
        channel=settings.get("channel") or account.channel or DEFAULT_CHANNEL,
        token=account.token,
        url=url or account.url,
        instance=settings.get("instance") or account.instance or None,
        url_resolver=_exact_api_base if url else None,
        verify=account.verify,
    )


def _exact_api_base(url: str, instance: str, private_endpoint: bool | None = False, channel: str = "") -> str:
    """The Runtime API base for a config's ``url``: ``<url>/api/v1``, whatever the instance's region."""
    return url.rstrip("/") + "/api/v1"
