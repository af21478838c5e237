"""Plots and the HTML report of an evaluation: what a person would rather look at."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

__all__ = ["confusion_plot", "html_report", "roc_plot"]


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(4.2, 3.6), dpi=100)  # no pyplot: no global state, no GUI backend


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def confusion_plot(confusion: dict[str, Any], *, title: str) -> bytes:
    """A PNG of the confusion matrix (rows: true label, columns: predicted)."""
    fig = _figure()
    ax = fig.add_subplot()
    matrix = confusion["matrix"]
    labels = [str(v) for v in confusion["labels"]]
    ax.imshow(matrix, cmap="Blues")
    top = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center",
                    color="white" if value > top / 2 else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _png(fig)


def roc_plot(y_true: Any, scores: Any, *, positive: Any, title: str) -> bytes:
    """A PNG of the ROC curve of a binary classifier."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y_true == positive, scores)
    auc = roc_auc_score(y_true == positive, scores)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, label=f"AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return _png(fig)


def html_report(
    *, title: str, metrics: dict[str, float], facts: dict[str, Any], images: dict[str, bytes],
    gate: dict[str, Any] | None = None,
) -> str:
    """A self-contained HTML page: facts, a train/test metrics table, and the plots."""
    esc = html.escape
    names = sorted({k.split("_", 1)[1] for k in metrics})
    splits = [s for s in ("train", "cv", "test") if any(k.startswith(s + "_") for k in metrics)]
    head = "".join(f"<th>{esc(s)}</th>" for s in splits)
    rows = "".join(
        f"<tr><td>{esc(n)}</td>"
        + "".join(f"<td>{metrics[f'{s}_{n}']:.4f}</td>" if f"{s}_{n}" in metrics else "<td></td>"
                  for s in splits)
        + "</tr>"
        for n in names
    )
    fact_rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>"
                        for k, v in facts.items())
    gate_html = ""
    if gate is not None:
        checks = "".join(
            f"<tr class={'ok' if c['passed'] else 'bad'}><td>{esc(c['metric'])}</td>"
            f"<td>{esc(c['rule'])}</td><td>{c['value'] if c['value'] is not None else '—'}</td>"
            f"<td>{'pass' if c['passed'] else 'FAIL'}</td></tr>"
            for c in gate.get("checks", [])
        )
        verdict = "passed" if gate.get("passed") else "rejected"
        gate_html = (f"<h2>Gate: {verdict}</h2><table><tr><th>metric</th><th>rule</th>"
                     f"<th>value</th><th></th></tr>{checks}</table>")
    figures = "".join(
        f"<figure><img alt='{esc(name)}' src='data:image/png;base64,"
        f"{base64.b64encode(png).decode()}'><figcaption>{esc(name)}</figcaption></figure>"
        for name, png in images.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:60rem}}
table{{border-collapse:collapse;margin:0.5rem 0 1.5rem}}
td,th{{border:1px solid #ddd;padding:0.3rem 0.7rem;text-align:left}}
tr.ok td:last-child{{color:#176b1a}} tr.bad td:last-child{{color:#b3261e;font-weight:bold}}
figure{{display:inline-block;margin:0 1rem 1rem 0}}
</style></head><body>
<h1>{esc(title)}</h1>
<table>{fact_rows}</table>
<h2>Metrics</h2><table><tr><th>metric</th>{head}</tr>{rows}</table>
{gate_html}
<h2>Plots</h2>{figures}
</body></html>
"""
