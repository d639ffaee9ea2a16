"""A reader that goes away (``quark status RUN | head``) ends the command with exit 141 and nothing
on stderr: not a traceback, not exit 70."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_async_engine import TWO_ITEMS_ASYNC, _config
from toy_modules import SERVICE_FILE, finish_job

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize(
    "command", [["status", "--json"], ["status", "--all"], ["report"], ["report", "--json"], ["runs", "--json"]]
)
def test_output_closed_before_it_is_written_is_exit_141(quark, write_config, tmp_path, command):
    run = tmp_path / "run"
    assert quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run).exit_code == 3
    target = tmp_path if command[0] == "runs" else run
    process = subprocess.Popen(
        [sys.executable, "-m", "quark_cli.cli", command[0], str(target), *command[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )
    process.stdout.close()  # the reader is gone before the first byte
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, stderr
    assert stderr == ""


@pytest.mark.parametrize("command", [["modules"], ["validate", "CONFIG"], ["--help"], ["status", "--help"]])
def test_output_closed_outside_a_command_s_guard_is_exit_141(write_config, tmp_path, command):
    """``quark modules | head -1``: printed by the command itself, not through its guard (help
    screens too: rich's own answer to a closed pipe is exit 1)."""
    config = str(_config(write_config, TWO_ITEMS_ASYNC))
    process = subprocess.Popen(
        [sys.executable, "-m", "quark_cli.cli", *(config if part == "CONFIG" else part for part in command)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, stderr
    assert stderr == ""


def test_a_reader_that_leaves_in_the_middle_of_a_large_document_is_exit_141(quark, write_config, tmp_path):
    """More than a pipe holds (64 KB), the reader takes a byte and goes: exit 141, not the rest
    dropped without a word and exit 3 (a short write of the buffered stream raised nothing)."""
    run = tmp_path / "run"
    many = TWO_ITEMS_ASYNC.replace("repetitions: 2", "repetitions: 150")  # 300 jobs: 130 KB of status
    assert quark("submit", _config(write_config, many), "-o", run).exit_code == 3
    process = subprocess.Popen(
        [sys.executable, "-m", "quark_cli.cli", "status", str(run), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )
    assert process.stdout.read(1) == b"{"
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, stderr
    assert stderr == ""


FULL = "/dev/full"  # every write fails with ENOSPC, as a full disk behind ``> out.txt`` does
NO_SPACE = "error: standard output: no space left on device: the output is lost, not the work"


def _quark_into_full_disk(*arguments: str, stderr_full: bool = False) -> tuple[int, str]:
    """``quark ARGUMENTS > /dev/full`` (and ``2> /dev/full`` with ``stderr_full``): exit code and stderr."""
    with open(FULL, "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "quark_cli.cli", *arguments],
            stdout=full,
            stderr=full if stderr_full else subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(TESTS)},
            timeout=120,
        )
    return done.returncode, "" if stderr_full else done.stderr.decode()


@pytest.mark.skipif(not os.path.exists(FULL), reason="no /dev/full")
@pytest.mark.parametrize(
    "command",
    [
        ["--version"],
        ["--help"],
        ["status", "--help"],
        ["modules"],
        ["validate", "CONFIG"],
        ["status", "RUN"],
        ["status", "RUN", "--json"],
        ["report", "RUN"],
        ["runs", "DIR"],
    ],
)
def test_a_full_disk_behind_stdout_is_one_line_naming_it_and_exit_74(quark, write_config, tmp_path, command):
    config = _config(write_config, TWO_ITEMS_ASYNC)
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    given = {"CONFIG": str(config), "RUN": str(run), "DIR": str(tmp_path)}
    code, stderr = _quark_into_full_disk(*(given.get(part, part) for part in command))
    assert code == 74, stderr
    assert stderr.startswith(NO_SPACE) and stderr.count("\n") == 1, stderr


@pytest.mark.skipif(not os.path.exists(FULL), reason="no /dev/full")
def test_a_submit_and_a_collect_that_cannot_print_their_summary_keep_their_work(quark, write_config, tmp_path):
    run = tmp_path / "run"
    code, stderr = _quark_into_full_disk("submit", str(_config(write_config, TWO_ITEMS_ASYNC)), "-o", str(run))
    assert code == 74 and stderr.startswith(f"{NO_SPACE}; the run is {run}\n"), "its path is said where it can be"
    assert json.loads(quark("status", run, "--json").stdout)["stack_totals"]["INTERRUPTED"] == 4
    for path in run.glob(f"jobs/*/{SERVICE_FILE}"):
        finish_job(path.parent)
    assert _quark_into_full_disk("collect", str(run), stderr_full=True) == (74, ""), "stderr full too: no hang"
    assert json.loads(quark("status", run, "--json").stdout)["stack_totals"]["FINISHED"] == 4


def test_any_failed_write_to_stdout_is_exit_74_and_a_message_that_cannot_be_written_keeps_its_code(write_config):
    """stdout open read-only (EBADF, an errno no file of a run meets) is not "a bug in quark-cli";
    an error whose line cannot be written to a full stderr still exits with its own code."""
    config = _config(write_config, TWO_ITEMS_ASYNC)
    with open(config) as read_only:
        done = subprocess.run(
            [sys.executable, "-m", "quark_cli.cli", "validate", str(config)],
            stdout=read_only,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(TESTS)},
        )
    assert done.returncode == 74
    assert done.stderr.decode() == "error: standard output: bad file descriptor: the output is lost, not the work\n"
    code, _ = _quark_into_full_disk("status", str(config.parent / "no-such-run"), stderr_full=True)
    assert code == 2


@pytest.mark.skipif(not os.path.exists(FULL), reason="no /dev/full")
def test_a_sweep_whose_error_lines_cannot_be_written_still_collects_every_run(quark, write_config, tmp_path):
    """``quark collect --all ROOT 2>/dev/full`` from cron: a damaged run's line is lost, not the next run."""
    root = tmp_path / "runs"
    config = _config(write_config, TWO_ITEMS_ASYNC)
    for name in ("a-damaged", "b-good"):
        assert quark("submit", config, "-o", root / name).exit_code == 3
    (root / "a-damaged" / "run.json").write_text("{not json")
    for path in (root / "b-good").glob(f"jobs/*/{SERVICE_FILE}"):
        finish_job(path.parent)
    with open(FULL, "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "quark_cli.cli", "collect", "--all", str(root)],
            stdout=subprocess.PIPE,
            stderr=full,
            env={**os.environ, "PYTHONPATH": str(TESTS)},
            timeout=120,
        )
    assert done.returncode == 2, "the damaged run's code, though its line could not be written"
    assert json.loads(quark("status", root / "b-good", "--json").stdout)["stack_totals"]["FINISHED"] == 4


@pytest.mark.parametrize("stderr_gone", ["full", "reader left"])
def test_a_stderr_that_cannot_be_written_never_stops_a_collect_half_way(quark, write_config, tmp_path, stderr_gone):
    """Progress, log lines and messages are given up, not the work: ``quark -v collect --wait RUN
    2>&1 >log | head -c 10`` was exit 70 with the run half collected (rich's own answer to the
    closed pipe), ``2>/dev/full`` exit 74 before anything was collected."""
    if stderr_gone == "full" and not os.path.exists(FULL):
        pytest.skip("no /dev/full")
    run = tmp_path / "run"
    assert quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run).exit_code == 3
    for path in run.glob(f"jobs/*/{SERVICE_FILE}"):
        finish_job(path.parent)
    command = [sys.executable, "-m", "quark_cli.cli", "-v", "collect", "--wait", str(run)]
    environment = {**os.environ, "PYTHONPATH": str(TESTS)}
    if stderr_gone == "full":
        with open(FULL, "w") as full:
            code = subprocess.run(
                command, stdout=subprocess.DEVNULL, stderr=full, env=environment, timeout=120
            ).returncode
    else:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment)
        assert process.stderr.read(1)  # the first byte of the log, then the reader goes
        process.stderr.close()
        code = process.wait(timeout=120)
    assert code == 0
    assert json.loads(quark("status", run, "--json").stdout)["stack_totals"]["FINISHED"] == 4


@pytest.mark.parametrize("stdout_gone", ["full", "reader left"])
def test_a_sweep_whose_stdout_is_lost_still_collects_every_run(quark, write_config, tmp_path, stdout_gone):
    """``quark collect --all ROOT > /dev/full`` (or ``| true``) stopped after the first run's line."""
    if stdout_gone == "full" and not os.path.exists(FULL):
        pytest.skip("no /dev/full")
    root = tmp_path / "runs"
    for name in ("a", "b", "c"):
        assert quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", root / name).exit_code == 3
        for path in (root / name).glob(f"jobs/*/{SERVICE_FILE}"):
            finish_job(path.parent)
    command = [sys.executable, "-m", "quark_cli.cli", "collect", "--all", str(root)]
    environment = {**os.environ, "PYTHONPATH": str(TESTS)}
    if stdout_gone == "full":
        with open(FULL, "w") as full:
            done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, env=environment, timeout=120)
        assert (done.returncode, done.stderr.decode()) == (74, NO_SPACE + "\n")
    else:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment)
        process.stdout.close()
        assert process.wait(timeout=120) == 141 and process.stderr.read() == b""
    for name in ("a", "b", "c"):
        assert json.loads(quark("status", root / name, "--json").stdout)["stack_totals"]["FINISHED"] == 4, name
