"""Plots of a regressor's test predictions, as PNG bytes: predicted against actual, and the
residuals against the prediction. The evaluate step writes them as artifacts and hands them to
the HTML report (:mod:`conveyor.modeling.report`) as it does the classification plots."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = ["predicted_vs_actual_plot", "regression_images", "residuals_plot"]

_MAX_POINTS = 5000  # a scatter of more points says nothing more and costs seconds


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(4.2, 3.6), dpi=100)  # no pyplot: no global state, no GUI backend


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _points(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(y_true, dtype=float)
    pred = np.asarray(y_pred, dtype=float)
    if true.size > _MAX_POINTS:  # evenly spaced rows: deterministic, no seed to carry
        keep = np.linspace(0, true.size - 1, _MAX_POINTS).astype(int)
        true, pred = true[keep], pred[keep]
    return true, pred


def predicted_vs_actual_plot(y_true: Any, y_pred: Any, *, title: str) -> bytes:
    """A PNG scatter of predicted against actual values, with the diagonal of a perfect model."""
    true, pred = _points(y_true, y_pred)
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(true, pred, s=12, alpha=0.6, edgecolors="none")
    if true.size:
        low = float(min(true.min(), pred.min()))
        high = float(max(true.max(), pred.max()))
        ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=0.8,
                label="perfect")
        ax.legend(loc="upper left")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title(title)
    return _png(fig)


def residuals_plot(y_true: Any, y_pred: Any, *, title: str) -> bytes:
    """A PNG scatter of the residuals (actual - predicted) against the predicted values."""
    true, pred = _points(y_true, y_pred)
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(pred, true - pred, s=12, alpha=0.6, edgecolors="none")
    ax.axhline(0.0, linestyle="--", color="grey", linewidth=0.8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (actual - predicted)")
    ax.set_title(title)
    return _png(fig)


def regression_images(y_true: Any, y_pred: Any, *, split: str = "test") -> dict[str, bytes]:
    """The regression plots of one split, titled as the evaluate step's ``images`` are.

    >>> sorted(regression_images([1.0, 2.0, 3.0], [1.1, 1.9, 3.2]))
    ['predicted vs actual (test)', 'residuals (test)']
    """
    return {
        f"predicted vs actual ({split})": predicted_vs_actual_plot(
            y_true, y_pred, title=f"{split} split"),
        f"residuals ({split})": residuals_plot(y_true, y_pred, title=f"{split} split"),
    }
