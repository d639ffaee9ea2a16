"""``quark``'s help screens (``quark_cli.help_screens``): typer's very screens, without typer's help module.

Each ``--help`` is drawn twice in new processes, at several widths, with and without colour: by our
drawing, and by typer's own renderer (``typer.rich_utils.rich_format_help``, reached through the
fallback of ``HelpGroup`` / ``HelpCommand`` with ``draw_help`` made to decline), and the two must be
the same bytes. So a typer or rich upgrade that changes how typer draws help fails here, not in
front of a user. The width comes from ``TERMINAL_WIDTH`` (read by typer, and by our drawing) or from
``COLUMNS`` (read by rich's ``Console`` when no width is given); colour is forced with ``FORCE_COLOR``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache

import pytest
import typer

from quark_cli.cli import app

#: Every command of ``quark``, as the typer app declares them; "" is ``quark`` itself.
COMMANDS = ["", *typer.main.get_command(app).commands]
WIDTHS = (60, 100, 140)
#: Environment variables that change how help is drawn; the tests set the ones they mean.
DRAWING_VARIABLES = (
    "COLUMNS",
    "LINES",
    "TERMINAL_WIDTH",
    "NO_COLOR",
    "FORCE_COLOR",
    "PY_COLORS",
    "GITHUB_ACTIONS",
    "_TYPER_FORCE_DISABLE_TERMINAL",
    "TYPER_USE_RICH",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
)
#: Loaded by typer's help rendering or by the quantum stacks: none of them for ``--help``.
NOT_LOADED_BY_HELP = ("markdown_it", "pygments", "qat", "qiskit", "matplotlib")

#: Draws ``quark [COMMAND] --help`` for the commands in argv[2] (JSON), by our drawing (argv[1] "ours")
#: or by typer's (argv[1] "typer"); prints the screens, the help our drawing left to typer, and
#: whether typer's help module was loaded.
DRAW_SCREENS = r"""
import contextlib, io, json, sys

from quark_cli import help_screens
from quark_cli.cli import main

declined = []
if sys.argv[1] == "typer":
    help_screens.draw_help = lambda command, ctx: False
else:
    draw = help_screens.draw_help

    def recording(command, ctx):
        drawn = draw(command, ctx)
        if not drawn:
            declined.append(ctx.command_path)
        return drawn

    help_screens.draw_help = recording
screens = {}
for command in json.loads(sys.argv[2]):
    sys.argv = ["quark", *command.split(), "--help"]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        try:
            main()
        except SystemExit as stop:
            assert stop.code in (0, None), stop.code
    screens[command] = buffer.getvalue()
print(json.dumps({"screens": screens, "declined": declined, "rich_utils": "typer.rich_utils" in sys.modules}))
"""


def drawing_env(**settings: str) -> dict[str, str]:
    """This process's environment without what changes help drawing, then ``settings``."""
    env = {key: value for key, value in os.environ.items() if key not in DRAWING_VARIABLES}
    return {**env, **settings}


@cache
def screens(renderer: str, variable: str, width: int, colour: bool) -> dict:
    """Every command's help drawn by ``renderer`` ("ours" or "typer") in one new process."""
    settings = {variable: str(width), "FORCE_COLOR" if colour else "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-c", DRAW_SCREENS, renderer, json.dumps(COMMANDS)],
        capture_output=True,
        text=True,
        timeout=120,
        env=drawing_env(**settings),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_commands_come_from_the_app():
    assert {"run", "submit", "collect", "status", "report"} <= set(COMMANDS)


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour"])
@pytest.mark.parametrize("variable", ["TERMINAL_WIDTH", "COLUMNS"])
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command or "quark")
def test_help_is_drawn_as_typer_draws_it(command: str, width: int, variable: str, colour: bool):
    ours = screens("ours", variable, width, colour)
    theirs = screens("typer", variable, width, colour)
    # both sides drew what they are meant to: else the comparison would be typer against itself
    assert ours["declined"] == [] and not ours["rich_utils"]
    assert theirs["rich_utils"]
    screen = ours["screens"][command]
    assert ("\x1b[" in screen) == colour
    if not colour:  # the screen is the one asked for, as wide as asked
        assert f"Usage: quark {command}".rstrip() in screen
        assert max(len(line) for line in screen.splitlines()) == width
    assert screen == theirs["screens"][command]


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS if name)], ids=lambda c: " ".join(c) or "quark")
def test_help_loads_neither_typer_help_module_nor_quantum_stacks(command: list[str]):
    code = (
        "import contextlib, io, json, sys\n"
        "from quark_cli.cli import main\n"
        f"sys.argv = ['quark', *{command!r}, '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code in (0, None), stop.code\n"
        f"packages = {{name.split('.')[0] for name in sys.modules}} & {set(NOT_LOADED_BY_HELP)!r}\n"
        "print(json.dumps({'packages': sorted(packages), 'rich_utils': 'typer.rich_utils' in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=drawing_env(NO_COLOR="1")
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"packages": [], "rich_utils": False}
