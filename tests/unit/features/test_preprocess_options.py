"""Per-column preprocessing: each option changes what the fitted transformer outputs, and
every statistic is learnt from the training rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conveyor.features import build_preprocessor
from conveyor.spec.models import PreprocessSpec

TRAIN = pd.DataFrame({"age": [20.0, 30.0, np.nan, 40.0, 1000.0],
                      "fare": [1.0, 2.0, 3.0, 4.0, 5.0],
                      "port": ["S", "C", None, "S", "Q"]})


def fitted(spec: dict, frame: pd.DataFrame = TRAIN) -> tuple[object, list[str]]:
    pre = build_preprocessor({"age": "numeric", "fare": "numeric", "port": "categorical"},
                             PreprocessSpec.model_validate(spec)).fit(frame)
    return pre, list(pre.get_feature_names_out())


def test_missing_indicator_adds_a_column_for_a_feature_with_missing_values() -> None:
    pre, names = fitted({"numeric": {"indicator": True, "scale": "none"}})
    assert "missingindicator_age" in names and "missingindicator_fare" not in names
    out = pd.DataFrame(pre.transform(TRAIN), columns=names)
    assert out["missingindicator_age"].tolist() == [0, 0, 1, 0, 0]
    assert out.loc[2, "age"] == 35.0  # the median of the training rows


def test_per_column_settings_override_the_kind_and_split_the_group() -> None:
    pre, names = fitted({"numeric": {"scale": "none"},
                         "columns": {"age": {"impute": "constant", "fill_value": -1,
                                             "clip": "iqr"}}})
    labels = [name for name, _, _ in pre.transformers_]
    assert labels == ["numeric:age", "numeric", "categorical"]
    out = pd.DataFrame(pre.transform(TRAIN), columns=names)
    assert out.loc[2, "age"] == -1.0
    q1, q3 = np.nanpercentile(TRAIN["age"], [25, 75])
    assert out.loc[4, "age"] == pytest.approx(q3 + 1.5 * (q3 - q1))  # 1000 was clipped
    assert out["fare"].tolist() == TRAIN["fare"].tolist()


def test_zscore_clipping_uses_training_bounds_at_prediction() -> None:
    pre, names = fitted({"numeric": {"scale": "none", "clip": "zscore", "clip_factor": 1}})
    new = pd.DataFrame({"age": [5000.0], "fare": [-100.0], "port": ["S"]})
    out = pd.DataFrame(pre.transform(new), columns=names)
    fare = TRAIN["fare"]
    assert out.loc[0, "fare"] == pytest.approx(fare.mean() - fare.std(ddof=0))


def test_unknown_categories_by_policy() -> None:
    new = pd.DataFrame({"age": [1.0], "fare": [1.0], "port": ["X"]})
    pre, names = fitted({"categorical": {"unknown": "ignore"}})
    onehot = [n for n in names if n.startswith("port_")]
    assert pd.DataFrame(pre.transform(new), columns=names)[onehot].to_numpy().sum() == 0
    pre, _ = fitted({"categorical": {"unknown": "error"}})
    with pytest.raises(ValueError, match="unknown categor"):
        pre.transform(new)
    pre, names = fitted({"categorical": {"encode": "ordinal"}})
    assert pd.DataFrame(pre.transform(new), columns=names)["port"].tolist() == [-1]


def test_constant_imputation_for_categories() -> None:
    _, names = fitted({"categorical": {"impute": "constant", "fill_value": "unknown"}})
    assert "port_unknown" in names


def test_a_bad_option_names_its_key() -> None:
    with pytest.raises(ValueError, match=r"columns\.age\.clip"):
        PreprocessSpec.model_validate({"columns": {"age": {"clip": "mad"}}})


def test_the_compiled_serving_path_declines_derive_and_clip_but_keeps_the_default() -> None:
    from sklearn.linear_model import LogisticRegression

    from conveyor.features import build_model_pipeline
    from conveyor.serving.fastpath import compile_predictor

    X = pd.DataFrame({"age": [20.0, 30.0, 25.0, 40.0, 50.0, 60.0],
                      "fare": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    y = [0, 1, 0, 1, 0, 1]
    types = {"age": "numeric", "fare": "numeric"}
    plain = build_model_pipeline(types, PreprocessSpec(), LogisticRegression()).fit(X, y)
    assert compile_predictor(plain, list(X.columns)) is not None
    clipped = build_model_pipeline(types, PreprocessSpec.model_validate(
        {"numeric": {"clip": "iqr"}}), LogisticRegression()).fit(X, y)
    derived = build_model_pipeline(types, PreprocessSpec(), LogisticRegression(),
                                   derive={"sum": "age + fare"},
                                   derived={"sum": "numeric"}).fit(X, y)
    for model in (clipped, derived):
        assert compile_predictor(model, list(X.columns)) is None
