"""Progress as a person sees it: a live display in a real terminal, plain lines in a pipe, or silence.

The terminal tests run ``quark`` in a pseudo-terminal (pexpect), play the service by finishing jobs
while ``collect --wait`` watches, and check what reached the screen: the counts as they change, the
module at work, colours only without NO_COLOR, and a clean end (final frame, cursor shown again).
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from pathlib import Path

import pexpect
import pytest
from toy_modules import finish_job

TESTS = Path(__file__).resolve().parent
COLOUR = re.compile(r"\x1b\[(?:\d+;)*(?:3[0-7]|9[0-7]|38;5;\d+|38;2;[\d;]+)m")
HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"

TWO_JOBS = """
application:
  module: toy_modules:Numbers
  config: {start: [1]}
  submodules: [{name: AsyncSquare}]
repetitions: 2
"""

SLEEPY_MODULE = '''
import time

from quark_cli import Core


class Sleepy(Core):
    """An application whose preprocess takes a while, like a QAOA optimisation."""

    def get_parameter_options(self):
        return {"seconds": {"values": [0.0, 1.5], "default": 0.0, "description": "how long"}}

    def preprocess(self, data, config, **kwargs):
        time.sleep(config["seconds"])
        return data, config["seconds"]
'''


def terminal(*args: str, no_color: bool, cwd: Path) -> pexpect.spawn:
    """``quark ARGS`` in a 120x30 pseudo-terminal; ``child.logfile_read`` collects the screen output."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(TERM="xterm-256color", PYTHONPATH=str(TESTS), COLUMNS="120", LINES="30")
    if no_color:
        env["NO_COLOR"] = "1"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "quark_cli.cli", *args],
        env=env,
        cwd=str(cwd),
        dimensions=(30, 120),
        encoding="utf-8",
        timeout=60,
    )
    child.logfile_read = io.StringIO()  # everything that reached the screen
    return child


def test_collect_wait_shows_live_progress_in_a_terminal_and_ends_cleanly(quark, write_config, tmp_path):
    run = tmp_path / "run"
    assert quark("submit", write_config(TWO_JOBS), "-o", run).exit_code == 3
    first, second = sorted(path.with_suffix("") for path in (run / "jobs").glob("*.json"))

    child = terminal("collect", str(run), "--wait", no_color=False, cwd=tmp_path)
    child.expect("collect run")
    child.expect(r"0 finished.*2 pending.*0 failed of 2")
    child.expect(r"waiting for the jobs of 2 stack\(s\)")
    finish_job(first)
    child.expect(r"1 finished.*1 pending")
    finish_job(second)
    child.expect(pexpect.EOF)
    child.close()
    screen = child.logfile_read.getvalue()

    assert child.exitstatus == 0, screen
    assert "Traceback" not in screen
    assert HIDE_CURSOR in screen and screen.rindex(SHOW_CURSOR) > screen.rindex(HIDE_CURSOR), "cursor shown again"
    final_frame = screen.rsplit("\x1b[2K", 1)[-1]  # what the display drew last, after erasing the line
    assert "✓" in final_frame and "2 finished" in final_frame and "0 pending" in final_frame
    assert screen.rstrip().endswith(f"{run}: 2 finished, 0 pending, 0 failed (4 changed)")
    assert COLOUR.search(screen), "a terminal without NO_COLOR gets colours"


def test_run_shows_the_module_at_work_and_no_colours_with_no_color(tmp_path):
    (tmp_path / "sleepy_module.py").write_text(SLEEPY_MODULE)
    config = tmp_path / "sleepy.yml"
    config.write_text("application:\n  module: sleepy_module:Sleepy\n  config: {seconds: [1.5]}\nrepetitions: 2\n")

    child = terminal("run", str(config), "-o", str(tmp_path / "run"), no_color=True, cwd=tmp_path)
    child.expect(r"run sleepy\.yml")
    child.expect(r"000-r1 Sleepy preprocess \(0:00:0\d\)")
    child.expect(r"1 finished.*1 pending")
    child.expect(r"000-r2 Sleepy preprocess")
    child.expect(pexpect.EOF)
    child.close()
    screen = child.logfile_read.getvalue()

    assert child.exitstatus == 0, screen
    assert "Sleepy: mean ± std over repetitions" in screen, "the results follow the display"
    assert HIDE_CURSOR in screen and screen.rindex(SHOW_CURSOR) > screen.rindex(HIDE_CURSOR)
    assert not COLOUR.search(screen), f"NO_COLOR: {COLOUR.findall(screen)[:3]}"


def test_without_a_terminal_progress_is_plain_lines_and_quiet_is_silent(quark, tmp_path):
    (tmp_path / "sleepy_module.py").write_text(SLEEPY_MODULE)
    config = tmp_path / "sleepy.yml"
    config.write_text("application:\n  module: sleepy_module:Sleepy\n  config: {seconds: [0.0]}\nrepetitions: 2\n")

    shown = quark("run", config, "-o", tmp_path / "shown", "--json")
    assert shown.exit_code == 0
    lines = shown.stderr.splitlines()
    assert [re.sub(r"^\[0:00:0\d\] ", "", line) for line in lines] == [
        "run sleepy.yml: 0/2 finished, 2 pending, 0 failed",
        "000-r1 FINISHED (1/2 finished, 1 pending, 0 failed)",
        "000-r2 FINISHED (2/2 finished, 0 pending, 0 failed)",
    ]
    assert all(re.match(r"^\[0:00:0\d\] ", line) for line in lines)
    assert len(json.loads(shown.stdout)) == 2, "stdout stays JSON"
    assert "\x1b[" not in shown.stdout + shown.stderr

    quiet = quark("run", config, "-o", tmp_path / "quiet", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


@pytest.mark.parametrize("quiet", [False, True])
def test_collect_wait_in_a_pipe(quark, write_config, tmp_path, quiet):
    run = tmp_path / "run"
    quark("submit", write_config(TWO_JOBS.replace("start: [1]", "start: [1], count: [1]")), "-o", run)
    for job in (run / "jobs").glob("*.json"):
        finish_job(job.with_suffix(""))
    collected = quark("collect", run, "--wait", *(["--quiet"] if quiet else []))
    assert collected.exit_code == 0
    if quiet:
        assert collected.stderr == ""
    else:
        assert collected.stderr.splitlines()[0].endswith("collect run: 0/2 finished, 2 pending, 0 failed")
        assert collected.stderr.splitlines()[-1].endswith("(2/2 finished, 0 pending, 0 failed)")
    assert collected.stdout == f"{run}: 2 finished, 0 pending, 0 failed (4 changed)\n"
