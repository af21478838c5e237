"""The decision threshold: tuned on out-of-fold probabilities of the training rows, saved
inside the model, and applied by everything that loads the saved model (the server, its
compiled path, batch scoring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conveyor.errors import DataError
from conveyor.modeling.threshold import (
    GRID,
    decision_threshold,
    labels_from_proba,
    threshold_model,
    tune_threshold,
)
from conveyor.serving.batch import score
from conveyor.serving.model import load, resolve
from conveyor.serving.runtime import build_serving_model
from conveyor.store import Store
from conveyor.tracking import Tracker


@pytest.fixture(scope="module")
def rows() -> tuple[pd.DataFrame, pd.Series]:
    # a rare positive class "yes" whose F1 is best well below a probability of 0.5
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"])
    y = pd.Series(np.where(X["a"] + 1.2 * rng.normal(size=400) > 1.6, "yes", "no"))
    return X, y


@pytest.fixture(scope="module")
def fitted(rows) -> object:
    X, y = rows
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


def test_tuned_threshold_comes_from_the_folds_and_changes_predictions(rows, fitted) -> None:
    X, y = rows
    decided = tune_threshold(fitted, X, y, positive="yes", metric="f1", cv=4, seed=0)
    assert decided["threshold"] < 0.5
    assert decided["score"] > decided["default_score"]  # better on the folds than 0.5
    assert decided["curve"]["thresholds"] == [float(t) for t in GRID]
    assert max(decided["curve"]["scores"]) == decided["score"]
    # same folds, same choice
    assert tune_threshold(fitted, X, y, positive="yes", metric="f1", cv=4,
                          seed=0)["threshold"] == decided["threshold"]
    wrapped = threshold_model(fitted, decided["threshold"], "yes")
    assert (wrapped.predict(X) == "yes").sum() > (fitted.predict(X) == "yes").sum()
    assert decision_threshold(wrapped) == (decided["threshold"], "yes")
    assert decision_threshold(fitted) is None
    np.testing.assert_array_equal(
        labels_from_proba(wrapped, wrapped.predict_proba(X), wrapped.classes_),
        wrapped.predict(X))


def test_too_few_rows_of_a_class_for_the_folds_is_a_data_error(rows, fitted) -> None:
    X, y = rows
    y = y.copy()
    y[:] = "no"
    y.iloc[:2] = "yes"
    with pytest.raises(DataError,
                       match=r"model\.threshold: cannot tune on 5 folds.*'yes' has 2 rows"):
        tune_threshold(fitted, X, y, positive="yes", metric="f1", cv=5, seed=0)


def test_an_estimator_without_probabilities_takes_no_threshold(rows) -> None:
    from sklearn.svm import LinearSVC

    X, y = rows
    model = make_pipeline(StandardScaler(), LinearSVC()).fit(X, y)
    with pytest.raises(DataError, match="LinearSVC has no predict_proba"):
        threshold_model(model, 0.3, "yes")


@pytest.fixture(scope="module")
def saved(rows, fitted, tmp_path_factory) -> tuple[str, object]:
    """The wrapped model saved as the train step saves it, in a Store folder."""
    X, _ = rows
    wrapped = threshold_model(fitted, 0.2, "yes")
    root = tmp_path_factory.mktemp("threshold")
    Tracker.save_sklearn_model(wrapped, X.head(5), root / "saved")
    store = Store(root.as_uri())
    ref = store.put_dir(store.uri("model"), root / "saved")
    return ref.uri, wrapped


def test_the_server_applies_the_saved_threshold_compiled_or_not(rows, fitted, saved) -> None:
    X, _ = rows
    uri, wrapped = saved
    expected = wrapped.predict(X)
    assert (expected != fitted.predict(X)).any()  # the threshold matters on these rows
    loaded = load(resolve(uri))
    np.testing.assert_array_equal(loaded.predict(X).labels.astype(str), expected)
    served = build_serving_model(loaded)
    assert served.compiled, served.fallback_reason  # the fastpath compiles the inner pipeline
    got = served.predict(np.ascontiguousarray(X.to_numpy(dtype=np.float64)))
    np.testing.assert_array_equal(got.labels.astype(str), expected)
    np.testing.assert_allclose(got.proba, fitted.predict_proba(X), atol=1e-9)
    plain = build_serving_model(loaded, compile=False)
    np.testing.assert_array_equal(plain.predict(X).labels.astype(str), expected)


def test_batch_scoring_applies_the_saved_threshold(rows, saved, tmp_path: Path) -> None:
    X, _ = rows
    uri, wrapped = saved
    X.to_parquet(tmp_path / "in.parquet")
    score(uri, str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"))
    out = pd.read_parquet(tmp_path / "out.parquet")
    np.testing.assert_array_equal(out["prediction"].astype(str), wrapped.predict(X))


SPEC = """\
name: t
data: {source: sklearn, name: breast_cancer}
schema: {target: target%s}
model:
  estimator: logistic_regression
  threshold: %s
"""


@pytest.mark.parametrize(("positive", "threshold", "message"), [
    (", positive_label: 1", "1.3", "model.threshold: expected a probability between 0 and 1 "
                                   "(exclusive), or {metric: f1, cv: 5} to tune it; got 1.3"),
    (", positive_label: 1", "{metrc: f1}", "model.threshold.metrc: unknown key 'metrc'; did "
                                           "you mean 'metric'?"),
    (", positive_label: 1", "{metric: roc_auc}", "model.threshold.metric: input should be"),
    ("", "0.3", "model.threshold: a decision threshold needs schema.positive_label"),
])
def test_a_bad_threshold_is_a_spec_error_naming_the_key(
        tmp_path: Path, positive: str, threshold: str, message: str) -> None:
    from conveyor.errors import SpecError
    from conveyor.spec import load_spec
    from conveyor.steps import check_spec

    path = tmp_path / "spec.yaml"
    path.write_text(SPEC % (positive, threshold))
    with pytest.raises(SpecError) as caught:
        check_spec(load_spec(path), data=False)
    assert f"{path}:6: {message}" in str(caught.value)


def test_a_good_threshold_loads() -> None:
    from conveyor.spec.models import ModelSpec, ThresholdSpec

    assert ModelSpec.model_validate({"estimator": "x", "threshold": 0.3}).threshold == 0.3
    tuned = ModelSpec.model_validate({"estimator": "x", "threshold": {"metric": "recall"}})
    assert tuned.threshold == ThresholdSpec(metric="recall", cv=5)


def test_a_wrapped_lightgbm_pipeline_still_pins_lightgbm(rows) -> None:
    from lightgbm import LGBMClassifier

    from conveyor.tracking.tracker import _pip_requirements

    X, y = rows
    fitted = make_pipeline(StandardScaler(), LGBMClassifier(n_estimators=2, verbose=-1)).fit(
        X, y)
    pins = _pip_requirements(threshold_model(fitted, 0.3, "yes"))
    assert any(pin.startswith("lightgbm==") for pin in pins), pins
