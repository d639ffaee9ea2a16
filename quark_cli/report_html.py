"""``quark report --format html``: one self-contained HTML file of one or more runs.

Meant to be mailed or attached to a paper's supplement: the tables of ``quark report``, each run's
metadata (created, host, quark-cli version, config hash, command history, the config itself) and
the figures of ``--plots`` embedded as base64 PNG. The file refers to nothing outside itself (no
stylesheet, script, font or image to fetch), so it opens the same anywhere, offline, years later.
Several runs are laid out side by side, after a table that compares them.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from quark_cli import __version__
from quark_cli.report import _item_cells, _item_header, _row_cells, _row_header, _totals_text, branches, fmt
from quark_cli.report_tables import NUMERIC

STYLE = """
:root { color-scheme: light; --ink: #1d2730; --muted: #5b6770; --line: #d5dbe0; --head: #eef2f5; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: var(--ink); background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 8px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 4px; color: var(--muted); }
.muted, figcaption, .fixed { color: var(--muted); }
.runs { display: grid; gap: 28px; align-items: start; margin-top: 20px; }
.run { min-width: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 4px 0 10px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td { white-space: nowrap; }
td.num { text-align: right; }
td.FAILED { color: #a4161a; font-weight: 600; white-space: normal; min-width: 18em; }
td.INTERRUPTED { color: #9a6700; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0 10px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
figure { margin: 12px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; font-size: 12px; }
@media (max-width: 900px) { .runs { grid-template-columns: 1fr !important; } }
@media print { .runs { grid-template-columns: 1fr !important; } .scroll { overflow: visible; } }
"""


def to_html(reports: list[dict[str, Any]], aggregated: bool = False) -> str:
    """One self-contained HTML document of ``reports`` (``build_report`` documents, with ``plots``).

    The figures listed in a report's ``plots`` are read and embedded; the run's metadata and config
    are read from its run directory.
    """
    names = [Path(report["run_dir"]).name or str(report["run_dir"]) for report in reports]
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="quark-cli {escape(__version__)}">',
        f"<title>quark report: {escape(', '.join(names))}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>quark report: {escape(', '.join(names))}</h1>",
        f'<p class="muted">{len(reports)} run(s); written {escape(generated)} by quark-cli {escape(__version__)}. '
        "Every figure and table is in this file.</p>",
        "</header>",
    ]
    metadata = [_metadata(report) for report in reports]
    if len(reports) > 1:
        parts += _comparison(reports, names, metadata)
    columns = min(len(reports), 3)
    parts.append(f'<main class="runs" style="grid-template-columns: repeat({columns}, minmax(0, 1fr))">')
    for report, name, meta in zip(reports, names, metadata, strict=True):
        parts += _run_section(report, name, meta, aggregated)
    parts += ["</main>", "</body>", "</html>", ""]
    return "\n".join(parts)


def _metadata(report: dict[str, Any]) -> dict[str, Any]:
    """What run.json and config.yml say about the run; empty when they cannot be read."""
    from quark_cli.state import RunDir

    try:
        run = RunDir.open(Path(report["run_dir"]))
        info = run.read_run()
        config = run.config_text()
    except Exception:  # the tables came from the same folder; metadata is a bonus, never a failure
        return {}
    return {**info, "config_text": config}


def _comparison(reports: list[dict[str, Any]], names: list[str], metadata: list[dict[str, Any]]) -> list[str]:
    rows: list[tuple[str, list[str]]] = [
        ("run directory", [str(report["run_dir"]) for report in reports]),
        ("modules", [", ".join(" → ".join(g["modules"]) for g in branches(report)) for report in reports]),
        ("created", [str(report.get("created") or "") for report in reports]),
        ("host", [str(meta.get("host") or "") for meta in metadata]),
        ("quark-cli", [str(meta.get("quark_cli_version") or "") for meta in metadata]),
        ("config hash", [str(report.get("config_hash") or "")[:12] for report in reports]),
        ("backlog items", [str(len(report["items"])) for report in reports]),
    ]
    for key, label in (("total", "stacks"), ("FINISHED", "finished"), ("FAILED", "failed")):
        rows.append((label, [str(report["stack_totals"].get(key, 0)) for report in reports]))
    rows.append(("pending", [str(_pending(report)) for report in reports]))
    lines = ["<section>", "<h2>Runs side by side</h2>", '<div class="scroll"><table>']
    lines.append("<tr><th></th>" + "".join(f"<th>{escape(name)}</th>" for name in names) + "</tr>")
    for label, cells in rows:
        lines.append(f"<tr><th>{escape(label)}</th>" + "".join(_cell(cell) for cell in cells) + "</tr>")
    lines += ["</table></div>", "</section>"]
    return lines


def _pending(report: dict[str, Any]) -> int:
    totals = report["stack_totals"]
    return totals.get("INTERRUPTED", 0) + totals.get("NOT_STARTED", 0)


def _run_section(report: dict[str, Any], name: str, meta: dict[str, Any], aggregated: bool) -> list[str]:
    lines = ['<article class="run">', f"<h2>{escape(name)}</h2>", '<dl class="meta">']
    fields = [
        ("run directory", report["run_dir"]),
        ("created", report.get("created")),
        ("host", meta.get("host")),
        ("quark-cli", meta.get("quark_cli_version")),
        ("config", meta.get("config_source")),
        ("config hash", report.get("config_hash")),
        ("commands", "; ".join(_history(meta.get("history") or []))),
    ]
    lines += [f"<dt>{escape(label)}</dt><dd>{escape(str(value))}</dd>" for label, value in fields if value]
    lines += ["</dl>", f"<p>{escape(_totals_text(report))}.</p>"]
    for group in branches(report):
        lines.append(f"<h3>{escape(' → '.join(group['modules']))}</h3>")
        if group["fixed"]:
            fixed = ", ".join(f"{key} = {fmt(value)}" for key, value in group["fixed"].items())
            lines.append(f'<p class="fixed">Fixed parameters: {escape(fixed)}</p>')
        if not aggregated:
            lines.append("<h4>Per repetition</h4>")
            lines += _table(_row_header(group), [_row_cells(group, row, False) for row in group["rows"]], status=True)
        lines.append("<h4>Mean ± std over repetitions</h4>")
        lines += _table(_item_header(group), [_item_cells(group, item) for item in group["items"]])
    figures = [plot for plot in report.get("plots") or [] if Path(plot["path"]).is_file()]
    if figures:
        lines.append("<h3>Figures</h3>")
    for plot in figures:
        data = base64.b64encode(Path(plot["path"]).read_bytes()).decode("ascii")
        shows = escape(plot["shows"])
        lines += [
            "<figure>",
            f'<img src="data:image/png;base64,{data}" alt="{shows}">',
            f"<figcaption>{escape(Path(plot['path']).name)}: {shows}</figcaption>",
            "</figure>",
        ]
    if meta.get("config_text"):
        config = escape(meta["config_text"])
        lines += ["<details>", "<summary>config.yml</summary>", f"<pre>{config}</pre>", "</details>"]
    lines.append("</article>")
    return lines


def _history(history: list[dict[str, Any]]) -> list[str]:
    return [f"{entry.get('command', '?')} at {entry.get('at', '?')}" for entry in history]


def _table(header: list[str], rows: list[list[str]], status: bool = False) -> list[str]:
    lines = ['<div class="scroll"><table>', "<tr>" + "".join(f"<th>{escape(name)}</th>" for name in header) + "</tr>"]
    for row in rows:
        cells = [_cell(cell, status and index == len(row) - 1) for index, cell in enumerate(row)]
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table></div>")
    return lines


def _cell(text: str, status: bool = False) -> str:
    if status:
        return f'<td class="{escape(text.split(":")[0].strip())}">{escape(text)}</td>'
    return f'<td class="num">{escape(text)}</td>' if text and NUMERIC.match(text) else f"<td>{escape(text)}</td>"
