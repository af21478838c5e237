"""The evaluation's plots as PNG bytes: confusion matrix, ROC and precision-recall curves,
calibration, permutation feature importance, the decision threshold's curve.

matplotlib is imported when a plot is drawn (never with the module) and only through its
object API on the Agg backend: no pyplot, no global state, no GUI. Curves are drawn from
what :mod:`conveyor.modeling.metrics` computed where a number is shown (the AUC in a legend
is the run's metric, not a second computation).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = ["calibration_plot", "confusion_plot", "importance_plot", "permutation_importance",
           "pr_plot", "roc_plot", "threshold_plot"]

_BLUE, _GREY, _ORANGE = "#2563eb", "#9ca3af", "#ea580c"
#: bounds of the permutation importance: rows of the test split used, repeats per feature
IMPORTANCE_MAX_ROWS = 1000
IMPORTANCE_MAX_FEATURES = 15
#: about this many scorings of the model in all (each column shuffled ``repeats`` times)
IMPORTANCE_BUDGET = 100


def _axes(title: str, *, size: tuple[float, float] = (4.4, 3.6),
          left: float = 0.15) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110)
    # fixed margins, not bbox_inches="tight": that draws every figure twice (half its cost)
    fig.subplots_adjust(left=left, right=0.97, bottom=0.8 / size[1], top=1 - 0.4 / size[1])
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.25, linewidth=0.6)
    return fig, ax


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    # zlib level 1: a little larger, clearly faster than the default level 6
    fig.savefig(buffer, format="png", pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def confusion_plot(confusion: dict[str, Any], *, title: str) -> bytes:
    """The confusion matrix (rows: true label, columns: predicted), counts in the cells."""
    fig, ax = _axes(title)
    ax.grid(False)
    matrix = np.asarray(confusion["matrix"])
    labels = [str(v) for v in confusion["labels"]]
    ax.imshow(matrix, cmap="Blues")
    top = matrix.max() or 1
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=11,
                color="white" if value > top / 2 else "#111827")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted", fontsize=9)
    ax.set_ylabel("true", fontsize=9)
    return _png(fig)


def roc_plot(y_true: Any, scores: Any, *, positive: Any, title: str,
             auc: float | None = None) -> bytes:
    """The ROC curve of a binary classifier's positive-class scores."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(y_true) == positive, scores)
    fig, ax = _axes(title)
    ax.plot(fpr, tpr, color=_BLUE, label=f"ROC AUC = {auc:.3f}" if auc is not None else "ROC")
    ax.plot([0, 1], [0, 1], linestyle="--", color=_GREY, linewidth=0.8, label="chance")
    ax.set_xlabel("false positive rate", fontsize=9)
    ax.set_ylabel("true positive rate", fontsize=9)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return _png(fig)


def pr_plot(y_true: Any, scores: Any, *, positive: Any, title: str,
            auc: float | None = None) -> bytes:
    """The precision-recall curve, with the positive rate (a random model's precision)."""
    from sklearn.metrics import precision_recall_curve

    hits = np.asarray(y_true) == positive
    precision, recall, _ = precision_recall_curve(hits, scores)
    fig, ax = _axes(title)
    ax.step(recall, precision, where="post", color=_BLUE,
            label=f"PR AUC = {auc:.3f}" if auc is not None else "PR")
    ax.axhline(hits.mean(), linestyle="--", color=_GREY, linewidth=0.8,
               label=f"positive rate {hits.mean():.2f}")
    ax.set_xlabel("recall", fontsize=9)
    ax.set_ylabel("precision", fontsize=9)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    return _png(fig)


def calibration_plot(y_true: Any, scores: Any, *, positive: Any, title: str) -> bytes:
    """Mean predicted probability against the observed positive rate, per quantile bin."""
    from sklearn.calibration import calibration_curve

    hits = np.asarray(y_true) == positive
    bins = int(min(10, max(2, hits.size // 10)))
    observed, predicted = calibration_curve(hits, np.clip(scores, 0, 1), n_bins=bins,
                                            strategy="quantile")
    fig, ax = _axes(title)
    ax.plot([0, 1], [0, 1], linestyle="--", color=_GREY, linewidth=0.8, label="perfect")
    ax.plot(predicted, observed, marker="o", markersize=4, color=_BLUE, label="model")
    ax.set_xlabel("mean predicted probability", fontsize=9)
    ax.set_ylabel("observed positive rate", fontsize=9)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return _png(fig)


def permutation_importance(model: Any, X: Any, y: Any, *, metric: str, positive: Any,
                           seed: int) -> dict[str, Any]:
    """Permutation importance of each input column on (X, y): the drop in ``metric`` when
    the column is shuffled, bounded in time.

    At most :data:`IMPORTANCE_MAX_ROWS` rows (a seeded sample), and fewer repeats when there
    are many columns (about :data:`IMPORTANCE_BUDGET` shuffled copies), all predicted in a
    few large ``predict`` calls: scikit-learn's own loop predicts once per copy, and a
    pipeline's fixed cost per call (milliseconds) made that most of the evaluate step.

    Returns:
        ``features`` (largest mean drop first), ``mean``, ``std``, ``rows``, ``repeats``,
        ``metric``.
    """
    import pandas as pd

    from conveyor.modeling.metrics import label_metric_rows

    if len(X) > IMPORTANCE_MAX_ROWS:
        X = X.sample(IMPORTANCE_MAX_ROWS, random_state=seed)
        y = y.loc[X.index]
    X = X.reset_index(drop=True)
    y_true = np.asarray(y)
    rows, columns = len(X), list(X.columns)
    repeats = int(max(1, min(5, IMPORTANCE_BUDGET // max(1, len(columns)))))
    rng = np.random.default_rng(seed)

    base = label_metric_rows(y_true, [np.asarray(model.predict(X))], metric,
                             positive=positive)[0]
    drops = np.empty((len(columns), repeats))
    per_call = max(1, 50_000 // max(1, rows))  # shuffled copies per predict call
    jobs = [(i, r) for i in range(len(columns)) for r in range(repeats)]
    for start in range(0, len(jobs), per_call):
        batch = jobs[start:start + per_call]
        copies = []
        for i, _ in batch:
            copy = X.copy()
            copy[columns[i]] = rng.permutation(copy[columns[i]].to_numpy())
            copies.append(copy)
        predicted = np.asarray(model.predict(pd.concat(copies, ignore_index=True)))
        scores = label_metric_rows(y_true, predicted.reshape(len(batch), rows), metric,
                                   positive=positive)
        for (i, r), value in zip(batch, scores, strict=True):
            drops[i, r] = base - value
    mean, std = drops.mean(axis=1), drops.std(axis=1)
    order = np.argsort(-mean, kind="stable")
    return {"features": [str(columns[i]) for i in order],
            "mean": [float(mean[i]) for i in order], "std": [float(std[i]) for i in order],
            "rows": rows, "repeats": repeats, "metric": metric}


def importance_plot(importance: dict[str, Any], *, title: str) -> bytes:
    """Horizontal bars of the largest permutation importances (mean ± std)."""
    n = min(IMPORTANCE_MAX_FEATURES, len(importance["features"]))
    names = importance["features"][:n][::-1]
    mean = importance["mean"][:n][::-1]
    std = importance["std"][:n][::-1]
    longest = max((len(name) for name in names), default=1)
    fig, ax = _axes(title, size=(4.4, max(2.4, 0.24 * n + 1.2)),
                    left=min(0.5, 0.08 + 0.013 * longest))
    ax.barh(range(n), mean, xerr=std, color=_BLUE, alpha=0.85, error_kw={"linewidth": 0.7})
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel(f"drop in score when shuffled ({importance['rows']} rows, "
                  f"{importance['repeats']} repeats)", fontsize=8)
    ax.axvline(0, color=_GREY, linewidth=0.8)
    return _png(fig)


def threshold_plot(decided: dict[str, Any], *, title: str) -> bytes:
    """The tuned metric over the thresholds tried, the chosen one and 0.5 marked."""
    curve = decided["curve"]
    fig, ax = _axes(title)
    ax.plot(curve["thresholds"], curve["scores"], color=_BLUE,
            label=f"{decided['metric']} on {decided['cv']} folds of train")
    ax.axvline(decided["threshold"], color=_ORANGE, linewidth=1.2,
               label=f"chosen {decided['threshold']:.2f}")
    ax.axvline(0.5, color=_GREY, linestyle="--", linewidth=0.8, label="default 0.5")
    ax.set_xlabel("threshold of the positive class's probability", fontsize=9)
    ax.set_ylabel(decided["metric"], fontsize=9)
    ax.legend(loc="lower center", fontsize=8, frameon=False)
    return _png(fig)
