"""The validation report as one self-contained HTML page (no scripts, no external files).

It shows what ``report.json`` holds for a person: the table's size, the rows dropped and why,
every problem with its policy, column, count and sample rows and lines, how the data
compares with the saved schema, and each column's profile. Every value is escaped. The
frame (head, style sheet, header with the verdict) is the run report's:
:mod:`conveyor.report_page`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.report_page import escape as _e
from conveyor.report_page import page

__all__ = ["render_html"]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{content}</section>'


def _where(problem: Mapping[str, Any]) -> str:
    rows = problem.get("rows") or []
    lines = problem.get("lines") or [None] * len(rows)
    return ", ".join(f"row {r}" + (f" (line {ln})" if ln is not None else "")
                     for r, ln in zip(rows, lines, strict=False))


def _columns(columns: Mapping[str, Any]) -> str:
    rows = []
    for name, entry in columns.items():
        if entry.get("kind") == "numeric" and entry.get("min") is None:
            detail = "—"  # no range kept (an id column, or no value at all)
        elif entry.get("kind") == "numeric":
            detail = f"[{entry.get('min')}, {entry.get('max')}]"
        elif entry.get("categories") is not None:
            cats = entry["categories"]
            detail = ", ".join(map(str, cats[:12])) + (" …" if len(cats) > 12 else "")
        else:
            detail = "free text"
        rows.append([f"<code>{_e(name)}</code>", _e(entry.get("kind")),
                     _e(entry.get("dtype")), f"{float(entry.get('missing_share', 0)):.1%}",
                     _e(detail)])
    return _table(["column", "kind", "dtype", "missing", "range / categories"], rows)


def render_html(report: Mapping[str, Any]) -> str:
    """The page for a validate step's ``report.json``."""
    passed = report.get("passed", True)
    source = report.get("source", "the data")
    dropped_rows = report.get("dropped", {}).get("rows", 0)
    sections = [_section("summary", "Table", _table(
        ["rows read", "rows kept", "rows dropped", "columns", "features"],
        [[_e(report.get("rows_in", report.get("rows"))), _e(report.get("rows")),
          _e(dropped_rows), _e(report.get("columns")),
          _e(len(report.get("features", {})))]]))]
    problems = report.get("problems", [])
    sections.append(_section("problems", f"Problems ({len(problems)})", _table(
        ["check", "policy", "column", "count", "sample rows", "message"],
        [[f"<code>{_e(p.get('check'))}</code>",
          f"<span class=\"{_e(p.get('policy'))}\">{_e(p.get('policy'))}</span>",
          _e(p.get("column") or "—"), _e(p.get("count")), _e(_where(p)),
          _e(p.get("message"))] for p in problems]) if problems else "<p>None.</p>"))
    dropped = report.get("dropped", {}).get("by_check", {})
    if dropped:
        sections.append(_section("dropped", "Rows dropped", _table(
            ["check", "rows"], [[f"<code>{_e(k)}</code>", _e(v)] for k, v in dropped.items()])))
    baseline = report.get("baseline") or {}
    sections.append(_section("schema", "Saved schema", (
        f"<p>{_e(baseline.get('status', 'not compared'))}"
        + (f": <code>{_e(baseline.get('uri'))}</code>" if baseline.get("uri") else "")
        + "</p>")))
    columns = (report.get("schema") or {}).get("columns", {})
    if columns:
        sections.append(_section("columns", "Columns", _columns(columns)))
    links = [("summary", "Table"), ("problems", "Problems"), ("dropped", "Rows dropped"),
             ("schema", "Saved schema"), ("columns", "Columns")]
    return page(title=f"Validation of {source} · {'passed' if passed else 'failed'}",
                heading=f"Validation of {source}",
                badge=("passed", "PASSED") if passed else ("rejected", "FAILED"),
                sub=f"{_e(report.get('rows'))} rows kept of "
                    f"{_e(report.get('rows_in', report.get('rows')))}",
                links=links, body="".join(sections))
