"""The scoring rule the evaluate step and the lab share: binary with a positive label, else
macro averages, under ``train_<metric>`` and ``test_<metric>``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.modeling.evaluation import score_model, scoring_positive


class Fixed:
    """A 'fitted model' whose predictions are given (row i of X is the prediction)."""

    def __init__(self, classes: list[Any]) -> None:
        self.classes_ = np.array(classes)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X["predicted"].to_numpy()


def _rows(truth: list[Any], predicted: list[Any]) -> tuple[pd.DataFrame, pd.Series]:
    return pd.DataFrame({"predicted": predicted}), pd.Series(truth)


TRUTH = ["M", "M", "M", "B", "B", "B", "B", "B"]
PRED = ["M", "B", "B", "B", "B", "B", "B", "M"]
# for M: tp=1, fp=1, fn=2 -> precision 1/2, recall 1/3, f1 0.4
# for B: tp=4, fp=2, fn=1 -> precision 2/3, recall 4/5, f1 8/11


def test_binary_metrics_are_of_the_positive_label() -> None:
    model = Fixed(["B", "M"])
    rows = _rows(TRUTH, PRED)
    positive = scoring_positive("M", rows[1])
    assert positive == "M"
    scores = score_model(model, rows, rows, metrics=["accuracy", "precision", "recall", "f1"],
                         positive=positive)
    assert scores == pytest.approx({
        "train_accuracy": 5 / 8, "test_accuracy": 5 / 8,
        "train_precision": 1 / 2, "test_precision": 1 / 2,
        "train_recall": 1 / 3, "test_recall": 1 / 3,
        "train_f1": 0.4, "test_f1": 0.4,
    })


def test_without_a_positive_label_metrics_are_macro_averages() -> None:
    model = Fixed(["B", "M"])
    rows = _rows(TRUTH, PRED)
    assert scoring_positive(None, rows[1]) is None
    scores = score_model(model, rows, rows, metrics=["precision", "recall", "f1"],
                         positive=None)
    assert scores["test_precision"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert scores["test_recall"] == pytest.approx((1 / 3 + 4 / 5) / 2)
    assert scores["test_f1"] == pytest.approx((0.4 + 8 / 11) / 2)


def test_a_positive_label_on_a_multiclass_target_means_macro() -> None:
    y = pd.Series([0, 1, 2, 1])
    assert scoring_positive("1", y) is None
    assert scoring_positive("1", pd.Series([0, 1, 1])) == 1  # in the target's own type


def test_train_and_test_are_scored_on_their_own_rows() -> None:
    model = Fixed([0, 1, 2])
    train = _rows([0, 1, 2], [0, 1, 2])
    test = _rows([0, 1, 2], [0, 1, 1])
    scores = score_model(model, train, test, metrics=["accuracy"], positive=None)
    assert scores == pytest.approx({"train_accuracy": 1.0, "test_accuracy": 2 / 3})
