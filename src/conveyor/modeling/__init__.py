"""Estimators, metrics, plots and reports."""

from conveyor.modeling.estimators import (
    ALLOWED_MODULE_PREFIXES,
    SHORT_NAMES,
    build_estimator,
    check_params,
    resolve_estimator,
)
from conveyor.modeling.metrics import classification_metrics, confusion, positive_scores, scorer

__all__ = [
    "ALLOWED_MODULE_PREFIXES",
    "SHORT_NAMES",
    "build_estimator",
    "check_params",
    "classification_metrics",
    "confusion",
    "positive_scores",
    "resolve_estimator",
    "scorer",
]
