"""Nothing secret and nothing executable lands in a run directory, and only the user's own code runs.

Stories: a run made with QLM_USER / QLM_PASSWD in the environment against the stand-in Qaptiva
server, and a run on the local backend, are scanned byte by byte for the password, the session
cookie and CSRF token the service handed out, and pickle streams; the run is user-only (0700, files
0600). A config cannot run code through YAML tags, and ``module:`` imports only from the config's
folder or the Python path, never from wherever quark happens to be started.
"""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from qaptiva_server import StandInQaptiva, drop_client_connections
from test_local_async_cli import runs_root  # noqa: F401 - kills the local runners the test starts
from test_qaptiva_backend import at, shipped

from quark_cli.jobs import qaptiva

REPO = Path(__file__).resolve().parents[1]
PICKLE_MARKS = (b"\x80\x04\x95", b"\x80\x05\x95")  # protocol 4/5 frames; 2/3 streams start with PROTO


def files_of(run: Path) -> list[Path]:
    return sorted(p for p in run.rglob("*") if p.is_file())


def assert_private_and_pickle_free(run: Path, secrets: list[str]) -> None:
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    for path in run.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} is readable by others"
    for path in files_of(run):
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{path} holds a credential"
        assert not any(mark in data for mark in PICKLE_MARKS), f"{path} holds a pickle"
        assert data[:2] not in (b"\x80\x02", b"\x80\x03"), f"{path} is a pickle"


def test_a_qaptiva_run_made_with_credentials_keeps_none_of_them(quark, client_env, tmp_path, monkeypatch):
    issued: list[str] = []
    login = StandInQaptiva._login

    def recording(self, body):
        code, payload, cookies = login(self, body)
        issued.extend((cookies or {}).values())  # the session cookie and the CSRF token
        return code, payload, cookies

    monkeypatch.setattr(StandInQaptiva, "_login", recording)
    run = tmp_path / "run"
    with StandInQaptiva() as server:
        config = shipped("ghz-qaptiva.yml", tmp_path, at(server), {"n_qubits": [2, 3]})
        assert quark("submit", config, "-o", run).exit_code == 3
        qaptiva._connections.clear()  # the next command logs in afresh, as a new process would
        assert quark("collect", run, "--wait", "--timeout", "60").exit_code == 0
        qaptiva._connections.clear()
        drop_client_connections()
    assert len(issued) == 4, "two logins, each with a session cookie and a CSRF token"
    assert_private_and_pickle_free(run, ["wonderland", *issued])


def test_a_local_run_is_private_and_pickle_free(quark_process, runs_root, write_config):  # noqa: F811
    config = write_config(
        """
        application:
          name: GHZ
          config: {n_qubits: [2, 3]}
          submodules:
            - name: GHZCircuit
              submodules: [{name: LocalAsyncSampler, config: {workers: [1]}}]
        """
    )
    run = runs_root / "ghz"
    assert quark_process("submit", config, "-o", run).returncode == 3
    done = quark_process("collect", run, "--wait", "--timeout", "90")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in run.glob("jobs/*/local.*")) == sorted(
        ["local.job", "local.json", "local.log", "local.result.json", "local.run.lock", "local.state.lock"] * 2
    )
    assert_private_and_pickle_free(run, [])


@pytest.mark.parametrize(
    "tag", ["!!python/object/apply:os.system ['touch {marker}']", "!!python/name:os.system", "!!binary aGk="]
)
def test_yaml_tags_cannot_run_code(quark, write_config, tmp_path, tag):
    marker = tmp_path / "ran"
    config = write_config(f"application: {{name: GHZ, config: {{n_qubits: [{tag.format(marker=marker)}]}}}}\n")
    result = quark("submit", config, "-o", tmp_path / "run")
    assert result.exit_code == 2
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_the_package_reads_yaml_with_safe_loaders_only_and_never_pickles():
    from yaml.constructor import FullConstructor

    from quark_cli.config_yaml import ConfigLoader, Yaml11ConfigLoader

    assert not any(issubclass(loader, FullConstructor) for loader in (ConfigLoader, Yaml11ConfigLoader))
    for path in (REPO / "quark_cli").rglob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "from pickle" not in text and "import dill" not in text, path
        for unsafe in ("yaml.unsafe_load", "FullLoader", "Loader=yaml.Loader", "yaml.load_all"):
            assert unsafe not in text, path
        assert "yaml.load(" not in text, path  # configs are read by config_yaml's loaders only


def test_modules_come_from_the_config_folder_not_from_where_quark_starts(tmp_path):
    quark = Path(sys.executable).parent / "quark"
    if not quark.exists():
        pytest.skip("needs the installed console script (the project's .venv)")
    work, configs = tmp_path / "work", tmp_path / "configs"
    work.mkdir()
    configs.mkdir()
    (work / "sneaky.py").write_text("from pathlib import Path\nPath(__file__).with_name('imported').touch()\n")
    (configs / "config.yml").write_text("application: {module: 'sneaky:Hello'}\n")

    refused = subprocess.run([quark, "run", configs / "config.yml", "-o", work / "run"], cwd=work, capture_output=True)
    assert refused.returncode == 2
    assert b"application.module: cannot import 'sneaky:Hello'" in refused.stderr
    assert not (work / "imported").exists(), "a module in the working folder was imported"

    (configs / "sneaky.py").write_text(
        textwrap.dedent(
            """
            from quark_cli import Core

            class Hello(Core):
                def preprocess(self, data, config, **kwargs):
                    return 1, 0.0

                def postprocess(self, data, config, **kwargs):
                    self.metrics.add_metric("hello", data)
                    return data, 0.0
            """
        )
    )
    ran = subprocess.run([quark, "run", configs / "config.yml", "-o", work / "run"], cwd=work, capture_output=True)
    assert ran.returncode == 0, ran.stderr
    assert not (work / "imported").exists()
