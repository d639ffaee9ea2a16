"""``quark``'s help screens, drawn as typer draws them but without typer's help module.

typer draws help with ``typer.rich_utils``, whose import alone loads rich.markdown, markdown-it,
rich.syntax, pygments and rich.traceback (30 ms, a third of ``quark --help``), then parses every
help text as Markdown. Our help texts are plain prose, which Markdown draws as wrapped paragraphs;
so ``draw_help`` draws the very screens typer draws in its "markdown" mode (the same characters and
colours, checked byte for byte at several widths by ``tests/test_help_screens.py``) with rich's
Table and Panel alone, and leaves any help that uses more than plain prose to typer. Imported only
when a help screen is drawn (``quark_cli.help_screens``): the commands themselves never load it.
Usage errors are still drawn by typer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from gettext import gettext
from inspect import cleandoc
from typing import Any

import typer
from rich.console import Console
from rich.highlighter import RegexHighlighter
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from quark_cli.cli_output import output_closed

#: Help text that is more to Markdown than paragraphs of prose: inline code, emphasis, escapes,
#: entities, HTML, links, tables, strikethrough, hard line breaks, emoji codes, tabs and other
#: control characters, and underscores that are not inside a word.
_MARKDOWN_INLINE = re.compile(
    r"[`*\\<\[\]|\x00-\x09\x0b-\x1f\x7f]|&[#0-9A-Za-z]+;|~~|:\S*:|[^\S \n]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])| \n"
)
#: What rich reads as markup or an emoji code in a string.
_MARKUP = re.compile(r"[\[\]:\\]")
#: Lines that start a Markdown block other than a paragraph (heading, quote, list, fence, rule, setext
#: underline, indented code), and lines of spaces.
_MARKDOWN_BLOCK = re.compile(r"(?m)^(?: {4}| *(?:[#>]|[-+](?: |$)|\d{1,9}[.)](?: |$)|~~~|[-= ]+$))")


def _is_prose(text: str) -> bool:
    """True when Markdown draws ``text`` as paragraphs of its lines joined by spaces, nothing else."""
    return not (_MARKDOWN_INLINE.search(text) or _MARKDOWN_BLOCK.search(text))


class _Prose:
    """Plain prose drawn as rich's ``Markdown`` draws it: paragraphs of lines joined by spaces, left
    justified (padded to the width), one blank line between; measured, like ``Markdown``, as wide as
    the space it is given."""

    def __init__(self, text: str, style: str = "") -> None:
        self.source = text
        self.paragraphs: list[list[str]] = []
        lines: list[str] = []
        for line in [*text.split("\n"), ""]:
            if line.strip(" "):
                lines.append(line.strip(" "))
            elif lines:
                self.paragraphs.append(lines)
                lines = []
        self.style = style

    def __rich_console__(self, console: Console, options: Any) -> Any:
        from rich.segment import Segment

        style = console.get_style(self.style, default="none") + console.get_style("markdown.paragraph", default="none")
        for number, lines in enumerate(self.paragraphs):
            if number:
                yield Segment.line()
            paragraph = Text(justify="left")
            for index, line in enumerate(lines):
                if index:
                    paragraph.append(" ", style)
                paragraph.append(line, style)
            yield paragraph


class _Stacked:
    """A parameter's help, default and "required" as typer's ``Columns`` of them lays them out: when
    the help (prose, as wide as the space) comes first, one under another, else side by side."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __rich_console__(self, console: Console, options: Any) -> Any:
        if self.items and isinstance(self.items[0], _Prose):
            yield from self.items
        elif self.items:
            from rich.columns import Columns

            yield Columns(self.items)


def _title(title: str) -> Text | str:
    """A panel's title as its ``Text``: what rich makes of a plain string, without loading its emoji table."""
    return title if _MARKUP.search(title) else Text(title)


class _OptionHighlighter(RegexHighlighter):
    highlights = [
        r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
        r"(?P<types>\<[^\>]+\>)",
        r"(?P<usage>Usage: )",
    ]


class _NegativeOptionHighlighter(RegexHighlighter):
    highlights = [
        r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
    ]


class _TypesHighlighter(RegexHighlighter):
    highlights = [
        r"^(?P<types_sep>(\[|<))",
        r"(?P<types_sep>\|)",
        r"(?P<types_sep>(\]|>))(\.\.\.)?$",
    ]


def _help_console() -> Console:
    """The console typer draws help on, with its theme and its environment variables."""
    from rich.theme import Theme

    theme = {
        "option": "bold cyan",
        "switch": "bold green",
        "negative_option": "bold magenta",
        "negative_switch": "bold red",
        "types": "bold yellow",
        "types_sep": "dim",
        "usage": "yellow",
    }
    force_terminal = True if os.getenv("GITHUB_ACTIONS") or os.getenv("FORCE_COLOR") or os.getenv("PY_COLORS") else None
    if os.getenv("_TYPER_FORCE_DISABLE_TERMINAL"):
        force_terminal = False
    width = os.getenv("TERMINAL_WIDTH")
    console = Console(
        theme=Theme(theme),
        highlighter=_OptionHighlighter(),
        color_system="auto",
        force_terminal=force_terminal,
        width=int(width) if width else None,
    )
    console.on_broken_pipe = output_closed  # ``quark --help | head -1``: exit 141, as every command's output
    return console


def draw_help(command: TyperCommand | TyperGroup, ctx: typer.Context) -> bool:
    """Print ``command``'s help as ``typer.rich_utils.rich_format_help`` does in "markdown" mode.

    Returns False, having printed nothing, when the help needs what only typer draws: text with
    Markdown syntax, a deprecated command, an epilog, environment variables or rich help panels.
    """
    from typer.core import HAS_RICH

    if not HAS_RICH or command.rich_markup_mode != "markdown" or command.deprecated or command.epilog:
        return False
    params = [p for p in command.get_params(ctx) if isinstance(p, (TyperArgument, TyperOption)) and not p.hidden]
    commands = []
    if isinstance(command, TyperGroup):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                commands.append(sub)
    if (
        any(getattr(item, "rich_help_panel", None) for item in [*params, *commands])
        or any(sub.deprecated for sub in commands)
        or any(p.envvar is not None for p in params)
        or ctx.auto_envvar_prefix is not None
    ):
        return False

    from rich.align import Align
    from rich.console import Group
    from rich.padding import Padding

    prose: list[_Prose] = []

    def paragraphs(text: str, style: str = "") -> _Prose:
        prose.append(_Prose(text, style))
        return prose[-1]

    drawn: list[tuple[Any, str | None]] = [(Padding(_OptionHighlighter()(command.get_usage(ctx)), 1), "bold")]
    if command.help:
        first, *rest = cleandoc(command.help).partition("\f")[0].split("\n\n")
        about: list[Any] = [paragraphs(cleandoc(first.strip()))]
        if rest:
            about += [Text(""), paragraphs(cleandoc("\n\n".join(rest)), style="dim")]
        drawn.append((Padding(Align(Group(*about), pad=False), (0, 1, 1, 1)), None))
    arguments = [p for p in params if isinstance(p, TyperArgument)]
    options = [p for p in params if isinstance(p, TyperOption)]
    for title, listed in ((gettext("Arguments"), arguments), (gettext("Options"), options)):
        if listed:
            drawn.append((_parameters_panel(title, listed, ctx, paragraphs), None))
    if commands:
        drawn.append((_commands_panel(gettext("Commands"), commands, paragraphs), None))
    if not all(_is_prose(text.source) for text in prose):
        return False

    console = _help_console()
    for renderable, style in drawn:
        console.print(renderable, style=style)
    return True


def _parameters_panel(title: str, params: list[Any], ctx: typer.Context, paragraphs: Callable[..., _Prose]) -> Any:
    """typer's panel of arguments or options: names, type and range, help, default, required."""
    from rich.panel import Panel
    from typer._click.types import _NumberRangeBase

    highlighter, negative, types = _OptionHighlighter(), _NegativeOptionHighlighter(), _TypesHighlighter()
    rows = []
    for param in params:
        metavar = param.make_metavar(ctx=ctx)
        name = None
        if isinstance(param, TyperArgument):
            name = param.metavar if param.metavar is not None else (param.name or "")
            metavar = param.type.get_metavar(param=param, ctx=ctx)
            if metavar is None:
                metavar = f"<{param.type.name}>"
        long, short, negative_long, negative_short = [], [], [], []
        for opt in param.opts:
            (long if "--" in opt else short).append(opt if "--" in opt or not name else name)
        for opt in param.secondary_opts:
            (negative_long if "--" in opt else negative_short).append(opt if "--" in opt or not name else name)
        kind = Text(style="bold yellow", overflow="fold")
        if metavar and "bool" not in metavar.lower():
            kind.append(metavar)
        if (
            isinstance(param.type, _NumberRangeBase)
            and isinstance(param, TyperOption)
            and not (param.count and param.type.min == 0 and param.type.max is None)
        ):
            described = param.type._describe_range()
            if described:
                kind.append(f" [{described}]")
        about: list[Any] = []
        if param.help:
            about.append(paragraphs(cleandoc("\n".join(param.help.split("\n\n")).strip())))
        default = param._extract_default_help_str(ctx=ctx)
        show_default_is_str = isinstance(param.show_default, str)
        if show_default_is_str or (default is not None and (param.show_default or ctx.show_default)):
            shown = param._get_default_string(ctx=ctx, show_default_is_str=show_default_is_str, default_value=default)
            if shown:
                about.append(Text(gettext("[default: {}]").format(shown), style="dim"))
        if param.required:
            about.append(Text(gettext("[required]"), style="dim red"))
        required = Text("*", style="red") if param.required else ""
        names = [highlighter(",".join(long)), highlighter(",".join(short))]
        names += [negative(",".join(negative_long)), negative(",".join(negative_short))]
        rows.append((required, [*names, types(kind), _Stacked(about)]))
    table = _panel_table(highlight=True)
    starred = any(required for required, _ in rows)
    for required, row in rows:
        table.add_row(*([required, *row] if starred else row))
    return Panel(table, border_style="dim", title=_title(title), title_align="left")


def _panel_table(highlight: bool) -> Any:
    """The borderless, full-width table typer puts inside its help panels."""
    from rich.table import Table

    return Table(
        highlight=highlight,
        show_header=False,
        expand=True,
        box=None,
        show_lines=False,
        leading=0,
        border_style=None,
        row_styles=None,
        pad_edge=False,
        padding=(0, 1),
    )


def _commands_panel(title: str, commands: list[Any], paragraphs: Callable[..., _Prose]) -> Any:
    """typer's panel of a group's commands: each name and the first paragraph of its help."""
    from rich.panel import Panel

    table = _panel_table(highlight=False)
    table.add_column(style="bold cyan", no_wrap=True, width=max(len(sub.name or "") for sub in commands))
    table.add_column("Description", justify="left", no_wrap=False, ratio=10)
    for sub in commands:
        first = cleandoc(sub.short_help or sub.help or "").split("\n\n")[0]
        if not first.startswith("\b"):
            first = first.replace("\n", " ")
        table.add_row(Text(sub.name or ""), paragraphs(cleandoc(first.strip())))
    return Panel(table, border_style="dim", title=_title(title), title_align="left")
