"""Classification and regression metrics, named ``<split>_<metric>``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["LABEL_METRICS", "SCORE_METRICS", "classification_metrics", "confusion",
           "label_metric_rows", "label_metrics", "positive_scores", "pr_auc_score",
           "regression_metrics", "scorer", "scorer_sign", "specificity_score", "value_metrics"]


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


LABEL_METRICS = ("accuracy", "precision", "recall", "f1")
#: the metrics that need the model's scores or probabilities, not only its labels
SCORE_METRICS = frozenset({"roc_auc", "pr_auc", "log_loss"})


def label_metrics(
    y_true: Any, y_pred: Any, metrics: Iterable[str], *, positive: Any = None,
    scores: np.ndarray | None = None, labels: list[Any] | None = None,
) -> dict[str, float]:
    """Compute named metrics from true and predicted labels: the one place a metric is computed.

    Args:
        y_true: the true labels.
        y_pred: the predicted labels.
        metrics: names: accuracy, precision, recall, f1, specificity, balanced_accuracy,
            and (with ``scores``) roc_auc, pr_auc and log_loss.
        positive: the positive class of a binary problem; ``None`` macro-averages precision,
            recall and f1 over the classes.
        scores: the positive class's scores (binary) or the probability matrix (multiclass),
            as :func:`positive_scores` returns them; without them roc_auc and log_loss are
            left out.
        labels: the model's classes, in the order of the probability matrix's columns.

    Returns:
        metric name -> value; a metric that is undefined here (no scores, one class for
        roc_auc) is left out.

    >>> label_metrics(["a", "b", "b"], ["a", "b", "a"], ["accuracy", "f1"])
    {'accuracy': 0.6666666666666666, 'f1': 0.6666666666666666}
    """
    from sklearn import metrics as m

    binary = positive is not None
    average: dict[str, Any] = {"pos_label": positive, "average": "binary"} if binary else {
        "average": "macro"}
    out: dict[str, float] = {}
    for name in metrics:
        if name == "accuracy":
            value = m.accuracy_score(y_true, y_pred)
        elif name in ("precision", "recall", "f1"):
            fn = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}[name]
            value = fn(y_true, y_pred, zero_division=0, **average)
        elif name == "specificity":
            value = specificity_score(y_true, y_pred, positive=positive)
        elif name == "balanced_accuracy":
            value = m.balanced_accuracy_score(y_true, y_pred)
        elif scores is None:
            continue  # no scores from this estimator: AUC and log loss are undefined
        elif name == "roc_auc":
            if len(np.unique(y_true)) < 2:
                continue
            value = (m.roc_auc_score(np.asarray(y_true) == positive, scores) if binary else
                     m.roc_auc_score(y_true, scores, multi_class="ovr", average="macro",
                                     labels=labels))
        elif name == "pr_auc":
            if len(np.unique(y_true)) < 2:
                continue
            value = pr_auc_score(y_true, scores, positive=positive, labels=labels)
        elif name == "log_loss":
            if binary:
                proba = np.column_stack([1 - scores, scores]) if scores.ndim == 1 else scores
                value = m.log_loss(np.asarray(y_true) == positive,
                                   np.clip(proba, 1e-15, 1 - 1e-15))
            else:
                value = m.log_loss(y_true, scores, labels=labels)
        else:  # pragma: no cover - the spec's Literal forbids other names
            raise ValueError(name)
        out[name] = float(value)
    return out


def specificity_score(y_true: Any, y_pred: Any, *, positive: Any = None) -> float:
    """The true negative rate TN / (TN + FP): of the positive class (binary), or the
    macro average over the classes, each taken as the positive one in turn (multiclass).

    A class that no row lacks has no negatives: its specificity is 0, as
    ``zero_division=0`` makes precision and recall.

    >>> specificity_score(["M", "B", "B", "B"], ["M", "M", "B", "B"], positive="M")
    0.6666666666666666
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)

    def one(label: Any) -> float:
        negative = y_true != label
        return float((y_pred[negative] != label).mean()) if negative.any() else 0.0

    if positive is not None:
        return one(positive)
    return float(np.mean([one(label) for label in np.unique(y_true)]))


def pr_auc_score(y_true: Any, scores: Any, *, positive: Any = None,
                 labels: list[Any] | None = None) -> float:
    """The area under the precision-recall curve, as average precision (the step-wise
    integral; no optimistic trapezoids): of the positive class's scores (binary), or the
    macro average over the classes of a probability matrix (multiclass, one-vs-rest).

    >>> pr_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], positive=1)
    0.8333333333333333
    """
    from sklearn.metrics import average_precision_score
    from sklearn.preprocessing import label_binarize

    y_true, scores = np.asarray(y_true), np.asarray(scores)
    if positive is not None:
        return float(average_precision_score(y_true == positive, scores))
    classes = list(labels) if labels is not None else sorted(np.unique(y_true))
    onehot = label_binarize(y_true, classes=classes)
    present = onehot.sum(axis=0) > 0  # a class without rows has no precision-recall curve
    return float(average_precision_score(onehot[:, present], scores[:, present],
                                         average="macro"))


def label_metric_rows(y_true: Any, predictions: Any, metric: str, *,
                      positive: Any = None) -> np.ndarray:
    """``metric`` of each row of ``predictions`` (k label vectors, shape ``(k, n)``) against
    ``y_true``, at once: what permutation importance needs for its shuffled copies, where one
    :func:`label_metrics` call per copy (scikit-learn's input checks) cost more than the
    predictions. ``accuracy`` for any target; ``precision``, ``recall``, ``f1`` and
    ``specificity`` of ``positive`` (binary, zero where undefined, as :func:`label_metrics`).

    >>> label_metric_rows(["M", "B"], [["M", "B"], ["B", "B"]], "f1", positive="M").tolist()
    [1.0, 0.0]
    """
    y_true = np.asarray(y_true)
    predicted = np.asarray(predictions)
    if metric == "accuracy":
        return (predicted == y_true).mean(axis=1)
    if positive is None or metric not in ("precision", "recall", "f1", "specificity"):
        raise ValueError(f"label_metric_rows: {metric!r} needs label_metrics")
    truth = y_true == positive
    said = predicted == positive
    tp = (said & truth).sum(axis=1).astype(float)
    fp = (said & ~truth).sum(axis=1).astype(float)
    fn = (~said & truth).sum(axis=1).astype(float)
    tn = (~said & ~truth).sum(axis=1).astype(float)

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)

    return {"precision": lambda: ratio(tp, tp + fp), "recall": lambda: ratio(tp, tp + fn),
            "f1": lambda: ratio(2 * tp, 2 * tp + fp + fn),
            "specificity": lambda: ratio(tn, tn + fp)}[metric]()


def classification_metrics(
    model: Any, X: Any, y: Any, *, split: str, metrics: list[str], positive: Any
) -> dict[str, float]:
    """Compute ``metrics`` on (X, y); binary metrics use ``positive``, multiclass use macro."""
    needs_scores = any(name in SCORE_METRICS for name in metrics)
    scores = positive_scores(model, X, positive) if needs_scores else None
    values = label_metrics(y, model.predict(X), metrics, positive=positive, scores=scores,
                           labels=list(model.classes_))
    return {f"{split}_{name}": value for name, value in values.items()}


def confusion(model: Any, X: Any, y: Any) -> dict[str, Any]:
    """The confusion matrix with its labels (rows: true, columns: predicted)."""
    from sklearn.metrics import confusion_matrix

    labels = list(model.classes_)
    matrix = confusion_matrix(y, model.predict(X), labels=labels)
    return {"labels": [_plain(v) for v in labels], "matrix": matrix.tolist()}


def scorer(metric: str, positive: Any) -> Any:
    """An sklearn scorer for tuning and cross-validation.

    A regression metric's scorer is sklearn's negated one (``neg_root_mean_squared_error``:
    larger is better for every scorer); :func:`scorer_sign` turns its scores back.
    """
    from sklearn.metrics import f1_score, make_scorer, precision_score, recall_score

    if metric in _REGRESSION_SCORERS:
        return _REGRESSION_SCORERS[metric]
    if metric == "specificity":
        return make_scorer(specificity_score, positive=positive)
    if metric == "pr_auc":
        if positive is None:
            return make_scorer(_pr_auc_of_proba, response_method="predict_proba")
        # with ``pos_label`` the scorer hands over the positive class's scores
        return make_scorer(_pr_auc_of_scores, response_method=("predict_proba",
                                                               "decision_function"),
                           pos_label=positive)
    if positive is None:
        return {"f1": "f1_macro", "precision": "precision_macro", "recall": "recall_macro",
                "roc_auc": "roc_auc_ovr", "log_loss": "neg_log_loss"}.get(metric, metric)
    fns = {"f1": f1_score, "precision": precision_score, "recall": recall_score}
    if metric in fns:
        return make_scorer(fns[metric], pos_label=positive, zero_division=0)
    return {"log_loss": "neg_log_loss"}.get(metric, metric)


def _pr_auc_of_scores(y_true: Any, scores: Any, *, pos_label: Any) -> float:
    return pr_auc_score(y_true, scores, positive=pos_label)


def _pr_auc_of_proba(y_true: Any, proba: Any) -> float:
    # a multiclass scorer gets the probability matrix in sorted-class order (``classes_``)
    return pr_auc_score(y_true, proba, labels=sorted(np.unique(y_true)))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# --------------------------------------------------------------------------- regression
# (issue 11; ADR 0038)

_REGRESSION_SCORERS = {"rmse": "neg_root_mean_squared_error",
                       "mae": "neg_mean_absolute_error", "r2": "r2",
                       "mape": "neg_mean_absolute_percentage_error"}


def scorer_sign(metric: str) -> float:
    """``-1`` where :func:`scorer`'s scores are the metric negated (rmse, mae, mape), else 1.

    >>> scorer_sign("rmse"), scorer_sign("r2"), scorer_sign("f1")
    (-1.0, 1.0, 1.0)
    """
    return -1.0 if _REGRESSION_SCORERS.get(metric, "").startswith("neg_") else 1.0


def value_metrics(y_true: Any, y_pred: Any, metrics: Iterable[str]) -> dict[str, float]:
    """Compute named regression metrics from true and predicted values: the one place a
    regression metric is computed.

    Args:
        y_true: the true values.
        y_pred: the predicted values.
        metrics: names: rmse, mae, r2 and mape (a fraction: 0.25 is 25 %; sklearn's
            ``mean_absolute_percentage_error``, which divides by ``max(|y|, eps)``);
            classification names are left out.

    >>> got = value_metrics([3.0, 5.0, 2.0], [2.0, 5.0, 4.0], ["rmse", "mae", "r2", "mape"])
    >>> {name: round(value, 4) for name, value in got.items()}
    {'rmse': 1.291, 'mae': 1.0, 'r2': -0.0714, 'mape': 0.4444}
    """
    from sklearn import metrics as m

    true = np.asarray(y_true, dtype=float)
    pred = np.asarray(y_pred, dtype=float)
    out: dict[str, float] = {}
    for name in metrics:
        if name == "rmse":
            value = m.root_mean_squared_error(true, pred)
        elif name == "mae":
            value = m.mean_absolute_error(true, pred)
        elif name == "r2":
            if true.size < 2:
                continue  # undefined on one row
            value = m.r2_score(true, pred)
        elif name == "mape":
            value = m.mean_absolute_percentage_error(true, pred)
        else:
            continue
        out[name] = float(value)
    return out


def regression_metrics(model: Any, X: Any, y: Any, *, split: str,
                       metrics: list[str]) -> dict[str, float]:
    """Compute ``metrics`` of a fitted regressor on (X, y), named ``<split>_<metric>``."""
    values = value_metrics(y, model.predict(X), metrics)
    return {f"{split}_{name}": value for name, value in values.items()}
