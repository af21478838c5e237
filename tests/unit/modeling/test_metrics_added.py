"""PR AUC, specificity and balanced accuracy: against scikit-learn and hand-computed values,
on held-out labels and as cross-validation scorers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_score

from conveyor.modeling.metrics import (
    classification_metrics,
    label_metric_rows,
    label_metrics,
    pr_auc_score,
    scorer,
    specificity_score,
)

Y_TRUE = ["M", "B", "B", "B", "M", "B"]
Y_PRED = ["M", "M", "B", "B", "B", "B"]


def test_specificity_is_the_true_negative_rate_of_the_positive_class() -> None:
    # negatives (B): 4 rows, one predicted M -> 3/4; with B positive: negatives M, 1 of 2 right
    assert specificity_score(Y_TRUE, Y_PRED, positive="M") == 0.75
    assert specificity_score(Y_TRUE, Y_PRED, positive="B") == 0.5
    # macro over the classes for multiclass: the mean of the two above
    assert specificity_score(Y_TRUE, Y_PRED) == pytest.approx(0.625)


def test_balanced_accuracy_and_specificity_through_label_metrics() -> None:
    got = label_metrics(Y_TRUE, Y_PRED, ["balanced_accuracy", "specificity", "recall"],
                        positive="M")
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(Y_TRUE, Y_PRED))
    assert got["balanced_accuracy"] == pytest.approx((0.5 + 0.75) / 2)  # mean of recalls
    assert got["specificity"] == 0.75 and got["recall"] == 0.5


def test_pr_auc_is_average_precision_by_hand_and_by_sklearn() -> None:
    y, scores = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    # ranked: 0.8 (hit: P=1, R=.5), 0.4 (miss), 0.35 (hit: P=2/3, R=1) -> .5*1 + .5*2/3
    assert pr_auc_score(y, scores, positive=1) == pytest.approx(0.5 + 0.5 * 2 / 3)
    got = label_metrics(y, [0, 1, 0, 1], ["pr_auc"], positive=1, scores=np.array(scores))
    assert got["pr_auc"] == pytest.approx(average_precision_score(y, scores))
    # without scores PR AUC is undefined: left out, not zero
    assert label_metrics(y, [0, 1, 0, 1], ["pr_auc"], positive=1) == {}


def test_multiclass_pr_auc_is_the_macro_average_of_one_vs_rest() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    proba = np.array([[.8, .1, .1], [.2, .7, .1], [.1, .2, .7],
                      [.3, .6, .1], [.5, .4, .1], [.2, .2, .6]])
    expected = np.mean([average_precision_score(y == k, proba[:, k]) for k in range(3)])
    assert pr_auc_score(y, proba, labels=[0, 1, 2]) == pytest.approx(expected)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 4))
    y = np.where(X[:, 0] + 0.8 * rng.normal(size=240) > 0.4, "M", "B")
    return X, y


@pytest.mark.parametrize("metric", ["pr_auc", "specificity", "balanced_accuracy"])
def test_scorers_give_the_fold_values_label_metrics_gives(data, metric: str) -> None:
    X, y = data
    folds = list(StratifiedKFold(3, shuffle=True, random_state=1).split(X, y))
    got = cross_val_score(LogisticRegression(), X, y, cv=folds, scoring=scorer(metric, "M"))
    for value, (train, test) in zip(got, folds, strict=True):
        model = LogisticRegression().fit(X[train], y[train])
        expected = classification_metrics(model, X[test], y[test], split="f",
                                          metrics=[metric], positive="M")[f"f_{metric}"]
        assert value == pytest.approx(expected)


def test_pr_auc_scorer_scores_the_positive_class_not_the_second_one(data) -> None:
    X, y = data  # classes_ are [B, M]: the scorer for B must not score M's column
    as_m = cross_val_score(LogisticRegression(), X, y, cv=3, scoring=scorer("pr_auc", "M"))
    as_b = cross_val_score(LogisticRegression(), X, y, cv=3, scoring=scorer("pr_auc", "B"))
    assert not np.allclose(as_m, as_b)
    assert (as_m > 0.5).all() and (as_b > 0.5).all()


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1", "specificity"])
def test_metric_rows_equal_label_metrics_row_by_row(metric: str) -> None:
    rng = np.random.default_rng(2)
    y = rng.choice(["M", "B"], size=40)
    predictions = rng.choice(["M", "B"], size=(6, 40))
    predictions[0] = "B"  # no positive predicted: precision 0, as label_metrics says
    got = label_metric_rows(y, predictions, metric, positive="M")
    expected = [label_metrics(y, row, [metric], positive="M")[metric] for row in predictions]
    np.testing.assert_allclose(got, expected)


def test_permutation_importance_ranks_the_informative_column_first(data) -> None:
    import pandas as pd

    from conveyor.modeling.plots import permutation_importance

    X, y = data  # only column 0 carries the target
    frame = pd.DataFrame(X, columns=["signal", "n1", "n2", "n3"])
    model = LogisticRegression().fit(frame, y)
    got = permutation_importance(model, frame, pd.Series(y), metric="f1", positive="M",
                                 seed=0)
    assert got["features"][0] == "signal" and got["mean"][0] > 0.1
    assert got["repeats"] == 5 and got["rows"] == 240
    assert permutation_importance(model, frame, pd.Series(y), metric="f1", positive="M",
                                  seed=0) == got  # seeded
