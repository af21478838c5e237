"""Classification metrics, named ``<split>_<metric>``."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["classification_metrics", "confusion", "positive_scores", "scorer"]


def positive_scores(model: Any, X: Any, positive: Any) -> np.ndarray | None:
    """Scores of the positive class (binary) or the probability matrix (multiclass)."""
    classes = list(model.classes_)
    if hasattr(model, "predict_proba"):
        try:
            proba = model.predict_proba(X)
        except AttributeError:  # e.g. SVC(probability=False)
            proba = None
        if proba is not None:
            return proba[:, classes.index(positive)] if positive is not None else proba
    if positive is not None and hasattr(model, "decision_function"):
        scores = model.decision_function(X)
        return scores if classes.index(positive) == 1 else -scores
    return None


def classification_metrics(
    model: Any, X: Any, y: Any, *, split: str, metrics: list[str], positive: Any
) -> dict[str, float]:
    """Compute ``metrics`` on (X, y); binary metrics use ``positive``, multiclass use macro."""
    from sklearn import metrics as m

    predicted = model.predict(X)
    binary = positive is not None
    average: dict[str, Any] = {"pos_label": positive, "average": "binary"} if binary else {
        "average": "macro"}
    out: dict[str, float] = {}
    for name in metrics:
        if name == "accuracy":
            value = m.accuracy_score(y, predicted)
        elif name in ("precision", "recall", "f1"):
            fn = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}[name]
            value = fn(y, predicted, zero_division=0, **average)
        else:
            scores = positive_scores(model, X, positive)
            if scores is None:
                continue  # no scores from this estimator: AUC and log loss are undefined
            if name == "roc_auc":
                if len(np.unique(y)) < 2:
                    continue
                value = (m.roc_auc_score(y == positive, scores) if binary else
                         m.roc_auc_score(y, scores, multi_class="ovr", average="macro",
                                         labels=list(model.classes_)))
            elif name == "log_loss":
                if binary:
                    proba = np.column_stack([1 - scores, scores]) if scores.ndim == 1 else scores
                    value = m.log_loss(y == positive, np.clip(proba, 1e-15, 1 - 1e-15))
                else:
                    value = m.log_loss(y, scores, labels=list(model.classes_))
            else:  # pragma: no cover - the spec's Literal forbids other names
                raise ValueError(name)
        out[f"{split}_{name}"] = float(value)
    return out


def confusion(model: Any, X: Any, y: Any) -> dict[str, Any]:
    """The confusion matrix with its labels (rows: true, columns: predicted)."""
    from sklearn.metrics import confusion_matrix

    labels = list(model.classes_)
    matrix = confusion_matrix(y, model.predict(X), labels=labels)
    return {"labels": [_plain(v) for v in labels], "matrix": matrix.tolist()}


def scorer(metric: str, positive: Any) -> Any:
    """An sklearn scorer for tuning and cross-validation."""
    from sklearn.metrics import f1_score, make_scorer, precision_score, recall_score

    if positive is None:
        return {"f1": "f1_macro", "precision": "precision_macro", "recall": "recall_macro",
                "roc_auc": "roc_auc_ovr", "log_loss": "neg_log_loss"}.get(metric, metric)
    fns = {"f1": f1_score, "precision": precision_score, "recall": recall_score}
    if metric in fns:
        return make_scorer(fns[metric], pos_label=positive, zero_division=0)
    return {"log_loss": "neg_log_loss"}.get(metric, metric)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
