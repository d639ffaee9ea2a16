"""The HTTPS plumbing the stand-in servers share (tests/qaptiva_server.py, tests/ibm_server.py).

A self-signed certificate for localhost and 127.0.0.1; a threaded HTTPS server that does each TLS
handshake in its connection's thread and can cut its kept-alive connections (a stand-in that goes
down is gone for open clients too); and starting and stopping one such listener. Never imported by
``quark_cli``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """Create a self-signed certificate for localhost/127.0.0.1; cryptography if present, else openssl."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:  # pragma: no cover - cryptography is normally installed alongside myQLM
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            + ["-keyout", str(key_path), "-out", str(cert_path), "-days", "2", "-subj", "/CN=localhost"]
            + ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True,
            capture_output=True,
        )
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


class TrackingHTTPServer(ThreadingHTTPServer):
    """Threaded HTTPS server that can cut its open keep-alive connections when its stand-in stops.

    ``quiet_errors``: the exceptions of a connection that are not reported (clients that hang up or
    refuse the certificate).
    """

    daemon_threads = True
    allow_reuse_address = True
    quiet_errors: tuple[type[BaseException], ...] = (ssl.SSLError, ConnectionError, TimeoutError)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s ``getfqdn`` (a reverse DNS lookup: tests stay on 127.0.0.1)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def track(self, sock: socket.socket, open_: bool) -> None:
        with self._open_lock:
            (self._open.add if open_ else self._open.discard)(sock)

    def close_connections(self) -> None:
        """Cut kept-alive client connections, so a stopped stand-in is really gone for open clients too."""
        with self._open_lock:
            socks, self._open = list(self._open), set()
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hang up or refuse the certificate; report anything else."""
        if not isinstance(sys.exc_info()[1], self.quiet_errors):
            super().handle_error(request, client_address)


class TrackingHandler(BaseHTTPRequestHandler):
    """Request handler of a ``TrackingHTTPServer``: TLS handshake in its own thread, connections tracked."""

    protocol_version = "HTTP/1.1"
    server: TrackingHTTPServer

    def setup(self) -> None:
        """TLS handshake here, in the connection's thread, so a stuck client cannot block ``accept``."""
        self.server.track(self.request, open_=True)
        self.request.do_handshake()
        super().setup()

    def finish(self) -> None:
        """Forget the connection once it ends."""
        try:
            super().finish()
        finally:
            self.server.track(self.request, open_=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature set by the base class
        """Keep test output quiet."""


def listen(
    server: TrackingHTTPServer, cert_path: Path, key_path: Path, name: str
) -> tuple[TrackingHTTPServer, threading.Thread]:
    """Wrap ``server``'s socket in TLS with the certificate and serve it in a daemon thread called ``name``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    return server, thread


def close(server: TrackingHTTPServer | None, thread: threading.Thread | None) -> None:
    """Stop listening, cut the open connections and wait (up to 5 s) for the serving thread."""
    if server is not None:
        server.shutdown()
        server.server_close()
        server.close_connections()
    if thread is not None:
        thread.join(timeout=5)


class QueueControls:
    """Fault controls both stand-ins share: a queueing delay and holding every job back.

    The stand-in sets ``_cond`` (a Condition its job threads wait on), ``_delay`` and ``_held``.
    """

    _cond: threading.Condition
    _delay: float
    _held: bool

    @property
    def delay(self) -> float:
        """Seconds a job waits after submission before it runs."""
        return self._delay

    def set_delay(self, seconds: float) -> None:
        """Change the delay, including for jobs still waiting."""
        with self._cond:
            self._delay = float(seconds)
            self._cond.notify_all()

    def hold_all(self) -> None:
        """Keep every waiting job (and new ones) waiting until :meth:`release_all`."""
        with self._cond:
            self._held = True

    def release_all(self) -> None:
        """Let held jobs run (still subject to the delay)."""
        with self._cond:
            self._held = False
            self._cond.notify_all()
