"""The frame every HTML report page shares: the head, the style sheet, the header with a
verdict badge and links to the page's sections, and ``<main>``.

The run's report (:mod:`conveyor.modeling.report`) and the validation report
(:mod:`conveyor.validation.report`) fill it with their own sections, so both pages look
alike and a style change is made once. Pages are self-contained: styles inline, no script,
no external URL. It imports nothing of Conveyor, so every layer may use it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["CSS", "escape", "page"]


CSS = """
:root{--ink:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--ok:#15803d;--bad:#b91c1c;
--okbg:#dcfce7;--badbg:#fee2e2;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",
Arial,sans-serif;color:var(--ink);background:var(--bg)}
header{padding:1.6rem 2.5rem 1.3rem;background:#fff;border-bottom:1px solid var(--line)}
header h1{margin:0 0 .2rem;font-size:1.55rem;font-weight:650;letter-spacing:-.01em}
header .sub{color:var(--muted);font-size:.9rem}
.verdict{display:inline-block;margin-left:.8rem;padding:.15rem .7rem;border-radius:999px;
font-size:.8rem;font-weight:700;letter-spacing:.06em;vertical-align:middle}
.verdict.passed{background:var(--okbg);color:var(--ok)}
.verdict.rejected{background:var(--badbg);color:var(--bad)}
.verdict.none{background:var(--line);color:var(--muted)}
.reason{margin:.6rem 0 0;color:var(--bad);font-weight:500}
nav{margin-top:.8rem;font-size:.85rem}
nav a{color:var(--accent);text-decoration:none;margin-right:1rem}
main{padding:1.2rem 2.5rem 3rem;max-width:78rem}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:1.1rem 1.4rem;
margin:0 0 1.2rem}
h2{font-size:1.05rem;margin:0 0 .8rem;font-weight:650}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:0 0 1.2rem}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:.7rem 1.1rem;
min-width:9.5rem}
.card .k{font-size:.75rem;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.card .v{font-size:1.35rem;font-weight:650;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:.38rem .7rem;text-align:left;border-bottom:1px solid var(--line)}
th{font-size:.75rem;color:var(--muted);text-transform:uppercase;letter-spacing:.04em;
font-weight:600}
td.n{font-variant-numeric:tabular-nums;text-align:right;white-space:nowrap}
th.n{text-align:right}
tr:last-child td{border-bottom:none}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:700}
.fail{color:var(--bad);font-weight:600}.warn{color:#9a6700;font-weight:600}
.drop{color:var(--accent);font-weight:600}
code{font-size:.85rem}
.muted{color:var(--muted)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:1rem}
figure{margin:0;border:1px solid var(--line);border-radius:8px;padding:.6rem;background:#fff}
figure img{width:100%;height:auto;display:block}
figcaption{font-size:.82rem;color:var(--muted);margin-top:.3rem}
pre{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:.8rem 1rem;
overflow:auto;font-size:.8rem;line-height:1.45;max-height:30rem}
details summary{cursor:pointer;color:var(--accent);font-size:.9rem}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1.2rem;
align-items:start}
"""


def escape(value: Any) -> str:
    """``value`` as HTML text, quotes too; ``None`` is empty."""
    return html.escape("" if value is None else str(value), quote=True)


def page(*, title: str, heading: str, body: str, badge: tuple[str, str] | None = None,
         sub: str = "", note: str = "", links: Sequence[tuple[str, str]] = (),
         cards: str = "") -> str:
    """One self-contained page in the shared frame.

    Args:
        title: the browser tab's title (escaped here).
        heading: the ``<h1>`` (escaped here).
        body: the sections, HTML; each ``<section id="...">``.
        badge: (state, label) beside the heading: state ``passed``, ``rejected`` or
            ``none`` picks its colour.
        sub: HTML under the heading (the run id, the source).
        note: HTML after it (a rejection's reason).
        links: (section id, text) for the header's navigation; only the ids ``body`` has.
        cards: HTML of headline cards above the sections.
    """
    verdict = (f'<span class="verdict {escape(badge[0])}">{escape(badge[1])}</span>'
               if badge else "")
    nav = "".join(f'<a href="#{anchor}">{text}</a>' for anchor, text in links
                  if f'id="{anchor}"' in body)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style></head><body>
<header><h1>{escape(heading)}{verdict}</h1>
<div class=sub>{sub}</div>{note}<nav>{nav}</nav></header>
<main><div class=cards>{cards}</div>
{body}
</main></body></html>
"""
