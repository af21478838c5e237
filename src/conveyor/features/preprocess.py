"""Preprocessing from the spec: one ColumnTransformer, fitted on the training split only and
saved inside the model, so serving applies exactly what training did."""

from __future__ import annotations

from typing import Any

from conveyor.spec.models import PreprocessSpec

__all__ = ["build_model_pipeline", "build_preprocessor", "feature_types"]


def feature_types(frame: Any, features: Any, *, exclude: set[str]) -> dict[str, str]:
    """Decide each feature's kind (``numeric``/``categorical``) from the spec and the data.

    Args:
        frame: the validated table.
        features: ``"infer"``, a list of names, or a mapping name -> kind (schema.features).
        exclude: target, id and dropped columns.
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if isinstance(features, dict):
        return dict(features)
    names = [c for c in frame.columns if c not in exclude] if features == "infer" else features
    return {
        name: "numeric"
        if is_numeric_dtype(frame[name]) and not is_bool_dtype(frame[name])
        else "categorical"
        for name in names
    }


def build_preprocessor(types: dict[str, str], spec: PreprocessSpec) -> Any:
    """The ColumnTransformer for ``types`` (name -> kind)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        MinMaxScaler,
        OneHotEncoder,
        OrdinalEncoder,
        RobustScaler,
        StandardScaler,
    )

    numeric = [n for n, kind in types.items() if kind == "numeric"]
    categorical = [n for n, kind in types.items() if kind == "categorical"]
    parts = []
    if numeric:
        steps: list[tuple[str, Any]] = []
        if spec.numeric.impute != "none":
            steps.append(("impute", SimpleImputer(strategy=spec.numeric.impute)))
        scaler = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}
        if spec.numeric.scale != "none":
            steps.append(("scale", scaler[spec.numeric.scale]()))
        parts.append(("numeric", Pipeline(steps) if steps else "passthrough", numeric))
    if categorical:
        steps = []
        if spec.categorical.impute != "none":
            steps.append(("impute", SimpleImputer(
                strategy=spec.categorical.impute, fill_value="missing")))
        if spec.categorical.encode == "onehot":
            steps.append(("encode", OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                max_categories=spec.categorical.max_categories, sparse_output=False)))
        else:
            steps.append(("encode", OrdinalEncoder(
                handle_unknown="use_encoded_value", unknown_value=-1,
                max_categories=spec.categorical.max_categories)))
        parts.append(("categorical", Pipeline(steps), categorical))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def build_model_pipeline(types: dict[str, str], spec: PreprocessSpec, estimator: Any) -> Any:
    """Preprocessing and estimator as one sklearn Pipeline (the thing that is saved)."""
    from sklearn.pipeline import Pipeline

    return Pipeline([("preprocess", build_preprocessor(types, spec)), ("model", estimator)])
