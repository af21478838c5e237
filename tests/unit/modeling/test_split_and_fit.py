"""The pure split and fit shared by the pipeline's steps and the lab (no MLflow, no Store)."""

from __future__ import annotations

import pandas as pd
import pytest

from conveyor.errors import DataError
from conveyor.features import build_model_pipeline
from conveyor.modeling import build_estimator
from conveyor.modeling.training import fit_model, split_table, split_xy
from conveyor.sources.bundled import read_sklearn_source
from conveyor.spec.models import PreprocessSpec, SklearnSource, SplitSpec, TuneSpec


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    frame, _ = read_sklearn_source(SklearnSource(source="sklearn", name="iris"))
    return frame


def _rows(frame: pd.DataFrame) -> set[tuple[object, ...]]:
    return {tuple(r) for r in frame.itertuples(index=False)}


def test_split_table_sizes_stratified_and_indexes_reset(iris: pd.DataFrame) -> None:
    train, test = split_table(iris, "target", SplitSpec(test_size=0.3, seed=42))
    assert (len(train), len(test)) == (105, 45)
    # stratified: every class keeps its share (50 rows each: 35 train, 15 test)
    assert test["target"].value_counts().to_dict() == dict.fromkeys(
        ["setosa", "versicolor", "virginica"], 15)
    assert list(train.index) == list(range(105)) and list(test.index) == list(range(45))
    assert list(train.columns) == list(iris.columns)
    # every row lands in exactly one part
    columns = list(iris.columns)
    pd.testing.assert_frame_equal(
        pd.concat([train, test]).sort_values(columns).reset_index(drop=True),
        iris.sort_values(columns).reset_index(drop=True))


def test_split_table_is_reproducible_by_seed(iris: pd.DataFrame) -> None:
    first = split_table(iris, "target", SplitSpec(test_size=0.3, seed=42))
    again = split_table(iris, "target", SplitSpec(test_size=0.3, seed=42))
    other = split_table(iris, "target", SplitSpec(test_size=0.3, seed=7))
    pd.testing.assert_frame_equal(first[1], again[1])
    pd.testing.assert_frame_equal(first[0], again[0])
    assert _rows(first[1]) != _rows(other[1])


def test_split_table_without_stratify_does_not_balance_classes() -> None:
    frame = pd.DataFrame({"x": range(100), "y": [0] * 90 + [1] * 10})
    _, stratified = split_table(frame, "y", SplitSpec(test_size=0.5, seed=3))
    assert stratified["y"].sum() == 5
    shares = {split_table(frame, "y", SplitSpec(test_size=0.5, seed=s, stratify=False))[1][
        "y"].sum() for s in range(10)}
    assert shares != {5}  # some seed gives the test part more or fewer than its share


def test_split_table_refuses_a_class_with_one_row_as_data_error() -> None:
    frame = pd.DataFrame({"x": range(6), "y": [0, 0, 0, 1, 1, 2]})
    with pytest.raises(DataError, match=r"cannot split 6 rows with split.test_size=0.5"):
        split_table(frame, "y", SplitSpec(test_size=0.5, seed=0))


def _pipeline(features: list[str], estimator: str, **params: object):
    return build_model_pipeline(dict.fromkeys(features, "numeric"), PreprocessSpec(),
                                build_estimator(estimator, params))


def test_fit_model_without_tune_fits_the_given_pipeline(iris: pd.DataFrame) -> None:
    train, _ = split_table(iris, "target", SplitSpec(test_size=0.3, seed=42))
    features = [c for c in iris.columns if c != "target"]
    X, y = split_xy(train, features, "target")
    pipeline = _pipeline(features, "decision_tree", max_depth=2, random_state=0)
    model, facts = fit_model(pipeline, X, y)
    assert model is pipeline and facts == {}
    assert set(model.classes_) == {"setosa", "versicolor", "virginica"}


def test_fit_model_tune_chooses_the_best_params_by_cv(iris: pd.DataFrame) -> None:
    train, _ = split_table(iris, "target", SplitSpec(test_size=0.3, seed=42))
    features = [c for c in iris.columns if c != "target"]
    X, y = split_xy(train, features, "target")
    # a stump can tell at most two of three classes apart: depth 3 wins on macro f1
    tune = TuneSpec(params={"max_depth": [1, 3]}, cv=3, metric="f1")
    model, facts = fit_model(_pipeline(features, "decision_tree", random_state=0), X, y,
                             tune=tune, seed=42)
    assert facts["best_params"] == {"max_depth": 3}
    assert model[-1].max_depth == 3  # refitted with the winner
    assert 0.8 < facts["cv_best_f1"] <= 1.0
    _, facts_again = fit_model(_pipeline(features, "decision_tree", random_state=0), X, y,
                               tune=tune, seed=42)
    assert facts_again == facts  # seeded folds: the same choice and score


def test_fit_model_turns_an_estimator_refusal_into_data_error() -> None:
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    y = pd.Series(["a"] * 4)  # one class: LogisticRegression refuses it
    with pytest.raises(DataError, match=r"^fitting logistic_regression failed: "):
        fit_model(_pipeline(["x"], "logistic_regression"), X, y, what="logistic_regression")
