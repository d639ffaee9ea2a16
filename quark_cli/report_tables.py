"""Tables that fit: laid out for a terminal of a given width, or one record per line for a log.

``report`` and ``status`` describe what they show as ``Grid`` blocks (a title, a header, rows of
text cells, a free-text note per row) and ``Lines`` blocks; ``render`` lays them out. On a
terminal a table never splits a cell (a number stays whole) and never cuts a header: headers wrap
at ``_`` and spaces; when that is not enough, the columns that hold one value in every row move to
a line under the table; when even that is too wide, each record becomes a short paragraph of
``name: value`` fields. Free text (an error) goes under the table, wrapped at spaces. Into a pipe
or file (``width=None``) every record is one line at its natural width, without box drawing, so
that ``grep`` finds a record whole.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

GUTTER = "  "
NUMERIC = re.compile(r"^(-|[-+]?(\d[\d.]*|\.\d+)(e[-+]?\d+)?%?( ± \S+)?( \(\d+ missing\))?|\d+/\d+)$")


@dataclass
class Grid:
    """A table: ``rows`` of text cells under ``header``, one ``notes`` entry (free text or None) per row.

    ``note_header`` names the notes' column in a log; without it a note is appended to the row's
    last cell as ``: note`` there. On a terminal the notes are listed under the table.
    """

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str | None] = field(default_factory=list)
    note_header: str | None = None
    footer: list[str] = field(default_factory=list)


@dataclass
class Lines:
    """Text under or between tables: ``fields`` are packed into lines at a terminal's width, never split."""

    fields: list[str]
    prefix: str = ""
    style: str = ""


Block = Grid | Lines


def render(blocks: list[Block], width: int | None) -> list[Any]:
    """The blocks as rich ``Text`` lines: fitted to ``width`` columns, or for a log when it is None."""
    from rich.text import Text

    lines: list[Any] = []
    for block in blocks:
        if isinstance(block, Lines):
            lines += [Text(line, style=block.style) for line in _lines(block, width)]
        elif width is None:
            lines += [Text(line, style=style) for line, style in _log_table(block)]
        else:
            lines += [Text(line, style=style) for line, style in _terminal_table(block, width)]
    return lines


#: Control characters other than white space, shown as escapes: a service's message never drives the terminal.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}


def one_line(text: str) -> str:
    """Text with its line breaks and runs of spaces made single spaces (an error of several lines),
    and other control characters (an escape sequence's ``ESC``) shown as ``\\x1b``."""
    return " ".join(str(text).split()).translate(_CONTROL)


def pack(fields: list[str], width: int, indent: str = "", first: str = "") -> list[str]:
    """``fields`` joined by gutters into lines of at most ``width`` characters, each field whole.

    The first line starts with ``first``, the others with ``indent``. A field longer than a line is
    wrapped at its spaces; a word longer than a line stays whole (and overflows).
    """
    lines: list[str] = []
    current, fresh = first, True
    for text in fields:
        if not fresh and len(current) + len(GUTTER) + len(text) <= width:
            current += GUTTER + text
            continue
        if not fresh:
            lines.append(current.rstrip())
            current = indent
        room = max(1, width - max(len(current), len(indent)))
        parts = textwrap.wrap(text, room, break_long_words=False, break_on_hyphens=False) or [""]
        if len(parts) > 1:
            lines += [current + parts[0], *(indent + part for part in parts[1:-1])]
            current = indent + parts[-1]
        else:
            current += parts[0]
        fresh = False
    if current.strip():
        lines.append(current.rstrip())
    return [line.rstrip() for line in lines]


def _lines(block: Lines, width: int | None) -> list[str]:
    fields = [one_line(text) for text in block.fields if text]
    if not fields:
        return [block.prefix.rstrip()] if block.prefix else []
    if width is None:
        return [(block.prefix + " ".join(fields)).rstrip()]
    indent = "  " if block.prefix else ""
    if not block.prefix:  # a sentence: wrap it at spaces
        return textwrap.wrap(" ".join(fields), width, break_long_words=False, break_on_hyphens=False)
    return pack(fields, width, indent=indent, first=block.prefix)


# -- logs -------------------------------------------------------------------------------------------


def _log_table(grid: Grid) -> list[tuple[str, str]]:
    header, rows = list(grid.header), [[one_line(cell) for cell in row] for row in grid.rows]
    notes = [one_line(note) if note else "" for note in _notes(grid)]
    if any(notes):
        if grid.note_header:
            header.append(grid.note_header)
            rows = [[*row, note] for row, note in zip(rows, notes, strict=True)]
        else:
            rows = [[*row[:-1], row[-1] + (f": {note}" if note else "")] for row, note in zip(rows, notes, strict=True)]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    right = _numeric_columns(rows, len(header))
    out = [(grid.title, "italic")] if grid.title else []
    out.append((_join(header, widths, right), "bold"))
    out += [(_join(row, widths, right), "") for row in rows]
    out += [(one_line(line), "") for line in grid.footer]
    return out


def _notes(grid: Grid) -> list[str | None]:
    return list(grid.notes) + [None] * (len(grid.rows) - len(grid.notes))


def _join(cells: list[str], widths: list[int], right: list[bool]) -> str:
    padded = [cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(cells, widths, right, strict=True)]
    return GUTTER.join(padded).rstrip()


def _numeric_columns(rows: list[list[str]], count: int) -> list[bool]:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in range(count)]
    return [bool(cells) and all(NUMERIC.match(cell) for cell in cells if cell) and any(cells) for cells in columns]


# -- terminals --------------------------------------------------------------------------------------


def _terminal_table(grid: Grid, width: int) -> list[tuple[str, str]]:
    rows = [[one_line(cell) for cell in row] for row in grid.rows]
    header, moved = list(grid.header), []
    widths = _fit(header, rows, width)
    if widths is None and len(rows) > 1:  # columns with one value in every row go under the table
        keep = [0] + [i for i in range(1, len(header)) if len({row[i] for row in rows}) > 1]
        moved = [f"{header[i]}={rows[0][i]}" for i in range(len(header)) if i not in keep and rows[0][i]]
        header, rows = [header[i] for i in keep], [[row[i] for i in keep] for row in rows]
        widths = _fit(header, rows, width)
    out = [(line, "italic") for line in _wrap(grid.title, width)]
    if widths is None:
        out += _records(header, rows, width)
    else:
        right = _numeric_columns(rows, len(header))
        wrapped = [_wrap_header(name, w) for name, w in zip(header, widths, strict=True)]
        for index in range(max(len(lines) for lines in wrapped)):
            cells = [lines[index] if index < len(lines) else "" for lines in wrapped]
            out.append((_join(cells, widths, right), "bold"))
        out.append((GUTTER.join("─" * w for w in widths), ""))
        out += [(_join(row, widths, right), "") for row in rows]
    if moved:
        out += [(line, "") for line in pack(moved, width, indent="  ", first="in every row:  ")]
    for key, note in zip((row[0] for row in grid.rows), _notes(grid), strict=True):
        if note:
            out += [(line, "") for line in pack([one_line(note)], width, indent="    ", first=f"{key}: ")]
    for line in grid.footer:
        out += [(text, "") for text in _wrap(one_line(line), width)]
    return out


def _fit(header: list[str], rows: list[list[str]], width: int) -> list[int] | None:
    """Column widths that fit ``width`` with whole cells and headers wrapped no more than needed, or None."""
    cells = [max((len(row[i]) for row in rows), default=0) for i in range(len(header))]
    full = [max(c, len(name)) for c, name in zip(cells, header, strict=True)]
    room = width - len(GUTTER) * (len(header) - 1)
    if sum(full) <= room:
        return full
    least = [max(c, *(len(piece) for piece in _pieces(name))) for c, name in zip(cells, header, strict=True)]
    if sum(least) > room:
        return None
    spare = room - sum(least)
    for i in sorted(range(len(header)), key=lambda i: full[i] - least[i]):  # unwrap the cheapest headers first
        if 0 < full[i] - least[i] <= spare:
            spare -= full[i] - least[i]
            least[i] = full[i]
    return least


def _pieces(name: str) -> list[str]:
    """Where a header may wrap: after ``_`` and at spaces (``approximation_`` / ``ratio``)."""
    return [piece for piece in re.split(r"(?<=_)|\s+", name) if piece]


def _wrap_header(name: str, width: int) -> list[str]:
    lines: list[str] = []
    for piece in _pieces(name):
        if lines and len(lines[-1]) + (0 if lines[-1].endswith("_") else 1) + len(piece) <= width:
            lines[-1] += piece if lines[-1].endswith("_") else " " + piece
        else:
            lines.append(piece)
    return lines or [""]


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) if text else []


def _records(header: list[str], rows: list[list[str]], width: int) -> list[tuple[str, str]]:
    """Too narrow for a table: each row as its first cell, then ``name: value`` fields indented."""
    out = []
    for row in rows:
        out.append((f"{header[0]} {row[0]}", "bold"))
        fields = [f"{name}: {cell}" for name, cell in zip(header[1:], row[1:], strict=True) if cell]
        out += [(line, "") for line in pack(fields, width, indent="  ", first="  ")]
    return out
