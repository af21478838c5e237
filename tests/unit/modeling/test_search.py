"""The hyper-parameter search (``conveyor.modeling.search``) and its spec (ADR 0039).

Spaces and their errors are checked through ``load_spec`` and ``check_spec``, as a user
meets them; the search itself runs on a small generated data set in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from conveyor.errors import SpecError
from conveyor.modeling.search import SearchCandidate, history_plot, run_search
from conveyor.modeling.training import fit_model
from conveyor.spec import load_spec
from conveyor.spec.models import ParamRange, TuneSpec
from conveyor.steps import check_spec

HEAD = """\
name: searched
data: {source: sklearn, name: breast_cancer}
schema: {target: diagnosis, positive_label: M}
"""


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + body)
    return path


def spec_error(tmp_path: Path, body: str, *, check: bool = False) -> SpecError:
    with pytest.raises(SpecError) as caught:
        loaded = load_spec(write(tmp_path, body))
        if check:
            check_spec(loaded, data=False)
    return caught.value


CANDIDATES = """\
models:
  - estimator: logistic_regression
    params: {max_iter: 500}
    space:
      C: {low: 0.001, high: 100.0, log: true}
      class_weight: [null, balanced]
  - name: forest
    estimator: random_forest
    space:
      n_estimators: {low: 10, high: 50, step: 10}
      max_features: {low: 0.2, high: 1}
tune: {method: optuna, metric: f1, cv: 3, n_trials: 8, timeout: 2m}
"""


# ---------------------------------------------------------------------------- spaces
def test_a_space_is_lists_and_ranges_typed_by_their_bounds(tmp_path: Path) -> None:
    loaded = load_spec(write(tmp_path, CANDIDATES))
    check_spec(loaded, data=False)
    first, forest = loaded.spec.candidates()
    assert (first.name, forest.name) == ("logistic_regression", "forest")
    assert first.space["class_weight"] == [None, "balanced"]
    c = first.space["C"]
    assert isinstance(c, ParamRange) and c.kind == "float" and c.log
    assert forest.space["n_estimators"].kind == "int"
    assert forest.space["n_estimators"].step == 10
    assert forest.space["max_features"].kind == "float"  # 1 with 0.2: a float range
    tune = loaded.spec.search()
    assert (tune.method, tune.timeout, tune.n_trials) == ("optuna", 120.0, 8)
    assert loaded.spec.model is None


@pytest.mark.parametrize(("space", "key", "words"), [
    ("C: {low: 10, high: 1}", "C", "low 10 is above high 1"),
    ("C: {low: 0, high: 1, log: true}", "C", "log: true needs low > 0"),
    ("C: {low: 0.1, high: 1, log: true, step: 0.1}", "C", "cannot be combined"),
    ("C: {low: 1, high: 5, step: 0.5}", "C", "integer step"),
    ("C: {low: 1, hihg: 5}", "C", "unknown key 'hihg'"),
    ("C: {low: 1}", "C", "a range needs high"),
    ("C: []", "C", "empty list"),
    ("C: 3", "C", "expected a list of choices"),
])
@pytest.mark.parametrize("method", ["optuna", "random"])
def test_a_bad_space_names_its_key_and_line(tmp_path: Path, space: str, key: str,
                                            words: str, method: str) -> None:
    error = spec_error(tmp_path, f"""\
model:
  estimator: logistic_regression
  tune:
    method: {method}
    params:
      {space}
""")
    assert error.key == f"model.tune.params.{key}"
    assert error.line == 9
    assert words in str(error)


def test_an_unknown_param_in_a_space_is_refused_before_any_work(tmp_path: Path) -> None:
    error = spec_error(tmp_path, CANDIDATES.replace("n_estimators:", "n_estimatorz:"),
                       check=True)
    assert error.key == "models.1.space.n_estimatorz"
    assert "did you mean 'n_estimators'" in str(error)
    assert error.line == 13


def test_a_choice_the_estimator_refuses_is_refused_before_any_work(tmp_path: Path) -> None:
    error = spec_error(tmp_path, CANDIDATES.replace("[null, balanced]", "[null, heavy]"),
                       check=True)
    assert error.key == "models.0.space.class_weight"
    assert "'heavy' is refused" in str(error)


@pytest.mark.parametrize(("body", "key", "words"), [
    ("model: {estimator: svc}\n" + CANDIDATES, None, "not both"),
    ("evaluate: {cv: 3}\n", None, "has neither"),
    ("model: {estimator: svc}\ntune: {method: optuna}\n", "tune", "goes with models:"),
    ("model:\n  estimator: svc\n  tune: {method: grid, params: {C: {low: 1, high: 2}}}\n",
     "model.tune.params.C", "a range needs method: random or optuna; grid search takes a list"),
    ("model:\n  estimator: svc\n  tune: {method: grid, n_trials: 5, params: {C: [1]}}\n",
     "model.tune.n_trials", "applies to method: optuna"),
    (CANDIDATES.replace("method: optuna", "method: grid").replace(
        ", n_trials: 8, timeout: 2m", ""), "models.0.space.C",
     "a range needs tune.method: random or optuna"),
    (CANDIDATES.replace("name: forest", "name: logistic_regression"), "models.1.name",
     "also models.0's"),
    (CANDIDATES.replace("timeout: 2m", "timeout: soon"), "tune.timeout", "'2m'"),
    (CANDIDATES.replace("n_trials: 8", "n_jobs: 0"), "tune.n_jobs", "-1 for every core"),
    # a typo in the metric passed `conveyor validate`; the run failed in train (exit 1)
    # with scikit-learn's "'f1_macr' is not a valid scoring value"
    (CANDIDATES.replace("metric: f1", "metric: f1_macr"), "tune.metric",
     "unknown metric 'f1_macr'; did you mean 'f1'?"),
    ("model:\n  estimator: svc\n  tune: {metric: acuracy, params: {C: [1, 2]}}\n",
     "model.tune.metric", "did you mean 'accuracy'?"),
    # inside a candidate, a typo had no hint and a bare value named a class (CandidateSpec)
    (CANDIDATES.replace("    space:\n      n_estimators", "    spcae:\n      n_estimators"),
     "models.1.spcae", "unknown key 'spcae'; did you mean 'space'?"),
    ("models: [ridge]\n", "models.0",
     "expected a mapping with the keys estimator, name, params, space, got 'ridge'"),
])
def test_the_shape_of_model_models_and_tune(tmp_path: Path, body: str, key: str | None,
                                            words: str) -> None:
    error = spec_error(tmp_path, body)
    assert error.key == key
    assert words in str(error)


def test_model_specs_keep_their_hash_and_their_single_candidate() -> None:
    root = Path(__file__).resolve().parents[3]
    loaded = load_spec(root / "examples" / "breast_cancer" / "pipeline.yaml")
    assert "models" not in loaded.identity and "tune" not in loaded.identity
    (only,) = loaded.spec.candidates()
    assert (only.name, only.key, only.space) == ("logistic_regression", "model", {})
    assert loaded.spec.search() is None


# ---------------------------------------------------------------------------- search
@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    X, y = make_classification(n_samples=240, n_features=8, n_informative=4, random_state=3)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(8)]), pd.Series(y, name="y")


def pipe(estimator: Any) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("model", estimator)])


def space(**params: Any) -> dict[str, Any]:
    return dict(TuneSpec.model_validate({"method": "optuna", "params": params}).params)


def logistic(name: str = "logistic") -> SearchCandidate:
    return SearchCandidate(name, "logistic_regression", pipe(LogisticRegression(max_iter=500)),
                           space(C={"low": 1e-5, "high": 10.0, "log": True},
                                 fit_intercept=[True, False]))


def search(data: Any, candidates: list[SearchCandidate], **tune: Any) -> Any:
    options = {"method": "optuna", "cv": 3, "n_trials": 10, **tune}
    return run_search(candidates, *data, tune=TuneSpec.model_validate(options), seed=7,
                      positive=1)


def test_the_same_seed_gives_the_same_search(data: Any) -> None:
    first = search(data, [logistic()])
    again = search(data, [logistic()])
    other = search(data, [logistic()], seed=8)
    assert [(t.params, t.cv_mean, t.state) for t in first.trials] == \
        [(t.params, t.cv_mean, t.state) for t in again.trials]
    assert first.best == again.best
    assert [t.params for t in other.trials] != [t.params for t in first.trials]
    assert list(first.model[-1].coef_[0]) == list(again.model[-1].coef_[0])


def test_a_search_past_its_time_budget_stops_and_keeps_its_best(data: Any) -> None:
    nb = SearchCandidate("bayes", "naive_bayes", pipe(GaussianNB()),
                         space(var_smoothing={"low": 1e-12, "high": 1e-3, "log": True}))
    result = search(data, [logistic(), nb], n_trials=1000, timeout=0.001)
    record = result.record
    assert record["stopped_by"] == "timeout"
    assert 2 <= len(result.trials) < 1000
    assert {t.candidate for t in result.trials} == {"logistic", "bayes"}  # each tried once
    assert all(t.state == "complete" for t in result.trials)
    assert record["best"]["cv_mean"] == max(t.cv_mean for t in result.trials)
    assert result.model.predict(data[0]).shape == (240,)  # refitted, usable


def test_pruning_stops_trials_that_lag_and_records_them(data: Any) -> None:
    result = search(data, [logistic()], n_trials=30)
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert pruned, [t.state for t in result.trials]
    assert all(t.cv_mean is None and 0 < len(t.scores) < 3 for t in pruned)
    assert result.record["candidates"][0]["pruned"] == len(pruned)
    unpruned = search(data, [logistic()], n_trials=30, pruning=False)
    assert {t.state for t in unpruned.trials} == {"complete"}


@pytest.mark.parametrize(("metric", "direction"), [("f1", "maximize"),
                                                    ("log_loss", "minimize")])
def test_the_best_candidate_wins_by_the_metrics_direction(data: Any, metric: str,
                                                          direction: str) -> None:
    dummy = SearchCandidate("dummy", "dummy", pipe(DummyClassifier(strategy="prior")),
                            space(strategy=["prior", "stratified"]))
    result = search(data, [dummy, logistic()], metric=metric, n_trials=6)
    record = result.record
    assert record["direction"] == direction
    rows = {row["name"]: row for row in record["candidates"]}
    assert rows["dummy"]["trials"] == rows["logistic"]["trials"] == 3  # taken in turn
    assert record["best"]["candidate"] == "logistic"
    better = min if direction == "minimize" else max
    assert record["best"]["cv_mean"] == better(r["cv_mean"] for r in rows.values()
                                               if r["cv_mean"] is not None)
    if metric == "log_loss":
        assert 0 < rows["logistic"]["cv_mean"] < rows["dummy"]["cv_mean"]  # positive units
    assert isinstance(result.model[-1], LogisticRegression)


def test_failed_trials_are_recorded_and_every_failure_is_an_error(data: Any) -> None:
    bad = SearchCandidate("bad", "logistic_regression",
                          pipe(LogisticRegression(solver="lbfgs")),
                          space(penalty=["l1"]))  # lbfgs cannot do l1: each trial fails
    result = search(data, [bad, logistic()], n_trials=4)
    failed = [t for t in result.trials if t.candidate == "bad"]
    assert {t.state for t in failed} == {"failed"} and "l1" in failed[0].error
    assert result.record["best"]["candidate"] == "logistic"
    from conveyor.errors import DataError

    with pytest.raises(DataError, match="every trial of the search failed"):
        search(data, [bad], n_trials=2)


def test_the_search_record_keeps_the_contract(data: Any) -> None:
    record = search(data, [logistic()], n_trials=4).record
    assert {"method", "metric", "direction", "cv", "n_trials", "stopped_by", "best",
            "candidates", "trials"} <= set(record)
    assert set(record["best"]) >= {"candidate", "params", "cv_mean", "cv_std"}
    assert set(record["candidates"][0]) >= {"name", "estimator", "best_params", "cv_mean",
                                            "cv_std", "trials"}
    assert set(record["trials"][0]) >= {"number", "candidate", "params", "cv_mean", "cv_std",
                                        "state", "seconds"}
    assert history_plot(record).startswith(b"\x89PNG")


def test_grid_search_finds_what_fit_model_finds(data: Any) -> None:
    grid = {"C": [0.01, 1.0, 10.0]}
    tune = TuneSpec(method="grid", params=grid, cv=3)
    candidate = SearchCandidate("logistic", "logistic_regression",
                                pipe(LogisticRegression(max_iter=500)), grid)
    result = run_search([candidate], *data, tune=tune, seed=7, positive=1)
    _, facts = fit_model(pipe(LogisticRegression(max_iter=500)), *data, tune=tune, seed=7,
                         positive=1)
    assert result.best["params"] == facts["best_params"]
    assert result.best["cv_mean"] == pytest.approx(facts["cv_best_f1"])
    assert result.record["stopped_by"] == "exhausted" and len(result.trials) == 3


# ---------------------------------------------------------------------- random over ranges
def test_random_search_draws_ranges_within_their_bounds_and_repeats_with_its_seed(
        tmp_path: Path, data: Any) -> None:
    loaded = load_spec(write(tmp_path, CANDIDATES.replace(
        "tune: {method: optuna, metric: f1, cv: 3, n_trials: 8, timeout: 2m}",
        "tune: {method: random, metric: f1, cv: 3, n_iter: 6}")))
    check_spec(loaded, data=False)  # ranges are accepted under random now
    first, forest = loaded.spec.candidates()
    tune = loaded.spec.search()
    assert tune.method == "random" and isinstance(first.space["C"], ParamRange)

    logistic_space = {**first.space, "max_iter": ParamRange(low=100, high=400, log=True)}
    candidates = [SearchCandidate("logistic", "logistic_regression",
                                  pipe(LogisticRegression()), logistic_space),
                  SearchCandidate("forest", "random_forest",
                                  pipe(RandomForestClassifier(random_state=0)),
                                  forest.space)]
    result = run_search(candidates, *data, tune=tune, seed=7, positive=1)
    again = run_search(candidates, *data, tune=tune, seed=7, positive=1)
    assert [t.params for t in result.trials] == [t.params for t in again.trials]
    assert result.record["stopped_by"] == "trials" and len(result.trials) == 12  # 6 each
    logistic = [t.params for t in result.trials if t.candidate == "logistic"]
    assert all(0.001 <= p["C"] <= 100.0 and isinstance(p["C"], float) for p in logistic)
    assert len({p["C"] for p in logistic}) == 6  # drawn, not picked from a list
    assert all(100 <= p["max_iter"] <= 400 and type(p["max_iter"]) is int for p in logistic)
    trees = [t.params for t in result.trials if t.candidate == "forest"]
    assert all(p["n_estimators"] in range(10, 51, 10) for p in trees)  # the step's points
    assert all(0.2 <= p["max_features"] <= 1.0 for p in trees)
    assert all(t.state == "complete" for t in result.trials)


def test_conveyor_validate_takes_ranges_under_random_and_names_a_bad_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conveyor.cli import main

    random = CANDIDATES.replace("tune: {method: optuna, metric: f1, cv: 3, n_trials: 8, "
                                "timeout: 2m}", "tune: {method: random, cv: 3, n_iter: 4}")
    spec = write(tmp_path, random)
    assert main(["validate", str(spec)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["validate", str(spec), "models.0.space.C={low: 10, high: 1}"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "models.0.space.C: low 10 is above high 1" in line
    assert main(["validate", str(spec), "tune.metric=f1_macr"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "tune.metric: unknown metric 'f1_macr'; did you mean 'f1'?" in line


# --------------------------------------------------------- fold scores (ADR 0052)
class _Said(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose predictions are given: the scorers see only labels."""

    def __init__(self, said: Any = None, classes: Any = None) -> None:
        self.said, self.classes = said, classes

    @property
    def classes_(self) -> Any:
        return np.asarray(self.classes, dtype=object)

    def predict(self, X: Any) -> Any:
        return self.said


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1", "specificity"])
@pytest.mark.parametrize(("classes", "positive"), [(["B", "M"], "M"), ([0, 1], 1),
                                                   ([0, 1], 0)])
def test_counted_fold_scores_are_sklearns_to_the_last_bit(metric: str, classes: list[Any],
                                                          positive: Any) -> None:
    from sklearn.metrics import get_scorer

    from conveyor.modeling.metrics import scorer
    from conveyor.modeling.search import _fold_scorer

    counted, sklearns = _fold_scorer(metric, positive), get_scorer(scorer(metric, positive))
    rng = np.random.default_rng(11)
    labels = np.asarray(classes, dtype=object)
    for rows in (1, 2, 7, 91, 114):  # 1 and 2 rows: one class only, undefined ratios
        for _ in range(25):
            y = labels[rng.integers(0, 2, rows)]
            said = np.where(rng.random(rows) < rng.random(), y, labels[rng.integers(0, 2, rows)])
            if isinstance(classes[0], int):
                y, said = y.astype(int), said.astype(int)
            model = _Said(said, classes)
            assert counted(model, None, y) == float(sklearns(model, None, y))


def test_labels_a_binary_count_cannot_take_go_to_sklearns_scorer() -> None:
    from conveyor.modeling.search import _fold_scorer

    three = _Said(np.array(["a", "b", "c"], dtype=object), ["a", "b", "c"])
    with pytest.raises(ValueError, match="binary"):  # sklearn's own refusal, not a count
        _fold_scorer("f1", "a")(three, None, np.array(["a", "b", "b"], dtype=object))
    assert _fold_scorer("accuracy", None)(three, None, np.array(["a", "b", "b"])) == 2 / 3


def test_a_trials_fold_scores_are_what_sklearn_scores_on_those_folds(data: Any) -> None:
    from sklearn.base import clone
    from sklearn.metrics import get_scorer

    from conveyor.modeling.metrics import scorer
    from conveyor.modeling.search import make_folds

    X, y = data
    result = search(data, [logistic()], n_trials=6, pruning=False)
    folds = make_folds(X, y, cv=3, seed=7)
    f1 = get_scorer(scorer("f1", 1))
    for trial in result.trials:
        model = clone(logistic().pipeline).set_params(
            **{f"model__{k}": v for k, v in trial.params.items()})
        expected = [float(f1(clone(model).fit(X.iloc[tr], y.iloc[tr]), X.iloc[te], y.iloc[te]))
                    for tr, te in folds]
        assert trial.scores == expected


def test_the_preprocessing_is_hashed_once_per_candidate(data: Any, monkeypatch: Any) -> None:
    import joblib

    hashed: list[Any] = []
    real = joblib.hash
    monkeypatch.setattr(joblib, "hash", lambda obj, *a, **k: hashed.append(obj) or real(obj))
    result = search(data, [logistic(), logistic("other")], n_trials=8, pruning=False)
    assert len(result.trials) == 8  # 8 trials x 3 folds used the preprocessed folds
    assert len(hashed) == 2 and all(isinstance(h, Pipeline) for h in hashed)


def test_the_history_plot_draws_the_completed_trials(data: Any) -> None:
    """The PNG (zlib level 1 since ADR 0052) decodes, and the candidate's points are in it:
    matplotlib's first colour at alpha 0.8 on white, absent when no trial completed."""
    import io

    from PIL import Image

    def marked(record: dict[str, Any]) -> int:
        image = np.asarray(Image.open(io.BytesIO(history_plot(record))).convert("RGB"))
        assert 500 < image.shape[1] < 700 and 250 < image.shape[0] < 450
        return int((np.abs(image.astype(int) - (76, 146, 195)).max(axis=2) <= 6).sum())

    record = search(data, [logistic()], n_trials=6).record
    assert marked(record) > 50
    none_complete = {**record, "trials": [{**t, "state": "pruned", "cv_mean": None}
                                          for t in record["trials"]]}
    assert marked(none_complete) == 0


# ------------------------------------------------------------------- the step's line
@pytest.mark.parametrize(("stopped_by", "line"), [
    ("trials", "LogisticRegression (logistic_regression, best of 6 trials)"),
    ("exhausted", "LogisticRegression (logistic_regression, best of 6 trials)"),
    # a search its time budget cut short said only "best of 6 trials", as if it had
    # tried what it was asked to
    ("timeout", "LogisticRegression (logistic_regression, best of 6 trials; stopped by "
                "tune.timeout)"),
])
def test_the_train_line_says_when_the_time_budget_stopped_the_search(stopped_by: str,
                                                                     line: str) -> None:
    from conveyor.steps.train import TrainStep

    info = {"search": True, "estimator": "LogisticRegression",
            "candidate": "logistic_regression", "trials": 6, "stopped_by": stopped_by}
    assert TrainStep().summary(info, {}) == line
    # models: without tune: one fit per candidate ("best of 1 trials")
    assert TrainStep().summary({**info, "trials": 1}, {}).startswith(
        "LogisticRegression (logistic_regression, 1 trial")


def test_the_train_line_names_the_decision_threshold() -> None:
    """A tuned ``model.threshold`` (0.64 for F1 on breast cancer) changes every prediction
    near it; the train line said only "LogisticRegression"."""
    from conveyor.steps.train import TrainStep

    assert TrainStep().summary({"estimator": "LogisticRegression", "threshold": 0.6412},
                               {}) == "LogisticRegression, threshold 0.64"
    assert TrainStep().summary({"estimator": "LogisticRegression"}, {}) == "LogisticRegression"


def test_a_search_by_log_loss_needs_an_estimator_with_probabilities(tmp_path: Path) -> None:
    """LinearSVC has no predict_proba: every trial raised AttributeError in scikit-learn's
    scorer, which ended the run as a failure (exit 1, retried under Airflow), after
    `conveyor validate` had passed the spec."""
    body = """\
models:
  - estimator: logistic_regression
  - estimator: linear_svc
    space: {C: {low: 0.01, high: 10.0, log: true}}
tune: {method: optuna, metric: log_loss, cv: 3, n_trials: 3}
"""
    error = spec_error(tmp_path, body, check=True)
    assert error.key == "models.1.estimator" and error.line == 6, error
    assert "tune.metric log_loss scores predicted probabilities, and LinearSVC has no " \
           "predict_proba; use another metric" in str(error)
    check_spec(load_spec(write(tmp_path, body.replace("log_loss", "roc_auc"))), data=False)


def test_log_loss_in_evaluate_needs_an_estimator_with_probabilities(tmp_path: Path) -> None:
    """evaluate's log_loss for LinearSVC took its decision function, clipped into [0, 1],
    for probabilities, and reported a number that means nothing (test_log_loss 0.98)."""
    error = spec_error(tmp_path, "model: {estimator: linear_svc}\n"
                                 "evaluate: {metrics: [accuracy, log_loss]}\n", check=True)
    assert error.key == "model.estimator", error
    assert "evaluate.metrics has log_loss, which scores predicted probabilities, and " \
           "LinearSVC has no predict_proba" in str(error)
    check_spec(load_spec(write(tmp_path, "model: {estimator: linear_svc}\n"
                                         "evaluate: {metrics: [accuracy, roc_auc]}\n")),
               data=False)


def test_a_search_by_roc_auc_without_a_positive_class_needs_probabilities(
        tmp_path: Path) -> None:
    """Without schema.positive_label, roc_auc is one-vs-rest over predict_proba: LinearSVC
    on iris failed every trial with AttributeError (exit 1)."""
    body = """\
name: iris_svc
data: {source: sklearn, name: iris}
schema: {target: target}
models:
  - estimator: linear_svc
tune: {method: optuna, metric: roc_auc, cv: 3, n_trials: 2}
"""
    path = tmp_path / "iris.yaml"
    path.write_text(body)
    with pytest.raises(SpecError) as caught:
        check_spec(load_spec(path), data=False)
    assert caught.value.key == "models.0.estimator"
    assert "tune.metric roc_auc without schema.positive_label (one-vs-rest)" in str(caught.value)
    # with a positive class the decision function ranks the rows: no probabilities needed
    check_spec(load_spec(write(tmp_path, "models:\n  - estimator: linear_svc\n"
                                         "tune: {method: optuna, metric: roc_auc}\n")),
               data=False)


def test_a_written_roc_auc_without_a_positive_class_needs_probabilities(
        tmp_path: Path) -> None:
    """iris with LinearSVC and evaluate.metrics [.., roc_auc]: evaluate left roc_auc out
    without a word, and a gate on test_roc_auc rejected the model, 'was not computed'."""
    path = tmp_path / "iris.yaml"
    path.write_text("name: iris_svc\ndata: {source: sklearn, name: iris}\n"
                    "schema: {target: target}\nmodel: {estimator: linear_svc}\n"
                    "evaluate: {metrics: [accuracy, roc_auc]}\n")
    with pytest.raises(SpecError) as caught:
        check_spec(load_spec(path), data=False)
    assert caught.value.key == "model.estimator"
    assert "evaluate.metrics has roc_auc, which without schema.positive_label (one-vs-rest) " \
           "scores predicted probabilities" in str(caught.value)
