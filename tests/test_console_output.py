"""What the commands print without rich: a line of plain text is written as rich writes it, and a
cron ``collect`` does not pay rich's import for the one line it prints."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from rich.console import Console
from test_cli_commands import PENDING

from quark_cli.cli_output import LazyConsole, OutputClosed

TESTS = Path(__file__).resolve().parent

LINES = [
    "run: 2 finished, 0 pending, 0 failed (2 changed)",
    "",
    "error: /data/[bold]x[/bold]: :smile: is not a file",
    "  000-r1: Größe ≠ 3 — 量子",
    "a\ttab",
    "a line\nand another",
    "bell \x07 and carriage \r return",
    "a\u00a0no-break space and a zero-width\u200bspace",
    "\x1b[31mred\x1b[0m",
]


def _printed(console: LazyConsole | Console, text: str, stderr: bool, **options) -> str:
    buffer = io.StringIO()
    with redirect_stdout(buffer) if not stderr else redirect_stderr(buffer):
        console.print(text, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("stderr", [False, True], ids=["stdout", "stderr"])
@pytest.mark.parametrize("options", [{}, {"markup": False}, {"soft_wrap": True}, {"markup": False, "highlight": False}])
@pytest.mark.parametrize("text", LINES)
def test_a_line_is_printed_as_rich_prints_it(text: str, options: dict, stderr: bool, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    rich_console = Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False)
    assert _printed(LazyConsole(stderr), text, stderr, **options) == _printed(rich_console, text, stderr, **options)


def test_options_rich_must_apply_go_through_rich(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    text = "[bold]x[/bold] " + "word " * 40
    for options in ({"markup": True}, {"soft_wrap": False}, {"style": "bold"}, {"end": ""}):
        lazy = _printed(LazyConsole(False), text, False, **options)
        rich_console = Console(highlight=False, soft_wrap=True, markup=False, emoji=False, width=80)
        assert lazy == _printed(rich_console, text, False, **options), options
    assert "[bold]" not in _printed(LazyConsole(False), text, False, markup=True)


def test_a_reader_of_stdout_that_went_away_is_output_closed():
    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    with redirect_stdout(Gone()), pytest.raises(OutputClosed):
        LazyConsole(False).print("a line")


@pytest.mark.parametrize("command", ["collect", "status"])
def test_the_commands_a_cron_job_runs_do_not_load_rich(command: str, tmp_path):
    config = tmp_path / "pending.yml"
    config.write_text(PENDING)
    run = tmp_path / "run"
    code = (
        "import json, sys\n"
        "from quark_cli.cli import main\n"
        "sys.argv = ['quark', *json.loads(sys.argv[1])]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as stop:\n"
        "    rich = sorted(m for m in sys.modules if m.split('.')[0] == 'rich')\n"
        "    print(json.dumps({'exit': stop.code, 'rich': rich}), file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(TESTS), "PYTHONHASHSEED": "0"}
    submitted = subprocess.run(
        [sys.executable, "-m", "quark_cli", "submit", str(config), "-o", str(run)], env=env, capture_output=True
    )
    assert submitted.returncode == 3, submitted.stderr
    args = {"collect": ["collect", str(run)], "status": ["status", str(run), "--json"]}[command]
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)], env=env, capture_output=True, text=True, timeout=120
    )
    outcome = json.loads(done.stderr.strip().splitlines()[-1])
    assert outcome == {"exit": 3, "rich": []}, done.stderr
    if command == "collect":
        assert done.stdout == f"{run}: 0 finished, 2 pending, 0 failed (0 changed)\n"


def test_a_line_printed_under_a_live_display_goes_where_rich_sends_it():
    """A live display puts a stand-in on sys.stdout that rich sees through: the line goes to stdout,
    not through the stand-in to the display's console (stderr)."""
    from rich.file_proxy import FileProxy

    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(FileProxy(Console(file=stderr), stdout)):
        LazyConsole(False).print("a line")
    assert (stdout.getvalue(), stderr.getvalue()) == ("a line\n", "")


def test_an_error_with_stderr_closed_keeps_its_exit_code():
    """``quark collect RUN 2>&-`` (Python's sys.stderr is then None): the exit code still says why."""
    done = subprocess.run(
        [sys.executable, "-m", "quark_cli", "collect", "/nonexistent/run"],
        preexec_fn=lambda: os.close(2),
        stdout=subprocess.PIPE,
        timeout=120,
    )
    assert done.returncode == 2


CHATTY = '''
import os
from quark_cli import Core


class Chatty(Core):
    """Writes to stdout from Python and from "native" code (the file descriptor) in each phase."""

    def preprocess(self, input_data, config, **kwargs):
        print("python says pre")
        os.write(1, b"native says pre\\n")
        return 1, 0.0

    def postprocess(self, input_data, config, **kwargs):
        self.metrics.add_metric("value", input_data)
        print("python says post")
        os.write(1, b"native says post\\n")
        return input_data, 0.0
'''


@pytest.mark.parametrize("closed", [1, 2], ids=["stdout", "stderr"])
def test_module_output_with_a_closed_standard_stream_lands_in_no_file_of_the_run(closed: int, tmp_path):
    """Started with stdout or stderr closed, the command's first open file would take that
    descriptor, and a module's output written there would land in it."""
    (tmp_path / "chatty.py").write_text(CHATTY)
    config = tmp_path / "chatty.yml"
    config.write_text("application:\n  module: chatty:Chatty\n")
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "quark_cli", "run", str(config), "-o", str(run), "--quiet"],
        env={**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONHASHSEED": "0"},
        preexec_fn=lambda: os.close(closed),
        stdout=subprocess.DEVNULL if closed == 2 else None,
        stderr=subprocess.DEVNULL if closed == 1 else None,
        timeout=120,
    )
    assert done.returncode == 0
    records = json.loads((run / "results.json").read_text())
    assert [record["quark_job_status"] for record in records] == ["FINISHED"]
    for path in [run, *run.rglob("*")]:
        if path.is_file():
            assert b"says" not in path.read_bytes(), path
