"""Fitting: split_xy, positive_label and fit_model on small in-memory tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from conveyor.errors import DataError
from conveyor.modeling.training import fit_model, positive_label, split_xy
from conveyor.spec.models import TuneSpec


def separable(n: int = 60) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    y = pd.Series(["M" if i % 2 else "B" for i in range(n)])
    x1 = np.where(y == "M", 5.0, -5.0) + rng.normal(0, 1, n)
    return pd.DataFrame({"x1": x1, "x2": rng.normal(0, 1, n)}), y


def pipeline() -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])


def test_split_xy_takes_features_in_the_given_order() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [3, 4], "y": [0, 1], "id": [7, 8]})
    X, y = split_xy(frame, {"b": "numeric", "a": "numeric"}, "y")
    assert list(X.columns) == ["b", "a"] and y.tolist() == [0, 1]
    assert list(split_xy(frame, ["a"], "y")[0].columns) == ["a"]


@pytest.mark.parametrize(("label", "values", "expected"), [
    ("1", [0, 1, 1], 1), (1, ["0", "1"], "1"), ("M", ["B", "M"], "M"),
    (None, [0, 1], None), ("X", ["B", "M"], "X"), ("1.0", [0.0, 1.0], 1.0),
])
def test_positive_label_takes_the_targets_own_type(label: object, values: list[object],
                                                   expected: object) -> None:
    found = positive_label(label, pd.Series(values))
    assert found == expected and type(found) is type(expected)


def test_fit_model_fits_the_pipeline_it_is_given() -> None:
    X, y = separable()
    fitted, facts = fit_model(pipeline(), X, y)
    assert facts == {}
    assert (fitted.predict(X) == y).mean() == 1.0
    assert list(fitted.classes_) == ["B", "M"]


def test_a_refused_fit_is_a_data_error_naming_what() -> None:
    X = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0]})
    with pytest.raises(DataError) as caught:
        fit_model(pipeline(), X, pd.Series([0, 1, 0, 1]), what="logistic_regression")
    assert str(caught.value).startswith("fitting logistic_regression failed: ")
    assert "NaN" in str(caught.value)


def test_tuning_reports_the_best_params_and_score() -> None:
    X, y = separable()
    tune = TuneSpec(method="grid", params={"C": [0.001, 1.0]}, cv=3, metric="f1")
    fitted, facts = fit_model(pipeline(), X, y, tune=tune, seed=0, positive="M")
    assert set(facts) == {"best_params", "cv_best_f1"}
    assert facts["best_params"]["C"] in (0.001, 1.0)
    assert 0.9 <= facts["cv_best_f1"] <= 1.0
    assert facts["best_params"]["C"] == fitted.named_steps["model"].C


def test_random_search_is_seeded() -> None:
    X, y = separable()
    tune = TuneSpec(method="random", params={"C": [0.01, 0.1, 1.0, 10.0]}, cv=3, n_iter=2,
                    metric="accuracy")
    first = fit_model(pipeline(), X, y, tune=tune, seed=3)[1]
    again = fit_model(pipeline(), X, y, tune=tune, seed=3)[1]
    assert first == again and set(first) == {"best_params", "cv_best_accuracy"}
