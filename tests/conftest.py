"""Shared fixtures: the ``quark`` command in-process and in a subprocess, and config writers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Runs never land in the real ~/quark-runs, and no user config of a client leaks in."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("QUARK_RUNS_DIR", str(home / "quark-runs"))
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def quark():
    """Run ``quark ARGS`` in this process; returns the result (exit_code, stdout, stderr)."""
    from quark_cli.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def _run_quark(entry: str, args: tuple, timeout: float, env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", entry, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,
    )


@pytest.fixture
def quark_process():
    """Run ``quark ARGS`` as a real process, as a user or cron would."""

    def invoke(*args: str, timeout: float = 120, env: dict | None = None, **kwargs):
        full_env = {**os.environ, "PYTHONPATH": str(TESTS), **(env or {})}
        return _run_quark("quark_cli.cli", args, timeout, full_env, **kwargs)

    return invoke


@pytest.fixture
def quark_entry():
    """Run ``python -m quark_cli ARGS``: the installed entry point, hash-seed re-execution included.

    The environment has no PYTHONHASHSEED unless ``env`` gives one, as for a user who never set it.
    """

    def invoke(*args: object, timeout: float = 600, env: dict | None = None, **kwargs):
        full_env = {key: value for key, value in os.environ.items() if key != "PYTHONHASHSEED"}
        full_env.update({"PYTHONPATH": str(TESTS), **(env or {})})
        return _run_quark("quark_cli", args, timeout, full_env, **kwargs)

    return invoke


@pytest.fixture
def write_config(tmp_path):
    """Write a YAML config (dedented) into the test's folder and return its path."""

    def write(text: str, name: str = "config.yml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Credentials from env vars, and no user file (netrc, config.ini, proxy) that could change the client."""
    import qat.qlmaas.https as https

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # the client reads ~/.netrc at login, and it wins over QLM_USER
    monkeypatch.setenv("QLM_USER", "alice")
    monkeypatch.setenv("QLM_PASSWD", "wonderland")
    for var in ("NETRC", "SSL_CERT_FILE", "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    # config paths are computed when qat.qlmaas is imported, so HOME alone does not move them
    monkeypatch.setattr(https, "QLMAAS_USER_CONFIG", str(home / ".qlmaas" / "config.ini"))
    monkeypatch.setattr(https, "QLMAAS_GLOBAL_CONFIG", str(tmp_path / "no-global-client.ini"))
    return home
