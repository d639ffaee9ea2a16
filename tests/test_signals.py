"""Ctrl-C and SIGTERM at any moment: exit 130 / 143 with our one line, never 2 (myQLM's own SIGINT
handler, "Interrupted by user") or 134 (an abort in native code), and the run collectable after.

20 SIGINT / SIGTERM (and 2 SIGHUP, exit 129) at random moments of ``quark run configs/maxcut.yml``
(QAOA's optimiser simulating in myQLM most of the time), every fourth followed by one at a random
moment of the ``collect`` that continues it; each run is then collected to the end and gives the
uninterrupted run's numbers.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from toy_modules import finish_job

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "maxcut.yml"
EXITS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
MESSAGES = {
    signal.SIGINT: "interrupted; ",
    signal.SIGTERM: "terminated (SIGTERM); ",
    signal.SIGHUP: "terminated (SIGHUP); ",
}


def _start(*args: object) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONHASHSEED"}
    return subprocess.Popen(
        [sys.executable, "-m", "quark_cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _signal_at(process: subprocess.Popen, delay: float, sent: signal.Signals) -> tuple[int | None, str]:
    """Send ``sent`` after ``delay`` s; (exit code, stderr), or (None, "") if the command had finished
    its work before (it may still be shutting down: then it exits 0 having done everything)."""
    time.sleep(delay)
    if process.poll() is not None:
        process.communicate()
        return None, ""
    process.send_signal(sent)
    stdout, stderr = process.communicate(timeout=120)
    if process.returncode == 0 and not stderr.strip():
        return None, ""
    return process.returncode, stderr


def _numbers(run: Path) -> list[tuple]:
    records = json.loads((run / "results.json").read_text())
    return [
        (r["stack"], r["quark_job_status"], r["module"]["best_cut"], r["module"]["submodule"]["optimal_angles"])
        for r in records
    ]


def test_signals_at_random_moments_end_cleanly_and_the_run_is_collected(tmp_path):
    durations = []
    for name in ("cold", "reference"):  # the second run, warm, is what the trials take
        started = time.monotonic()
        finished = _start("run", CONFIG, "-o", tmp_path / name, "--quiet")
        finished.communicate(timeout=600)
        durations.append(time.monotonic() - started)
        assert finished.returncode == 0
    duration = min(durations)
    expected = _numbers(tmp_path / "reference")

    chance = random.Random(20261129)
    signalled = 0
    for trial in range(22):
        sent = (signal.SIGINT, signal.SIGTERM)[trial % 2] if trial < 20 else signal.SIGHUP
        run = tmp_path / f"run-{trial}"
        code, stderr = None, ""
        for _ in range(5):  # a run that ended before the signal proves nothing: start again, earlier
            if run.exists():
                subprocess.run(["rm", "-rf", str(run)], check=True)
            code, stderr = _signal_at(
                _start("run", CONFIG, "-o", run, "--quiet"), chance.uniform(0.2, 0.7) * duration, sent
            )
            if code is not None:
                break
        assert code == EXITS[sent], (trial, sent, code, stderr[-300:])
        assert stderr.strip().splitlines()[-1].startswith(MESSAGES[sent]), stderr[-300:]
        assert "Interrupted by user" not in stderr
        finished = sum('"quark_job_status":"FINISHED"' in p.read_text() for p in run.glob("records/*.json"))
        logged = (run / "logging.log").read_text().count(" FINISHED")
        assert logged >= finished - 1, "the log is written out at every finished stack, not at the end"
        signalled += 1
        if trial % 4 == 0:
            code, stderr = _signal_at(_start("collect", run), chance.uniform(0.05, 0.5) * duration, sent)
            assert code in (None, EXITS[sent]), (trial, code, stderr[-300:])
        collected = subprocess.run(
            [sys.executable, "-m", "quark_cli", "collect", str(run)], capture_output=True, text=True, timeout=600
        )
        assert collected.returncode == 0, (trial, collected.stdout, collected.stderr)
        assert _numbers(run) == expected, trial
    assert signalled == 22


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_while_the_command_starts_or_ends_gets_its_line_and_code(tmp_path, sent):
    """Between typer's parsing and a command's work (and after it), typer itself turned a signal into
    exit 130 with no word, SIGTERM included. Swept over a ``quark status``'s first 0.3 s: each ends
    with its own code and line, or finishes, or dies of the signal before quark handles any."""
    run = tmp_path / "run"
    assert _start("run", CONFIG, "-o", run, "--quiet").wait(timeout=600) == 0
    seen = set()
    for step in range(30):
        process = _start("status", run)
        time.sleep(0.01 * step)
        process.send_signal(sent)
        _, stderr = process.communicate(timeout=60)
        if process.returncode in (0, -sent):  # done before the signal, or signalled before quark started
            continue
        assert process.returncode == EXITS[sent], (step, process.returncode, stderr[-300:])
        assert stderr.strip().splitlines()[-1].startswith(MESSAGES[sent]), stderr[-300:]
        assert "Traceback" not in stderr
        seen.add(step)
    assert seen, "no signal arrived while quark ran: the sweep proves nothing"


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_that_module_code_turns_into_its_own_error_still_ends_the_command(
    quark_process, write_config, tmp_path, sent
):
    """myQLM's plugins catch our Terminated and raise a PluginException instead: the stack failed and
    the run went on, exit 1. A signal that reached module code ends the command whatever that code
    raised then; the stack is walked again by the next collect."""
    marker = tmp_path / "signalled"
    name = sent.name.removeprefix("SIG")
    config = write_config(
        f"application:\n  module: toy_modules:SwallowsSignals\n  config: {{signal: [{name}], marker: ['{marker}']}}\n"
    )
    run = tmp_path / "run"

    ended = quark_process("run", config, "-o", run)

    assert marker.exists()
    assert ended.returncode == EXITS[sent], ended.stderr[-500:]
    assert ended.stderr.strip().splitlines()[-1].startswith(MESSAGES[sent]), ended.stderr[-500:]
    assert "Traceback" not in ended.stderr
    assert not [p for p in run.glob("records/*.json") if '"FAILED"' in p.read_text()]
    collected = quark_process("collect", run)
    assert collected.returncode == 0, collected.stderr[-500:]
    (record,) = json.loads((run / "results.json").read_text())
    assert (record["quark_job_status"], record["module"]["value"]) == ("FINISHED", 7)


@pytest.mark.parametrize(
    ("sent", "raises"),
    [(signal.SIGINT, "runtime"), (signal.SIGTERM, "runtime"), (signal.SIGTERM, "transient")],
    ids=["SIGINT", "SIGTERM", "SIGTERM-as-a-transient-error"],
)
def test_a_signal_that_a_job_manager_turns_into_its_own_error_still_ends_the_collect(
    quark_process, write_config, tmp_path, sent, raises
):
    """The same for a service's client while a collect polls: the poll is not a failed answer to
    note and go on from; the collect ends with the signal's code, and the next one collects the job."""
    config = write_config(
        "application:\n  module: toy_modules:Numbers\n  submodules:\n    - module: toy_modules:SignalledPollSquare\n"
    )
    run = tmp_path / "run"
    assert quark_process("submit", config, "-o", run).returncode == 3
    (job_file,) = run.glob("jobs/*.json")
    job_dir = job_file.with_suffix("")
    finish_job(job_dir)

    signalled = {"QUARK_TEST_SIGNAL": sent.name.removeprefix("SIG"), "QUARK_TEST_SIGNAL_RAISES": raises}
    ended = quark_process("collect", run, env=signalled)

    assert (job_dir / "signalled").exists()
    assert ended.returncode == EXITS[sent], ended.stderr[-500:]
    assert ended.stderr.strip().splitlines()[-1].startswith(MESSAGES[sent]), ended.stderr[-500:]
    assert "warning" not in json.loads(job_file.read_text())  # no failed poll noted
    collected = quark_process("collect", run)
    assert collected.returncode == 0, collected.stderr[-500:]
    (record,) = json.loads((run / "results.json").read_text())
    assert (record["quark_job_status"], record["module"]["total"]) == ("FINISHED", 1 + 4 + 9)


def test_a_signal_turned_into_an_error_while_the_config_is_checked_is_no_config_error(
    quark_process, write_config, tmp_path
):
    """Module code runs while the config is checked too (its parameter lists): a SIGTERM it turns
    into its own error ends the command with 143, not with the config error's 2."""
    config = write_config("application:\n  module: toy_modules:SignalledOptions\n")
    marker = tmp_path / "signalled"

    signalled = {"QUARK_TEST_SIGNAL": "TERM", "QUARK_TEST_SIGNAL_MARKER": str(marker)}
    ended = quark_process("run", config, "-o", tmp_path / "run", env=signalled)

    assert marker.exists()
    assert ended.returncode == EXITS[signal.SIGTERM], ended.stderr[-500:]
    assert ended.stderr.strip().splitlines()[-1].startswith(MESSAGES[signal.SIGTERM]), ended.stderr[-500:]
