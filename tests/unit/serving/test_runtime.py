"""build_serving_model: the compiled path is kept only when it equals scikit-learn, a model
that cannot score its own check rows is refused, and predictions agree on both paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from conveyor.serving import runtime
from conveyor.serving.model import Feature, LoadedModel, ModelIdentity, ModelRefusedError
from conveyor.serving.runtime import ServedPrediction, build_serving_model

NAMES = ["x1", "x0", "x2"]


def loaded(folder: Path, estimator: object, frame: pd.DataFrame,
           dtypes: dict[str, str] | None = None) -> LoadedModel:
    folder.mkdir(parents=True, exist_ok=True)
    example = frame.head(5)
    (folder / "input_example.json").write_text(json.dumps(
        {"columns": list(example.columns), "data": example.astype(object).where(
            example.notna(), None).values.tolist()}))
    identity = ModelIdentity(uri="models:/m@production", kind="registry", name="m",
                             version="7", alias="production", run_id="r", sha256="0" * 64,
                             location="models:/m/7")
    classes = getattr(estimator, "classes_", None)
    return LoadedModel(identity=identity, estimator=estimator,
                       features=tuple(Feature(c, (dtypes or {}).get(c, "double"))
                                      for c in frame.columns),
                       classes=tuple(c.item() for c in classes), folder=folder)


def numeric_data(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)) * [1, 10, 100], columns=NAMES)
    return frame, np.where(frame["x1"] + frame["x0"] / 10 > 0, "yes", "no")


def test_a_supported_pipeline_is_compiled_and_answers_like_scikit_learn(tmp_path: Path) -> None:
    frame, y = numeric_data()
    pipe = Pipeline([("i", SimpleImputer()), ("s", StandardScaler()),
                     ("m", LogisticRegression())]).fit(frame, y)
    model = build_serving_model(loaded(tmp_path, pipe, frame))
    assert model.compiled and model.fallback_reason == ""
    assert model.numeric and model.feature_names == NAMES and model.classes == ("no", "yes")
    assert model.check_rows[0] == {n: frame[n].iloc[0] for n in NAMES}
    X = model.as_array(frame)
    X[3, 1] = np.nan
    fast, slow = model.predict(X), model.predict_sklearn(X)
    assert isinstance(fast, ServedPrediction) and fast.version == "7"
    np.testing.assert_allclose(fast.proba, slow.proba, rtol=0, atol=1e-9)
    assert fast.labels.tolist() == slow.labels.tolist() == pipe.predict(
        pd.DataFrame(X, columns=NAMES)).tolist()
    assert fast.classes == ("no", "yes")
    calls = []
    compiled = model._predictor
    model._predictor = lambda A: calls.append(A.shape) or compiled(A)
    numeric_frame = pd.DataFrame(X, columns=NAMES).astype({"x2": "float32"})
    np.testing.assert_allclose(model.predict(numeric_frame).proba,
                               model.predict_sklearn(numeric_frame).proba, rtol=0, atol=1e-9)
    assert calls == [X.shape]  # a DataFrame of numeric columns takes the compiled path too
    model.predict(numeric_frame.astype({"x0": object}))
    assert calls == [X.shape]  # an object column is left to scikit-learn


def test_a_compiled_path_that_disagrees_is_dropped(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    frame, y = numeric_data()
    pipe = Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]).fit(frame, y)
    honest = runtime.compile_predictor(pipe, NAMES)
    assert honest is not None
    monkeypatch.setattr(runtime, "compile_predictor",
                        lambda est, names: lambda X: honest(X) + 1e-7)
    model = build_serving_model(loaded(tmp_path, pipe, frame))
    assert not model.compiled
    assert "differs from scikit-learn by 1e-07" in model.fallback_reason
    X = model.as_array(frame)
    np.testing.assert_allclose(model.predict(X).proba, pipe.predict_proba(frame), rtol=0,
                               atol=1e-12)  # scikit-learn's answer, not the skewed one


def test_nan_without_an_imputer_goes_to_scikit_learn_and_its_error(tmp_path: Path) -> None:
    frame, y = numeric_data()
    pipe = Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]).fit(frame, y)
    model = build_serving_model(loaded(tmp_path, pipe, frame))
    assert model.compiled  # the NaN probe: scikit-learn refuses, the compiled path declines
    X = model.as_array(frame.head(2))
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict(X)


def test_a_model_failing_its_check_rows_is_refused(tmp_path: Path) -> None:
    frame, y = numeric_data()
    pipe = Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]).fit(frame, y)
    broken = loaded(tmp_path, pipe, frame)
    pipe.named_steps["s"].mean_ = np.zeros(2)  # a model that cannot transform its own rows
    with pytest.raises(ModelRefusedError, match=r"version 7.*cannot score its check rows"):
        build_serving_model(broken)


def test_non_numeric_features_use_scikit_learn_with_a_dataframe(tmp_path: Path) -> None:
    frame, y = numeric_data()
    frame["colour"] = np.where(np.arange(len(frame)) % 3, "red", "blue")
    pipe = Pipeline([
        ("p", ColumnTransformer([("n", StandardScaler(), NAMES),
                                 ("c", OneHotEncoder(handle_unknown="ignore"), ["colour"])])),
        ("m", LogisticRegression())]).fit(frame, y)
    model = build_serving_model(loaded(tmp_path, pipe, frame, {"colour": "string"}))
    assert not model.numeric and not model.compiled
    assert model.fallback_reason == "non-numeric features"
    got = model.predict(frame.head(4))
    np.testing.assert_allclose(got.proba, pipe.predict_proba(frame.head(4)), rtol=0, atol=0)
