"""Score a registered version on the hold-out set: loaded through tracking, scored by modeling.

The metrics come from :func:`conveyor.modeling.metrics.label_metrics`, the same code that
computes a pipeline's ``test_*`` metrics (macro-averaged here, because candidates of one
registered model may disagree on nothing but their labels).
"""

from __future__ import annotations

from typing import Any

from conveyor.modeling.metrics import (
    classification_metrics,
    label_metrics,
    regression_metrics,
    value_metrics,
)
from conveyor.promotion.decision import METRICS, CandidateScore
from conveyor.promotion.holdout import Holdout
from conveyor.spec.models import REGRESSION_METRICS
from conveyor.tracking import Tracker, one_line
from conveyor.tracking.registry import (
    VersionRefusedError,
    load_served_version,
    load_verified_version,
)

__all__ = ["check_batch", "score_on_split", "score_version"]

def _load(tracker: Tracker, model: str, version: Any, role: str) -> tuple[CandidateScore, Any]:
    """A ``refused`` score for ``version`` and the version loaded after its digest check, or
    ``None`` with the reason on the score when it cannot be verified or loaded."""
    result = CandidateScore(version=str(version.version), role=role, status="refused",
                            config=dict(version.tags or {}).get("conveyor.config.name", ""))
    try:
        return result, load_verified_version(tracker, model, version)
    except VersionRefusedError as exc:
        result.reason = str(exc)
        return result, None


def score_version(tracker: Tracker, model: str, version: Any, holdout: Holdout,
                  role: str, *, task: str = "classification") -> CandidateScore:
    """Score one version; a version that cannot be verified, loaded or run is ``refused``.

    Args:
        tracker: the MLflow connection.
        model: the registered model.
        version: the MLflow model version.
        holdout: the rows to score on.
        role: ``production`` or ``candidate``.
        task: ``regression`` scores rmse, mae, r2 and mape of the predicted values.
    """
    result, loaded = _load(tracker, model, version, role)
    if loaded is None:
        return result
    try:
        predictions = as_array(loaded.predict(holdout.X))
    except Exception as exc:  # noqa: BLE001 - a model that cannot predict is refused
        result.reason = f"cannot load or predict: {one_line(exc)}"
        return result
    if len(predictions) != len(holdout.X):
        result.reason = f"returned {len(predictions)} predictions for {len(holdout.X)} rows"
        return result
    result.predictions = predictions
    if task == "regression":
        try:
            result.scores = value_metrics(holdout.y, predictions, METRICS)
        except (TypeError, ValueError) as exc:  # labels where numbers were expected
            result.reason = f"predictions are not numbers: {one_line(exc)}"
            return result
    else:
        result.scores = label_metrics(holdout.y, predictions, [
            m for m in METRICS if m in ("accuracy", "f1", "precision", "recall")])
    result.status = "scored"
    return result


def score_on_split(tracker: Tracker, model: str, version: Any, holdout: Holdout, *,
                   role: str, metrics: list[str], positive: Any,
                   split: str = "test") -> CandidateScore:
    """Score one version on a pipeline run's own rows, as that run's ``evaluate`` scored its
    model: the same function (:func:`~conveyor.modeling.metrics.classification_metrics`), the
    same metric names (``test_f1``), the same positive label, so the two compare.

    The version is verified and loaded as :func:`score_version` does (digest first); one
    that cannot be verified, loaded or run on these rows is ``refused`` with the reason.

    Args:
        tracker: the MLflow connection.
        model: the registered model.
        version: the MLflow model version (the champion).
        holdout: the run's test rows.
        role: recorded on the score (``production``).
        metrics: the metric names the run's evaluate computes.
        positive: the positive label of binary metrics, or ``None`` for macro averages.
        split: the prefix of the names (``test``).
    """
    result, loaded = _load(tracker, model, version, role)
    if loaded is None:
        return result
    try:
        raw = loaded.get_raw_model()  # the fitted pipeline: probabilities for roc_auc
        if metrics and all(m in REGRESSION_METRICS for m in metrics):  # a regressor (ADR 0038)
            result.scores = regression_metrics(raw, holdout.X, holdout.y, split=split,
                                               metrics=list(metrics))
        else:
            result.scores = classification_metrics(raw, holdout.X, holdout.y, split=split,
                                                    metrics=list(metrics), positive=positive)
        result.predictions = as_array(raw.predict(holdout.X))
    except Exception as exc:  # noqa: BLE001 - a model that cannot score these rows is refused
        result.reason = f"cannot predict this run's {split} rows: {one_line(exc)}"
        result.scores = {}
        return result
    result.status = "scored"
    return result


def check_batch(tracker: Tracker, model: str, chosen: CandidateScore, holdout: Holdout,
                rows: int) -> str:
    """Load the chosen version as a client would and predict a check batch; '' if it passes.

    The predictions must equal those it was scored with.
    """
    try:
        loaded = load_served_version(tracker, model, chosen.version)
        got = as_array(loaded.predict(holdout.X.iloc[:rows]))
    except VersionRefusedError as exc:
        return f"check batch: {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure refuses the version
        return f"check batch: loading from the registry failed: {one_line(exc)}"
    expected = chosen.predictions[:rows]
    if len(got) != len(expected) or any(not _same(a, b) for a, b in zip(got, expected,
                                                                         strict=False)):
        return "check batch: predictions from the registry differ from those scored"
    return ""


def as_array(predictions: Any) -> Any:
    """Predictions as a flat numpy array (a one-column frame becomes a vector)."""
    import numpy as np

    values = getattr(predictions, "to_numpy", None)
    array = values() if callable(values) else np.asarray(predictions)
    return array.ravel() if array.ndim > 1 and array.shape[1] == 1 else array



def _same(a: Any, b: Any) -> bool:
    """The same prediction: equal labels, or equal numbers to rounding (a regressor's)."""
    if str(a) == str(b):
        return True
    try:
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
    except (TypeError, ValueError):
        return False
