"""Scoring a fitted model on its train and test rows: the rule the evaluate step and the lab share.

The metrics themselves are computed by :func:`conveyor.modeling.metrics.classification_metrics`
(the one place a metric is computed); this module decides how it is called, so that a
pipeline run and a lab version of the same estimator on the same split report the same
numbers under the same names (``train_<metric>``, ``test_<metric>``).
"""

from __future__ import annotations

from typing import Any

from conveyor.modeling.training import positive_label

__all__ = ["score_model", "scoring_positive"]


def scoring_positive(label: Any, y: Any) -> Any:
    """The positive label binary metrics use on target ``y``, or ``None`` for macro averages.

    A label is used only when it is given and ``y`` has exactly two classes; it is returned in
    the target's own type (see :func:`~conveyor.modeling.training.positive_label`).

    >>> import pandas as pd
    >>> scoring_positive("M", pd.Series(["B", "M", "B"]))
    'M'
    >>> scoring_positive("1", pd.Series([0, 1, 2])) is None  # multiclass: macro
    True
    >>> scoring_positive(None, pd.Series([0, 1])) is None   # no label: macro
    True
    """
    positive = positive_label(label, y)
    return positive if positive is not None and y.nunique() == 2 else None


def score_model(model: Any, train: tuple[Any, Any], test: tuple[Any, Any], *,
                metrics: list[str], positive: Any,
                task: str = "classification") -> dict[str, float]:
    """``train_<metric>`` and ``test_<metric>`` of a fitted model for every name in ``metrics``.

    Args:
        model: a fitted classifier (``predict``; ``predict_proba`` or ``decision_function``
            for ``roc_auc`` and ``log_loss``).
        train: the training rows ``(X, y)``.
        test: the test rows ``(X, y)``.
        metrics: metric names (``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc``,
            ``log_loss``).
        positive: from :func:`scoring_positive`: binary metrics of this label, or ``None``
            for macro averages.
        task: ``regression`` scores a regressor's values (rmse, mae, r2, mape).
    """
    from conveyor.modeling.metrics import classification_metrics, regression_metrics

    if task == "regression":
        return {k: v for split, (X, y) in (("train", train), ("test", test))
                for k, v in regression_metrics(model, X, y, split=split,
                                               metrics=list(metrics)).items()}
    scores: dict[str, float] = {}
    for split, (X, y) in (("train", train), ("test", test)):
        scores.update(classification_metrics(model, X, y, split=split, metrics=list(metrics),
                                              positive=positive))
    return scores
