"""One scorer: every metric comes from modeling.metrics.label_metrics (issue 9)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_score

from conveyor.modeling.metrics import classification_metrics, label_metrics


def test_binary_metrics_use_the_positive_class() -> None:
    y_true = np.array(["M", "M", "B", "B", "B"])
    y_pred = np.array(["M", "B", "B", "B", "M"])
    got = label_metrics(y_true, y_pred, ["accuracy", "precision", "f1"], positive="M")
    assert got == {"accuracy": pytest.approx(0.6), "precision": pytest.approx(0.5),
                   "f1": pytest.approx(f1_score(y_true, y_pred, pos_label="M"))}
    assert got["f1"] != pytest.approx(f1_score(y_true, y_pred, pos_label="B"))


def test_without_a_positive_class_metrics_are_macro_averaged() -> None:
    y_true, y_pred = [0, 1, 2, 2], [0, 2, 2, 2]
    got = label_metrics(y_true, y_pred, ["precision", "recall"])
    assert got["precision"] == pytest.approx(precision_score(y_true, y_pred, average="macro",
                                                             zero_division=0))
    assert got["recall"] == pytest.approx(2 / 3)


def test_score_metrics_are_left_out_without_scores() -> None:
    assert label_metrics([0, 1], [0, 1], ["accuracy", "roc_auc", "log_loss"]) == {
        "accuracy": 1.0}


def test_classification_metrics_are_label_metrics_with_the_split_prefix() -> None:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    names = ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]
    got = classification_metrics(model, X, y, split="test", metrics=names, positive=None)
    expected = label_metrics(y, model.predict(X), names, scores=model.predict_proba(X),
                             labels=list(model.classes_))
    assert got == {f"test_{k}": v for k, v in expected.items()}
    assert set(got) == {f"test_{n}" for n in names}
