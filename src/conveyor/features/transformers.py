"""The scikit-learn transformers Conveyor puts inside a model: derived columns and outlier
clipping. Both hold plain data only (text, numbers, arrays), so a model file holds no code
and skops can check every type it loads."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["DeriveColumns", "OutlierClipper"]


class DeriveColumns(TransformerMixin, BaseEstimator):
    """Add the spec's derived columns (``derive:``) to a DataFrame: the model's first step.

    Args:
        derive: column name -> expression text, or ``{"function": path, "columns": [...]}``.
    """

    def __init__(self, derive: dict[str, Any] | None = None):
        self.derive = derive

    def fit(self, X: Any, y: Any = None) -> DeriveColumns:
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: Any) -> Any:
        import pandas as pd

        from conveyor.features.derive import derive_frame

        check_is_fitted(self)
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(X, columns=list(self.feature_names_in_))
        return derive_frame(X, self.derive or {}, source="model input")

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        return np.asarray([*self.feature_names_in_, *(self.derive or {})], dtype=object)


class OutlierClipper(TransformerMixin, BaseEstimator):
    """Clip each column to bounds learnt on the training rows.

    ``iqr``: [Q1 - factor·IQR, Q3 + factor·IQR] (factor 1.5 by default); ``zscore``:
    mean ± factor·std (factor 3). Missing values stay missing.

    >>> clipper = OutlierClipper("iqr").fit(np.array([[1.0], [2.0], [3.0], [4.0], [100.0]]))
    >>> clipper.transform(np.array([[100.0], [-50.0]])).ravel().tolist()
    [7.0, -1.0]
    """

    def __init__(self, method: str = "iqr", factor: float | None = None):
        self.method = method
        self.factor = factor

    def fit(self, X: Any, y: Any = None) -> OutlierClipper:
        values = np.asarray(X, dtype=float)
        if values.ndim == 1:
            values = values.reshape(-1, 1)
        self.n_features_in_ = values.shape[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        if self.method == "iqr":
            factor = 1.5 if self.factor is None else self.factor
            q1, q3 = np.nanpercentile(values, [25, 75], axis=0)
            self.lower_, self.upper_ = q1 - factor * (q3 - q1), q3 + factor * (q3 - q1)
        elif self.method == "zscore":
            factor = 3.0 if self.factor is None else self.factor
            mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
            self.lower_, self.upper_ = mean - factor * std, mean + factor * std
        else:
            raise ValueError(f"unknown clipping method {self.method!r} (iqr, zscore)")
        return self

    def transform(self, X: Any) -> Any:
        check_is_fitted(self, "lower_")
        values = np.asarray(X, dtype=float)
        return np.clip(values.reshape(-1, self.n_features_in_), self.lower_, self.upper_)

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        names = getattr(self, "feature_names_in_", None)
        return names if names is not None else np.asarray(
            [f"x{i}" for i in range(self.n_features_in_)], dtype=object)
