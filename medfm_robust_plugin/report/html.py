"""One self-contained HTML page: tables, figures and thumbnails inlined, no network needed."""

from __future__ import annotations

import base64
import html
from typing import Any

from . import tables

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem auto; max-width: 1200px;
       color: #1d2330; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #d6dae3; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.85rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #e6e9ef; text-align: right; }
th { background: #f3f5f9; } td:first-child, th:first-child { text-align: left; }
img.figure { max-width: 100%; border: 1px solid #e6e9ef; margin: 0.5rem 0; }
.thumbs td { text-align: center; border: none; } .thumbs img { width: 96px; height: 96px; }
.note { color: #5b6475; font-size: 0.85rem; }
details { margin: 0.6rem 0; }
"""


def _table(rows: list[dict[str, Any]], columns) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(tables.fmt(row.get(key)))}</td>" for key, _ in columns)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img class="figure" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _thumbnails(thumbs: dict[str, dict[int, str]]) -> str:
    if not thumbs:
        return '<p class="note">Thumbnails need the task\'s data on this machine; it was not found.</p>'
    severities = sorted({s for by in thumbs.values() for s in by if s})
    clean = thumbs.get("clean", {}).get(0, "")
    head = (
        "<tr><th>corruption</th><th>clean</th>"
        + "".join(f"<th>{s}</th>" for s in severities)
        + "</tr>"
    )
    rows = []
    for name, by in thumbs.items():
        if name == "clean":
            continue
        cells = [f'<td><img alt="clean" src="data:image/png;base64,{clean}"></td>']
        for s in severities:
            image = by.get(s)
            cells.append(
                f'<td><img alt="{html.escape(name)} {s}" src="data:image/png;base64,{image}"></td>'
                if image
                else "<td></td>"
            )
        rows.append(f"<tr><td>{html.escape(name)}</td>{''.join(cells)}</tr>")
    return f'<table class="thumbs">{head}{"".join(rows)}</table>'


def render_html(sections: list) -> str:
    from . import PAIRING

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>MedFM-Robust report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>MedFM-Robust report</h1>",
        f"<p class='note'>{html.escape(PAIRING)} Intervals are paired bootstrap 95% intervals.</p>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.task)}</h2>")
        if section.reference is not None:
            label = html.escape(section.reference.label)
            parts.append(f"<p class='note'>mCE and relative mCE are relative to {label}.</p>")
        parts.append(_table(section.rows, tables.HEADLINE_COLUMNS))
        for name, path in section.figures.items():
            parts.append(_figure(path, name))
        parts.append("<h3>What each corruption looks like</h3>")
        parts.append(_thumbnails(section.thumbs))
        for run, conditions in section.per_run:
            parts.append(
                f"<details><summary>{html.escape(run.label)}: {html.escape(run.primary)} per corruption "
                "and severity</summary>"
            )
            parts.append(_table(conditions, tables.CONDITION_COLUMNS))
            parts.append("</details>")
    parts.append("</body></html>")
    return "\n".join(parts)
