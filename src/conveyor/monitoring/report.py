"""The monitoring report as one self-contained HTML page: the verdict, a table of every
feature's statistics, and plots of the reference against the window (matplotlib PNGs inlined
as base64, so the file opens anywhere: from the Store, from MLflow, attached to a ticket)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_PLOTS", "render_html"]

#: Plots drawn: the drifted features first, then the highest PSI.
MAX_PLOTS = 12


def _plot(result: Mapping[str, Any]) -> str | None:
    """A bar chart of the reference's and the window's shares per bin, as a data: URI."""
    ref, win = result.get("reference_shares"), result.get("window_shares")
    if not ref or not win:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if isinstance(ref, Mapping):
        labels = [str(k)[:14] for k in ref]
        ref_values, win_values = list(ref.values()), [win.get(k, 0.0) for k in ref]
    else:
        labels = [str(i + 1) for i in range(len(ref))]
        ref_values, win_values = list(ref), list(win)
    width = 0.4
    positions = range(len(labels))
    figure, axes = plt.subplots(figsize=(4.2, 2.4), dpi=80)
    try:
        axes.bar([p - width / 2 for p in positions], ref_values, width, label="reference")
        axes.bar([p + width / 2 for p in positions], win_values, width, label="window")
        axes.set_xticks(list(positions), labels, fontsize=7,
                        rotation=45 if isinstance(ref, Mapping) else 0)
        name = str(result["name"])
        axes.set_title("predictions" if name == "_prediction" else name[:40], fontsize=9)
        if not isinstance(ref, Mapping):
            axes.set_xlabel("bin (training deciles)", fontsize=7)
        axes.set_ylabel("share", fontsize=8)
        axes.legend(fontsize=7)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _fmt(value: Any, pattern: str = "{:.4f}") -> str:
    return "–" if value is None else pattern.format(value)


def render_html(report: Mapping[str, Any]) -> str:
    """The report page for a check's report (the JSON :func:`conveyor.monitoring.check`
    writes)."""
    esc = html.escape
    features = list((report.get("features") or {}).values())
    ranked = sorted(features, key=lambda r: (not r["drifted"], -(r.get("psi") or 0.0)))
    plots = [p for p in (_plot(r) for r in [report["prediction"], *ranked][:MAX_PLOTS + 1]) if p]
    verdict = "DRIFT" if report["drifted"] else "no drift"
    colour = "#b00020" if report["drifted"] else "#1b5e20"
    rows = []
    for r in [*ranked, report["prediction"]]:
        note = "; ".join(r.get("why") or []) or ("" if r["computable"] else
                                                  f"not computable: {r['reason']}")
        rows.append(
            f"<tr class={'drift' if r['drifted'] else 'ok'}><td>{esc(str(r['name']))}</td>"
            f"<td>{esc(str(r.get('kind')))}</td><td>{r.get('values', 0)}</td>"
            f"<td>{_fmt(r.get('psi'))}</td><td>{_fmt(r.get('ks_pvalue'), '{:.3g}')}</td>"
            f"<td>{_fmt(r.get('missing_share'), '{:.1%}')}</td>"
            f"<td>{_fmt(r.get('out_of_range_share'), '{:.1%}')}</td>"
            f"<td>{esc(note)}</td></tr>")
    live = report.get("live_metrics") or {}
    live_html = "".join(f"<li>{esc(k)}: {v:.4f}</li>" for k, v in live.items())
    actions = report.get("actions") or {}
    action_lines = "".join(f"<li>{esc(k)}: {esc(str(v))}</li>" for k, v in actions.items())
    images = "".join(f'<img src="{p}" alt="plot">' for p in plots)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(report['model'])} monitoring {esc(report['check_id'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
.verdict {{ color: {colour}; font-weight: bold; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }}
tr.drift {{ background: #fde7e9; }}
img {{ margin: 0.3em; border: 1px solid #eee; }}
</style></head><body>
<h1>{esc(report['model'])} <small>version {esc(str(report.get('version')))}</small></h1>
<p class="verdict">{verdict}: {len(report['features_drifted'])} of {len(features)} feature(s)
drifted{'; predictions drifted' if report['prediction']['drifted'] else ''}</p>
<p>Checked {esc(report['checked_at'])} on {report['rows']} row(s) from
{esc(str(report.get('source')))}; thresholds {esc(str(report.get('thresholds')))}.</p>
{f'<h2>Live metrics</h2><ul>{live_html}</ul>' if live_html else ''}
{f'<h2>Actions</h2><ul>{action_lines}</ul>' if action_lines else ''}
<h2>Features</h2>
<table><tr><th>feature</th><th>kind</th><th>values</th><th>PSI</th><th>KS p</th>
<th>missing</th><th>out of range</th><th>note</th></tr>
{''.join(rows)}
</table>
<h2>Reference against window</h2>
<div>{images}</div>
</body></html>
"""
