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
