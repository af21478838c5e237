"""Regression beside classification (issue 11, ADR 0038): the task rule, estimators by task,
the regression metrics against scikit-learn, the binned split, promotion direction, and the
validate checks of a numeric target. Small arrays, no MLflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import DataError, SpecError
from conveyor.modeling import build_estimator, resolve_estimator
from conveyor.modeling.estimators import implied_task
from conveyor.modeling.metrics import scorer, scorer_sign, value_metrics
from conveyor.modeling.tasks import MAX_CLASSES, infer_task, task_problems
from conveyor.modeling.training import fit_model, split_table, strata
from conveyor.monitoring.drift import live_metrics
from conveyor.promotion.decision import CandidateScore, make_decision
from conveyor.spec import load_spec
from conveyor.spec.models import Spec, SplitSpec
from conveyor.steps.train import check_labels
from conveyor.steps.validate import check_value_leakage, numeric_target, validate_table

# --------------------------------------------------------------------------- the task rule


@pytest.mark.parametrize(("values", "task"), [
    (["M", "B", "M"], "classification"),
    ([True, False, True], "classification"),
    ([0, 1, 1, 0], "classification"),
    ([0.0, 1.0, np.nan, 1.0], "classification"),  # missing values do not count
    (list(range(10)) * 3, "classification"),  # digits
    (list(range(MAX_CLASSES)), "classification"),
    (list(range(MAX_CLASSES + 1)), "regression"),  # many whole numbers: a quantity
    ([1.0, 2.5, 3.0], "regression"),  # one fraction is enough
])
def test_infer_task(values: list[object], task: str) -> None:
    assert infer_task(pd.Series(values)).task == task


def test_declared_task_overrides_the_rule() -> None:
    assert infer_task(pd.Series([0, 1, 2]), "regression") == ("regression", "schema.task")
    assert infer_task(pd.Series([0.5, 1.5]), "classification").task == "classification"


# --------------------------------------------------------------------------- estimators


def test_short_names_resolve_by_task() -> None:
    assert resolve_estimator("random_forest", task="regression").__name__ == \
        "RandomForestRegressor"
    assert resolve_estimator("random_forest", task="classification").__name__ == \
        "RandomForestClassifier"
    assert resolve_estimator("ridge", task="regression").__name__ == "Ridge"
    assert resolve_estimator("ridge", task="classification").__name__ == "RidgeClassifier"
    for name, cls in (("xgboost", "XGBRegressor"), ("lightgbm", "LGBMRegressor"),
                      ("svr", "SVR"), ("elastic_net", "ElasticNet"),
                      ("hist_gradient_boosting", "HistGradientBoostingRegressor")):
        assert resolve_estimator(name, task="regression").__name__ == cls


@pytest.mark.parametrize(("name", "task", "message"), [
    ("logistic_regression", "regression",
     "'logistic_regression' is a classifier, but the task is regression; use a regressor"),
    ("svr", "classification", "'svr' is a regressor, but the task is classification"),
    ("sklearn.linear_model.Ridge", "classification",
     "'sklearn.linear_model.Ridge' is a regressor, but the task is classification"),
    ("xgboost.XGBClassifier", "regression",
     "'xgboost.XGBClassifier' is a classifier, but the task is regression"),
])
def test_an_estimator_of_the_other_task_is_a_spec_error(name: str, task: str,
                                                        message: str) -> None:
    with pytest.raises(SpecError) as caught:
        resolve_estimator(name, task=task)
    assert caught.value.key == "model.estimator"
    assert message in str(caught.value)


def test_unknown_task_accepts_either_kind_and_params_pick_the_variant() -> None:
    assert implied_task("linear_regression") == "regression"
    assert implied_task("logistic_regression") == "classification"
    assert implied_task("random_forest") is None
    # squared_error is a regressor's criterion only: the regressor is the one that fits
    built = build_estimator("random_forest", {"criterion": "squared_error"})
    assert type(built).__name__ == "RandomForestRegressor"
    with pytest.raises(SpecError, match="has no parameter 'alpah'"):
        build_estimator("random_forest", {"alpah": 1})


def test_xgboost_and_lightgbm_build_without_sklearn_constraints() -> None:
    assert type(build_estimator("xgboost", {"n_estimators": 5}, task="classification")
                ).__name__ == "XGBClassifier"
    assert type(build_estimator("lightgbm", {"n_estimators": 5}, task="regression")
                ).__name__ == "LGBMRegressor"


def test_xgboost_classifier_refuses_text_labels_before_fitting() -> None:
    estimator = build_estimator("xgboost", {}, task="classification")
    check_labels(estimator, pd.Series([0, 1, 1]))  # 0..n-1: fine
    with pytest.raises(SpecError, match="learns only the classes 0 … 1, but the target "
                                        "holds 'B', 'M'; use lightgbm"):
        check_labels(estimator, pd.Series(["M", "B"]))


# --------------------------------------------------------------------------- metrics


def test_regression_metrics_equal_sklearn() -> None:
    from sklearn import metrics as m

    y_true = np.array([3.0, -0.5, 2.0, 7.0, 4.2])
    y_pred = np.array([2.5, 0.0, 2.0, 8.0, 3.9])
    got = value_metrics(y_true, y_pred, ["rmse", "mae", "r2", "mape", "f1"])
    assert got == pytest.approx({
        "rmse": np.sqrt(m.mean_squared_error(y_true, y_pred)),
        "mae": m.mean_absolute_error(y_true, y_pred),
        "r2": m.r2_score(y_true, y_pred),
        "mape": m.mean_absolute_percentage_error(y_true, y_pred)})
    assert "f1" not in got


def test_regression_scorers_turn_back_into_the_metric() -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold, cross_val_score

    X = np.arange(40, dtype=float).reshape(-1, 1)
    y = 3 * X[:, 0] + np.sin(X[:, 0]) * 5
    folds = KFold(n_splits=4, shuffle=True, random_state=0)
    rmse = scorer_sign("rmse") * cross_val_score(LinearRegression(), X, y, cv=folds,
                                                 scoring=scorer("rmse", None))
    assert (rmse > 0).all()
    assert scorer("r2", None) == "r2" and scorer_sign("r2") == 1.0


def test_tuning_a_regressor_uses_kfold_and_rmse() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    from conveyor.spec.models import TuneSpec

    X = pd.DataFrame({"x": np.arange(60, dtype=float)})
    y = pd.Series(2 * X["x"] + np.cos(X["x"]))
    tune = TuneSpec(params={"alpha": [0.1, 10.0]}, cv=3)
    _, facts = fit_model(Pipeline([("model", Ridge())]), X, y, tune=tune, task="regression")
    assert facts["best_params"] == {"alpha": 0.1}
    assert 0 < facts["cv_best_rmse"] < 2  # the metric itself, not sklearn's negated score


def test_live_metrics_of_a_regressor() -> None:
    live = live_metrics([1.0, 2.0, 4.0], [1.0, 2.0, 3.0], regression=True)
    assert live["live_mae"] == pytest.approx(1 / 3)
    assert set(live) == {"live_rmse", "live_mae", "live_r2", "live_mape"}


# --------------------------------------------------------------------------- split


def test_binned_split_is_deterministic_and_spreads_the_target() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=400), "y": rng.lognormal(3, 1, size=400)})
    spec = SplitSpec(test_size=0.25, seed=7)
    train, test = split_table(frame, "y", spec, task="regression")
    again, _ = split_table(frame, "y", spec, task="regression")
    pd.testing.assert_frame_equal(train, again)
    # ten quantile bins: the test split holds 10 rows of each tenth of the target
    bins = strata(frame["y"], test_size=0.25)
    assert np.bincount(bins).tolist() == [40] * 10
    deciles = np.quantile(frame["y"], np.linspace(0, 1, 11)[1:-1])
    per_bin = np.bincount(np.searchsorted(deciles, test["y"]), minlength=10)
    assert per_bin.tolist() == [10] * 10
    unstratified = split_table(frame, "y", SplitSpec(test_size=0.25, seed=7, stratify=False),
                               task="regression")[1]
    assert len(unstratified) == 100 and not unstratified.equals(test)


def test_too_few_rows_are_split_without_bins() -> None:
    assert strata(pd.Series([1.0, 2.0, 3.0]), test_size=0.2) is None
    train, test = split_table(pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0]}), "y",
                              SplitSpec(test_size=0.25), task="regression")
    assert (len(train), len(test)) == (3, 1)


# --------------------------------------------------------------------------- promotion


def regressor(version: int, rmse: float, *, role: str = "candidate") -> CandidateScore:
    return CandidateScore(version=str(version), role=role, status="scored",
                          scores={"rmse": rmse, "mae": rmse, "r2": 1 - rmse / 100,
                                  "mape": rmse / 100})


def test_promotion_picks_the_lowest_rmse() -> None:
    decision = make_decision("m", [regressor(1, 60.0), regressor(2, 55.0), regressor(3, 58.0)],
                             None, metric="rmse")
    assert (decision.action, decision.chosen) == ("promote", "2")
    beats = make_decision("m", [regressor(1, 60.0, role="production"), regressor(2, 57.0)],
                          "1", metric="rmse", min_delta=2.0)
    assert beats.action == "promote" and "by 3.0000 >= min_delta 2" in beats.reason
    worse = make_decision("m", [regressor(1, 55.0, role="production"), regressor(2, 57.0)],
                          "1", metric="rmse")
    assert worse.action == "keep" and "does not beat production v1" in worse.reason


def test_a_minimum_on_rmse_is_a_ceiling() -> None:
    decision = make_decision("m", [regressor(1, 65.0), regressor(2, 59.0)], None,
                             metric="rmse", minimums={"rmse": 60})
    first = decision.candidate("1")
    assert first is not None and first.status == "below_minimum"
    assert first.reason == "rmse 65.0000 > 60"
    assert decision.chosen == "2"


def test_promotion_rules_of_two_tasks_are_refused() -> None:
    from conveyor.errors import BadInputError

    with pytest.raises(BadInputError, match="minimum f1 and metric rmse are of different"):
        make_decision("m", [], None, metric="rmse", minimums={"f1": 0.9})


# --------------------------------------------------------------------------- spec and validate


def spec_file(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text("name: d\ndata: {source: sklearn, name: diabetes}\n"
                    "model: {estimator: ridge}\n" + extra)
    return path


def test_spec_task_rules(tmp_path: Path) -> None:
    loaded = load_spec(spec_file(tmp_path, "schema: {target: target, task: regression}\n"
                                 "gate: {test_rmse: {max: 60}}\n"))
    assert loaded.spec.schema_.task == "regression"
    with pytest.raises(SpecError, match=r"schema\.positive_label: a regression target has "
                                        r"no positive label"):
        load_spec(spec_file(tmp_path, "schema: {target: target, task: regression, "
                            "positive_label: 1}\n"))
    with pytest.raises(SpecError, match=r"evaluate\.metrics\.0: f1 is not a regression metric"):
        load_spec(spec_file(tmp_path, "schema: {target: target, task: regression}\n"
                            "evaluate: {metrics: [f1]}\n"))
    with pytest.raises(SpecError, match=r"gate\.test_rmse: metric 'rmse' is not computed"):
        load_spec(spec_file(tmp_path, "schema: {target: target, task: classification}\n"
                            "gate: {test_rmse: {max: 60}}\n"))
    # auto: a regression gate is accepted until the data decides the task
    auto = load_spec(spec_file(tmp_path, "schema: {target: target}\n"
                               "gate: {test_rmse: {max: 60}}\n")).spec
    assert task_problems(auto, "regression") == []
    assert task_problems(auto, "classification") == [
        ("gate.test_rmse", "rmse is a regression metric, but the task is classification")]


def test_validate_table_infers_regression_and_checks_the_target() -> None:
    spec = Spec.model_validate({"name": "d", "data": {"source": "sklearn", "name": "diabetes"},
                                "schema": {"target": "y"}, "model": {"estimator": "ridge"}})
    frame = pd.DataFrame({"x": np.arange(40.0), "z": np.arange(40.0) % 3,
                          "y": np.arange(40.0) ** 1.5})
    _, report = validate_table(frame, spec, source="t.csv")
    assert report["task"] == "regression" and report["classes"] == {}
    assert report["task_reason"] == "fractional values such as 2.82843"


def test_numeric_target_and_value_leakage_messages() -> None:
    with pytest.raises(DataError, match=r"t.csv: target 'y', row 2: 'high' is not a number"):
        numeric_target(pd.Series(["1.5", "high", "3"]), "y", source="t.csv")
    with pytest.raises(DataError, match="target 'y' is constant"):
        numeric_target(pd.Series([2.0, 2.0, 2.0]), "y", source="t.csv")
    y = pd.Series([1.0, 4.0, 2.5, 8.0])
    assert "determines the target 'y' exactly" in check_value_leakage(
        y * 3 + 1, y, "copy", "y", source="t.csv")
    assert check_value_leakage(pd.Series([1.0, 0.0, 2.0, 5.0]), y, "x", "y",
                               source="t.csv") is None


# --------------------------------------------------------------------------- xgboost, lightgbm


@pytest.mark.parametrize(("name", "task", "labels"), [
    ("xgboost", "classification", [0, 1]),
    ("lightgbm", "classification", ["B", "M"]),
    ("xgboost", "regression", None),
])
def test_boosters_save_and_load_as_the_server_loads_them(
        tmp_path: Path, name: str, task: str, labels: list[object] | None) -> None:
    """Fitted in the pipeline, saved in MLflow's skops format and loaded back the way
    ``conveyor serve`` and ``conveyor score`` load a verified folder."""
    from conveyor.features import build_model_pipeline
    from conveyor.spec.models import PreprocessSpec
    from conveyor.tracking import Tracker
    from conveyor.tracking.model_files import load_sklearn_folder

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    y = (pd.Series(np.where(X["a"] > 0, labels[1], labels[0])) if labels is not None
         else 3 * X["a"] - X["b"])
    params = {"n_estimators": 5, **({"verbosity": 0} if name == "xgboost" else {})}
    model = build_model_pipeline({"a": "numeric", "b": "numeric"}, PreprocessSpec(),
                                 build_estimator(name, params, task=task)).fit(X, y)
    Tracker.save_sklearn_model(model, X.head(5), tmp_path / "model")
    loaded = load_sklearn_folder(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert hasattr(loaded, "classes_") == (task == "classification")
