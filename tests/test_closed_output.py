"""A reader that goes away (``quark status RUN | head``) ends the command with exit 141 and nothing
on stderr: not a traceback, not exit 70."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_async_engine import TWO_ITEMS_ASYNC, _config

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
