"""Every message leads somewhere true (issue 17's list).

Stories: ``quark run CONFIG -o DIR`` on a run that exists says how to continue it; ``--wait-lock``
running out does not advise ``--wait-lock``; ``collect --json`` on a locked run says so in JSON;
``quark runs`` on a fresh install is not an error; a run folder that lost its run.json is listed,
not skipped; ``collect --all`` finds runs deep below ROOT; ``quark status RUN -v`` works; a user
application names built-in children by name, and one that declares none is told how; ``quark
modules pkg.mod:Class`` shows any module; text that looks like an emoji code stays as written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from test_run_lock import SLEEPY, start, wait_for_holder

from quark_cli.cli_guard import hoist_global_flags

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
GHZ = REPO / "configs" / "ghz.yml"


def small_ghz(write_config) -> Path:
    return write_config(
        "application: {name: GHZ, config: {n_qubits: [2]}, submodules: [{name: GHZCircuit, "
        "submodules: [{name: Sampler}]}]}\n"
    )


def test_run_on_an_existing_run_says_how_to_continue_it(quark, write_config, tmp_path):
    run = tmp_path / "run"
    assert quark("run", small_ghz(write_config), "-o", run, "--quiet").exit_code == 0
    again = quark("run", small_ghz(write_config), "-o", run, "--quiet")
    assert again.exit_code == 2
    assert again.stderr == (
        f"error: {run}: already holds a run; 'quark collect {run}' continues it, 'quark status' shows where "
        "it stands, or choose another -o DIR\n"
    )


def test_wait_lock_running_out_and_collect_json_on_a_locked_run(quark, write_config, tmp_path):
    run = tmp_path / "run"
    holder = start("run", write_config(SLEEPY), "-o", run, "--quiet")
    try:
        wait_for_holder(run, holder)
        began = time.monotonic()
        waited = quark("collect", run, "--wait-lock", "0.5")
        assert waited.exit_code == 75
        assert time.monotonic() - began >= 0.5
        assert f"is being processed by pid {holder.pid}; still held after --wait-lock 0.5 s" in waited.stderr
        assert "use --wait-lock" not in waited.stderr

        locked = quark("collect", run, "--json")
        assert locked.exit_code == 75
        (report,) = json.loads(locked.stdout)
        assert report["run_dir"] == str(run) and report["exit_code"] == 75 and report["skipped"] is False
        assert f"is being processed by pid {holder.pid}" in report["error"]
    finally:
        holder.kill()
        holder.communicate()


def test_runs_on_a_fresh_install_is_not_an_error(quark, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "new-user"))
    monkeypatch.delenv("QUARK_RUNS_DIR")
    listed = quark("runs")
    assert listed.exit_code == 0
    assert "quark-runs: no run directories (the folder does not exist yet" in listed.stdout
    assert json.loads(quark("runs", "--json").stdout)["runs"] == []


def test_runs_and_collect_all_find_deep_and_damaged_runs(quark, write_config, tmp_path):
    root = tmp_path / "root"
    deep = root / "2026" / "11" / "project" / "ghz"
    assert quark("run", small_ghz(write_config), "-o", deep, "--quiet").exit_code == 0
    damaged = root / "lost-its-run-json"
    shutil.copytree(deep, damaged)
    (damaged / "run.json").unlink()

    listed = {entry["name"]: entry for entry in json.loads(quark("runs", root, "--json").stdout)["runs"]}
    assert listed["2026/11/project/ghz"]["error"] is None
    assert (
        listed["lost-its-run-json"]["error"]
        == f"{damaged}: not a quark run directory (no run.json); give the folder 'quark submit' printed"
    )

    collected = quark("collect", "--all", root)
    assert str(deep) in collected.stdout
    assert str(damaged) in collected.stderr, "a damaged run is named, not skipped"


def test_global_flags_are_accepted_after_the_command(tmp_path, write_config):
    assert hoist_global_flags(["status", "RUN", "-v"]) == ["-v", "status", "RUN"]
    assert hoist_global_flags(["--debug", "collect", "R", "--verbose"]) == ["--debug", "--verbose", "collect", "R"]
    assert hoist_global_flags(["modules", "--", "-v"]) == ["modules", "--", "-v"]
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    made = subprocess.run(
        [sys.executable, "-m", "quark_cli", "run", str(small_ghz(write_config)), "-o", str(run), "--quiet"],
        env=env,
        capture_output=True,
    )
    assert made.returncode == 0
    shown = subprocess.run(
        [sys.executable, "-m", "quark_cli", "status", str(run), "-v"], env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert "No such option" not in shown.stderr


def test_a_user_application_names_built_in_children_or_is_told_how(quark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "userapp.py").write_text(
        "from quark_cli import Core\n\n"
        "class Flip(Core):\n"
        "    submodule_options = ['GHZCircuit']\n\n"
        "    def preprocess(self, input_data, config, **kwargs):\n"
        "        return {'n_qubits': 2}, 0.0\n\n"
        "    def postprocess(self, input_data, config, **kwargs):\n"
        "        self.metrics.add_metric('heads', input_data['counts'].get('11', 0))\n"
        "        return input_data, 0.0\n\n"
        "class Bare(Flip):\n"
        "    submodule_options = []\n"
    )
    good = tmp_path / "good.yml"
    good.write_text(
        "application:\n  module: userapp:Flip\n  submodules:\n    - name: GHZCircuit\n"
        "      submodules: [{name: Sampler}]\n"
    )
    ran = quark("run", good, "-o", tmp_path / "run", "--quiet")
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    bare = tmp_path / "bare.yml"
    bare.write_text(good.read_text().replace("userapp:Flip", "userapp:Bare"))
    refused = quark("validate", bare)
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: {bare}: application.submodules[0].name: Bare declares no submodules; add submodule_options = "
        "['GHZCircuit'] to its class (built-in names or 'package.module:Class'), or give this child as "
        "'module: package.module:Class'\n"
    )

    shown = json.loads(quark("modules", "userapp:Flip", "Sampler", "--json").stdout)
    assert [(entry["name"], entry["submodules"]) for entry in shown] == [("Flip", ["GHZCircuit"]), ("Sampler", [])]
    unknown = quark("modules", "userapp:Nope")
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("error: quark modules: userapp:Nope: ")
    assert "❌" not in unknown.stderr, "':Nope:' must not be drawn as an emoji"


def test_modules_shows_a_quark2_module_file(quark):
    shown = quark("modules", "-m", TESTS / "quark2_contract" / "modules.json", "--json")
    assert shown.exit_code == 0, shown.stderr
    (entry,) = json.loads(shown.stdout)
    assert entry["name"] == "Bit Match" and entry["submodules"] == ["Label QUBO"]
    assert "bits" in entry["parameters"]


def test_a_service_s_message_is_printed_escaped_never_run_by_the_terminal(quark, write_config, tmp_path):
    """A job's error with a lone surrogate (invalid text) and an escape sequence: collect and status
    print both as escapes and exit 1 for the failed stack, not 70 (UnicodeEncodeError) or raw ESC."""
    from test_async_engine import TWO_ITEMS_ASYNC, _config
    from toy_modules import fail_job

    run = tmp_path / "run"
    assert quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run).exit_code == 3
    fail_job(sorted(run.glob("jobs/*.json"))[0].with_suffix(""), "\ud800 lone \x1b[31mred")
    for command in ("collect", "status"):
        done = subprocess.run(
            [sys.executable, "-m", "quark_cli.cli", command, str(run)],
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(TESTS)},
        )
        shown = done.stdout.decode()
        assert done.returncode == 1, done.stderr.decode()
        assert "\\ud800 lone \\x1b[31mred" in shown
        assert b"\x1b" not in done.stdout
