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


def column_settings(name: str, kind: str, spec: PreprocessSpec) -> tuple[tuple[str, Any], ...]:
    """The effective settings of one column: its kind's section under its own overrides."""
    base = (spec.numeric if kind == "numeric" else spec.categorical).model_dump()
    own = spec.columns.get(name)
    if own is not None:
        base.update({k: v for k, v in own.model_dump().items()
                     if v is not None and k in base})
    return tuple(sorted(base.items()))


def _numeric_steps(cfg: dict[str, Any]) -> list[tuple[str, Any]]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    steps: list[tuple[str, Any]] = []
    if cfg["clip"] != "none":
        from conveyor.features.transformers import OutlierClipper

        steps.append(("clip", OutlierClipper(cfg["clip"], cfg["clip_factor"])))
    if cfg["impute"] != "none":
        extra = {"fill_value": float(cfg["fill_value"])} if cfg["impute"] == "constant" else {}
        steps.append(("impute", SimpleImputer(strategy=cfg["impute"],
                                              add_indicator=cfg["indicator"], **extra)))
    scaler = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}
    if cfg["scale"] != "none":
        steps.append(("scale", scaler[cfg["scale"]]()))
    return steps


def _categorical_steps(cfg: dict[str, Any]) -> list[tuple[str, Any]]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    steps: list[tuple[str, Any]] = []
    if cfg["impute"] != "none":
        steps.append(("impute", SimpleImputer(strategy=cfg["impute"],
                                              fill_value=str(cfg["fill_value"]),
                                              add_indicator=cfg["indicator"])))
    if cfg["encode"] == "onehot":
        unknown = {"infrequent": "infrequent_if_exist", "ignore": "ignore",
                   "error": "error"}[cfg["unknown"]]
        steps.append(("encode", OneHotEncoder(
            handle_unknown=unknown, max_categories=cfg["max_categories"],
            sparse_output=False)))
    else:
        unknown_kw: dict[str, Any] = ({"handle_unknown": "error"} if cfg["unknown"] == "error"
                                      else {"handle_unknown": "use_encoded_value",
                                            "unknown_value": -1})
        steps.append(("encode", OrdinalEncoder(max_categories=cfg["max_categories"],
                                               **unknown_kw)))
    return steps


def build_preprocessor(types: dict[str, str], spec: PreprocessSpec) -> Any:
    """The ColumnTransformer for ``types`` (name -> kind; other kinds are not features).

    Columns of one kind with the same settings share one transformer (``numeric``,
    ``categorical``); a column with its own settings under ``preprocess.columns`` gets its
    own (``numeric:Age``). Everything is fitted on the training rows only.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    groups: dict[tuple[str, tuple[tuple[str, Any], ...]], list[str]] = {}
    for name, kind in types.items():
        if kind in ("numeric", "categorical"):
            groups.setdefault((kind, column_settings(name, kind, spec)), []).append(name)
    defaults = {kind: column_settings("", kind, spec) for kind in ("numeric", "categorical")}
    parts = []
    for (kind, settings), names in groups.items():
        cfg = dict(settings)
        steps = _numeric_steps(cfg) if kind == "numeric" else _categorical_steps(cfg)
        label = kind if settings == defaults[kind] else f"{kind}:{','.join(names)}"
        parts.append((label, Pipeline(steps) if steps else "passthrough", names))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def build_model_pipeline(types: dict[str, str], spec: PreprocessSpec, estimator: Any, *,
                         derive: dict[str, Any] | None = None,
                         derived: dict[str, str] | None = None) -> Any:
    """Derived columns, preprocessing and estimator as one sklearn Pipeline (what is saved).

    Args:
        types: the model's input columns -> kind (``input``: read by a derivation only).
        derive: the spec's ``derive:`` section; its columns become the Pipeline's first step.
        derived: the derived columns -> kind (from the validate report).
    """
    from sklearn.pipeline import Pipeline

    steps: list[tuple[str, Any]] = []
    if derive:
        from conveyor.features.derive import plain_rule
        from conveyor.features.transformers import DeriveColumns

        steps.append(("derive", DeriveColumns({k: plain_rule(v) for k, v in derive.items()})))
        types = {**types, **(derived or {})}
    steps.append(("preprocess", build_preprocessor(types, spec)))
    steps.append(("model", estimator))
    return Pipeline(steps)
