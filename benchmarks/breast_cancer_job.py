"""The breast-cancer job both hand-written scripts share (plain_breast_cancer.py and
baseline_breast_cancer.py): the work Conveyor's ``examples/breast_cancer/pipeline.yaml`` does
before any tracking.

Read the raw WDBC CSV with pandas, a stratified 80/20 split (seed 42), median imputer +
StandardScaler + LogisticRegression(C=1, max_iter=1000) as one sklearn Pipeline, and
accuracy/precision/recall/F1/ROC AUC on train and test (M is the positive class). pandas and
scikit-learn are imported inside :func:`prepare`, so a script's ``--help`` stays cheap and the
imports count in the timed process as they did before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

FEATURES = [
    f"{name}_{stat}"
    for stat in ("mean", "se", "worst")
    for name in ("radius", "texture", "perimeter", "area", "smoothness", "compactness",
                 "concavity", "concave_points", "symmetry", "fractal_dimension")
]
COLUMNS = ["id", "diagnosis", *FEATURES]
PARAMS = {"C": 1.0, "max_iter": 1000}
SEED, TEST_SIZE, POSITIVE = 42, 0.2, "M"


@dataclass(frozen=True)
class Prepared:
    """What :func:`prepare` gives: the raw table, the split, the fitted model, its metrics."""

    frame: Any
    X_train: Any
    X_test: Any
    y_train: Any
    y_test: Any
    model: Any
    results: dict[str, float]


def prepare(data: Path) -> Prepared:
    """Read ``data`` (the raw WDBC file), split it, fit the Pipeline and score both splits."""
    import pandas as pd
    from sklearn import metrics as m
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(data, header=None, names=COLUMNS, na_values=["?", ""])
    X, y = frame[FEATURES], frame["diagnosis"]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, stratify=y, random_state=SEED)

    model = Pipeline([
        ("impute", SimpleImputer(strategy="median")),
        ("scale", StandardScaler()),
        ("model", LogisticRegression(**PARAMS)),
    ]).fit(X_train, y_train)

    positive_column = list(model.classes_).index(POSITIVE)
    results: dict[str, float] = {}
    for split, (X_s, y_s) in {"train": (X_train, y_train), "test": (X_test, y_test)}.items():
        predicted = model.predict(X_s)
        scores = model.predict_proba(X_s)[:, positive_column]
        results[f"{split}_accuracy"] = m.accuracy_score(y_s, predicted)
        results[f"{split}_precision"] = m.precision_score(y_s, predicted, pos_label=POSITIVE)
        results[f"{split}_recall"] = m.recall_score(y_s, predicted, pos_label=POSITIVE)
        results[f"{split}_f1"] = m.f1_score(y_s, predicted, pos_label=POSITIVE)
        results[f"{split}_roc_auc"] = m.roc_auc_score(y_s == POSITIVE, scores)
    return Prepared(frame, X_train, X_test, y_train, y_test, model,
                    {k: float(v) for k, v in results.items()})
