"""The decision threshold of a binary classifier: tuned on folds, saved inside the model.

A threshold is part of the model, not of its evaluation: the fitted pipeline is wrapped in
scikit-learn's ``FixedThresholdClassifier``, so every consumer that loads the saved model
(``conveyor serve``, ``conveyor score``, promotion, the reference profile) gets the same
labels. Consumers that compute labels from ``predict_proba`` themselves (the server, batch
scoring) ask :func:`labels_from_proba` instead of taking the arg-max.

The tuned value comes from out-of-fold probabilities of the *training* split: the test rows
never choose it (docs/decisions/0041-evaluation-report-and-threshold.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conveyor.errors import DataError

__all__ = ["decision_threshold", "inner_model", "label_index", "labels_from_proba",
           "threshold_model",
           "tune_threshold"]

#: the thresholds tried: a fixed grid, so the same folds give the same choice
GRID = np.round(np.linspace(0.02, 0.98, 49), 2)


def tune_threshold(pipeline: Any, X: Any, y: Any, *, positive: Any, metric: str, cv: int,
                   seed: int) -> dict[str, Any]:
    """The threshold of the positive class's probability that maximises ``metric`` on
    out-of-fold predictions of (X, y), the training rows.

    Args:
        pipeline: the estimator whose hyper-parameters are final (fitted or not; it is cloned
            per fold).
        X: training features.
        y: training target (two classes).
        positive: the positive label.
        metric: a label metric (f1, precision, recall, accuracy, balanced_accuracy,
            specificity).
        cv: the number of stratified folds.
        seed: the folds' seed.

    Returns:
        ``threshold``, ``metric``, ``cv``, ``score`` (at the threshold), ``default_score``
        (at 0.5) and ``curve``: ``thresholds`` and ``scores`` over the grid tried.

    Raises:
        DataError: the folds cannot be made (a class with fewer rows than folds).
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from conveyor.modeling.lean_median import lean
    from conveyor.modeling.metrics import label_metrics

    labels, counts = np.unique(np.asarray(y), return_counts=True)
    if counts.min() < cv:  # a fold would train without that class
        raise DataError(f"model.threshold: cannot tune on {cv} folds of the training split: "
                        f"class {labels[counts.argmin()]!r} has {counts.min()} rows there; "
                        "lower model.threshold.cv or fix the threshold")
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    per_fold = clone(pipeline)
    lean(per_fold)  # its fits are thrown away: the lean median fit needs no settling
    try:
        proba = cross_val_predict(per_fold, X, y, cv=folds, method="predict_proba")
    except ValueError as exc:
        raise DataError(f"model.threshold: cannot tune on {cv} folds of the training split: "
                        f"{exc}") from None
    classes = list(np.unique(y))  # cross_val_predict orders the columns so
    negative = next(c for c in classes if c != positive)
    scores = proba[:, classes.index(positive)]
    y_true = np.asarray(y)

    def at(threshold: float) -> float:
        labels = np.where(scores >= threshold, positive, negative)
        return label_metrics(y_true, labels, [metric], positive=positive)[metric]

    curve = [at(float(t)) for t in GRID]
    best = max(curve)
    # ties: the threshold nearest 0.5, the one least moved from the model's own decision
    chosen = min((abs(float(t) - 0.5), float(t)) for t, s in zip(GRID, curve, strict=True)
                 if s == best)[1]
    return {"threshold": chosen, "metric": metric, "cv": cv, "score": best,
            "default_score": at(0.5),
            "curve": {"thresholds": [float(t) for t in GRID], "scores": curve}}


def threshold_model(model: Any, threshold: float, positive: Any) -> Any:
    """``model`` (fitted) predicting ``positive`` when its probability is >= ``threshold``.

    Raises:
        DataError: the model has no ``predict_proba``.
    """
    from sklearn.model_selection import FixedThresholdClassifier

    if not hasattr(model, "predict_proba"):
        final = model.steps[-1][1] if hasattr(model, "steps") else model
        raise DataError(f"model.threshold: {type(final).__name__} has no predict_proba; "
                        "a threshold applies to probabilities")
    # not fitted again: FixedThresholdClassifier predicts with a fitted ``estimator`` as is
    return FixedThresholdClassifier(model, threshold=float(threshold), pos_label=positive,
                                    response_method="predict_proba")


def decision_threshold(estimator: Any) -> tuple[float, Any] | None:
    """``(threshold, positive label)`` of a model saved with a threshold, else ``None``."""
    from sklearn.model_selection import FixedThresholdClassifier

    if isinstance(estimator, FixedThresholdClassifier) and estimator.threshold != "auto":
        positive = estimator.pos_label
        return float(estimator.threshold), (positive.item() if hasattr(positive, "item")
                                            else positive)
    return None


def inner_model(estimator: Any) -> Any:
    """The fitted pipeline inside a threshold wrapper (the estimator itself otherwise)."""
    if decision_threshold(estimator) is None:
        return estimator
    return getattr(estimator, "estimator_", estimator.estimator)


def label_index(proba: Any, classes: Any, decided: tuple[float, Any] | None) -> np.ndarray:
    """The column of ``classes`` each row of ``proba`` is labelled with: the arg-max, or,
    with ``decided`` (from :func:`decision_threshold`), the positive class where its
    probability is >= the threshold and the other class elsewhere.

    >>> label_index(np.array([[0.6, 0.4], [0.9, 0.1]]), ["B", "M"], (0.3, "M")).tolist()
    [1, 0]
    """
    proba = np.asarray(proba)
    if decided is None or len(classes) != 2:
        return proba.argmax(axis=1)
    threshold, positive = decided
    index = [str(c) for c in classes].index(str(positive))
    return np.where(proba[:, index] >= threshold, index, 1 - index)


def labels_from_proba(estimator: Any, proba: Any, classes: Any) -> np.ndarray:
    """The labels ``estimator.predict`` gives for probabilities ``proba`` (columns in
    ``classes`` order): the arg-max, or the saved threshold of the positive class.

    >>> labels_from_proba(None, np.array([[0.6, 0.4]]), ["B", "M"]).tolist()
    ['B']
    """
    decided = decision_threshold(estimator) if estimator is not None else None
    return np.asarray(classes, dtype=object)[label_index(proba, classes, decided)]
