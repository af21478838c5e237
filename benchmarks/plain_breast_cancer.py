"""The plain script: the breast-cancer job with pandas and scikit-learn only, no MLflow.

What a careful engineer writes when nothing needs tracking: read the raw WDBC CSV with pandas,
a stratified 80/20 split (seed 42), median imputer + StandardScaler + LogisticRegression(C=1,
max_iter=1000) as one sklearn Pipeline, accuracy/precision/recall/F1/ROC AUC on train and test
(M is the positive class), and the metrics JSON and the fitted model written to an output
folder. The model is saved with joblib (it ships with scikit-learn; ``--format skops`` saves
with skops instead, as Conveyor's model format does).

It is the floor of issue 11's speed targets: ``conveyor run`` on a fresh home within 2x its
time, a cached re-run within 1.3x (benchmarks/run_breast_cancer.py).

Usage::

    python benchmarks/plain_breast_cancer.py --data wdbc.data --out /tmp/fresh-folder
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FEATURES = [
    f"{name}_{stat}"
    for stat in ("mean", "se", "worst")
    for name in ("radius", "texture", "perimeter", "area", "smoothness", "compactness",
                 "concavity", "concave_points", "symmetry", "fractal_dimension")
]
COLUMNS = ["id", "diagnosis", *FEATURES]
PARAMS = {"C": 1.0, "max_iter": 1000}
SEED, TEST_SIZE, POSITIVE = 42, 0.2, "M"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, required=True, help="the raw WDBC file")
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics and model")
    parser.add_argument("--format", choices=("joblib", "skops"), default="joblib",
                        help="how the model is saved (default joblib)")
    args = parser.parse_args(argv)

    import pandas as pd
    from sklearn import metrics as m
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(args.data, header=None, names=COLUMNS, na_values=["?", ""])
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
    results = {k: float(v) for k, v in results.items()}

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    if args.format == "skops":
        import skops.io

        skops.io.dump(model, out / "model.skops")
    else:
        import joblib

        joblib.dump(model, out / "model.joblib")
    print(f"test_accuracy={results['test_accuracy']:.4f} test_f1={results['test_f1']:.4f} "
          f"model {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
