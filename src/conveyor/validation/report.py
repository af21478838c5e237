"""The validation report as one self-contained HTML page (no scripts, no external files).

It shows what ``report.json`` holds for a person: the table's size, the rows dropped and why,
every problem with its policy, column, count and sample rows and lines, how the data
compares with the saved schema, and each column's profile. Every value is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

__all__ = ["render_html"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1f2328}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #d0d7de;
padding:.3rem .6rem;text-align:left;vertical-align:top}th{background:#f6f8fa}
.fail{color:#b42318;font-weight:600}.warn{color:#9a6700;font-weight:600}
.drop{color:#0550ae;font-weight:600}.ok{color:#1a7f37;font-weight:600}
code{font-size:.85rem}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _where(problem: Mapping[str, Any]) -> str:
    rows = problem.get("rows") or []
    lines = problem.get("lines") or [None] * len(rows)
    return ", ".join(f"row {r}" + (f" (line {ln})" if ln is not None else "")
                     for r, ln in zip(rows, lines, strict=False))


def render_html(report: Mapping[str, Any]) -> str:
    """The page for a validate step's ``report.json``."""
    passed = report.get("passed", True)
    title = f"Validation of {report.get('source', 'the data')}"
    parts = [f"<h1>{_e(title)}</h1>",
             f"<p class=\"{'ok' if passed else 'fail'}\">{'passed' if passed else 'failed'}"
             f"</p>",
             _table(["rows read", "rows kept", "rows dropped", "columns", "features"],
                    [[_e(report.get("rows_in", report.get("rows"))), _e(report.get("rows")),
                      _e(report.get("dropped", {}).get("rows", 0)),
                      _e(report.get("columns")), _e(len(report.get("features", {})))]])]
    problems = report.get("problems", [])
    parts.append(f"<h2>Problems ({len(problems)})</h2>")
    if problems:
        parts.append(_table(
            ["check", "policy", "column", "count", "sample rows", "message"],
            [[f"<code>{_e(p.get('check'))}</code>",
              f"<span class=\"{_e(p.get('policy'))}\">{_e(p.get('policy'))}</span>",
              _e(p.get("column") or "—"), _e(p.get("count")), _e(_where(p)),
              _e(p.get("message"))] for p in problems]))
    else:
        parts.append("<p>None.</p>")
    dropped = report.get("dropped", {}).get("by_check", {})
    if dropped:
        parts.append("<h2>Rows dropped</h2>")
        parts.append(_table(["check", "rows"], [[f"<code>{_e(k)}</code>", _e(v)]
                                                for k, v in dropped.items()]))
    baseline = report.get("baseline") or {}
    parts.append("<h2>Saved schema</h2>")
    parts.append(f"<p>{_e(baseline.get('status', 'not compared'))}"
                 + (f": <code>{_e(baseline.get('uri'))}</code>" if baseline.get("uri") else "")
                 + "</p>")
    columns = (report.get("schema") or {}).get("columns", {})
    if columns:
        parts.append("<h2>Columns</h2>")
        rows = []
        for name, entry in columns.items():
            if entry.get("kind") == "numeric":
                detail = f"[{entry.get('min')}, {entry.get('max')}]"
            elif entry.get("categories") is not None:
                cats = entry["categories"]
                detail = ", ".join(map(str, cats[:12])) + (" …" if len(cats) > 12 else "")
            else:
                detail = "free text"
            rows.append([f"<code>{_e(name)}</code>", _e(entry.get("kind")),
                         _e(entry.get("dtype")), f"{float(entry.get('missing_share', 0)):.1%}",
                         _e(detail)])
        parts.append(_table(["column", "kind", "dtype", "missing", "range / categories"], rows))
    body = "\n".join(parts)
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>")
