"""The typer classes of ``quark`` and its commands, whose ``--help`` is drawn by
``quark_cli.help_drawing``: that module (and rich with it) is imported only when a help screen is
drawn, not by every command that defines its options with these classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from quark_cli.cli_output import output_failed


def draw_help(command: TyperCommand | TyperGroup, ctx: typer.Context) -> bool:
    """Print ``command``'s help as typer does in "markdown" mode (``help_drawing.draw_help``); False,
    having printed nothing, when the help needs what only typer draws."""
    from quark_cli import help_drawing

    return help_drawing.draw_help(command, ctx)


def format_help(command: TyperCommand | TyperGroup, ctx: typer.Context, typer_format: Callable[[], None]) -> None:
    """Print ``command``'s help with ``draw_help``, else with typer's own ``typer_format``; an
    OSError of the write (``quark --help > /dev/full``) names stdout (``output_failed``)."""
    try:
        if not draw_help(command, ctx):
            typer_format()
    except BrokenPipeError:  # a closed pipe is answered as every command's output is
        raise
    except OSError as error:
        raise output_failed(error) from None


class HelpGroup(TyperGroup):
    """A typer group whose ``--help`` is drawn by ``draw_help`` (typer's own drawing when it declines)."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        """Print the help of this group, on its own when it can, else as typer does."""
        format_help(self, ctx, lambda: super(HelpGroup, self).format_help(ctx, formatter))


class HelpCommand(TyperCommand):
    """A typer command whose ``--help`` is drawn by ``draw_help`` (typer's own drawing when it declines)."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        """Print the help of this command, on its own when it can, else as typer does."""
        format_help(self, ctx, lambda: super(HelpCommand, self).format_help(ctx, formatter))
