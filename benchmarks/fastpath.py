"""One-row (and 1,000-row) predict latency in process: scikit-learn vs the compiled path.

For each pipeline (the shapes Conveyor trains, fitted here on scikit-learn's bundled breast
cancer data: no MLflow, no files), times with :mod:`timeit`:

  sklearn      ``pipeline.predict_proba(one_row_dataframe)`` (what a server does today)
  compiled     ``ServingModel.predict(one_row_float64_array)`` (labels and probabilities,
               through :mod:`conveyor.serving.fastpath`)
  fallback     ``ServingModel.predict_sklearn(array)`` (the same object, scikit-learn path:
               array -> DataFrame -> predict_proba -> labels)

Each figure is the best of ``--repeat`` rounds of ``--number`` calls (best-of, as timeit
advises: the minimum is the least disturbed by other processes on this shared machine).
Prints a Markdown table; ``--json PATH`` writes the figures too.

Usage::

    .venv/bin/python benchmarks/fastpath.py [--number 2000] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import timeit
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from conveyor.serving.model import Feature, LoadedModel, ModelIdentity
from conveyor.serving.runtime import build_serving_model


def conveyor_shape(model: Any, names: list[str], scaler: Any = None) -> Pipeline:
    """What ``preprocess: {numeric: {impute: median, scale: standard}}`` builds."""
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")),
                        ("scale", scaler or StandardScaler())])
    return Pipeline([("preprocess", ColumnTransformer([("numeric", numeric, names)],
                                                      verbose_feature_names_out=False)),
                     ("model", model)])


def pipelines(names: list[str]) -> dict[str, Pipeline]:
    return {
        "median+standard+logistic (breast_cancer example)":
            conveyor_shape(LogisticRegression(max_iter=1000), names),
        "median+minmax+logistic, 3 classes":
            conveyor_shape(LogisticRegression(max_iter=1000), names, MinMaxScaler()),
        "median+standard+decision tree (depth 8)":
            conveyor_shape(DecisionTreeClassifier(max_depth=8, random_state=0), names),
        "median+standard+random forest (100 trees)":
            conveyor_shape(RandomForestClassifier(n_estimators=100, random_state=0), names),
        "median+standard+extra trees (100 trees)":
            conveyor_shape(ExtraTreesClassifier(n_estimators=100, random_state=0), names),
        "median+standard+gradient boosting (100 stages, depth 3)":
            conveyor_shape(GradientBoostingClassifier(random_state=0), names),
    }


def serving_model(pipe: Pipeline, frame: pd.DataFrame, folder: Path) -> Any:
    example = frame.head(5)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "input_example.json").write_text(json.dumps(
        {"columns": list(example.columns), "data": example.values.tolist()}))
    identity = ModelIdentity(uri="bench", kind="folder", name="bench", version="1", alias=None,
                             run_id=None, sha256="0" * 64, location="bench")
    loaded = LoadedModel(identity=identity, estimator=pipe,
                         features=tuple(Feature(c, "double") for c in frame.columns),
                         classes=tuple(c.item() for c in pipe.classes_), folder=folder)
    return build_serving_model(loaded)


def best(fn: Any, number: int, repeat: int) -> float:
    """Seconds per call, best of ``repeat`` rounds of ``number`` calls."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def measure(pipe: Pipeline, model: Any, frame: pd.DataFrame, n: int, r: int) -> dict[str, float]:
    one_frame = frame.iloc[[7]]
    one = model.as_array(one_frame)
    batch_frame = frame.sample(1000, replace=True, random_state=0)
    batch = model.as_array(batch_frame)
    gap = float(np.max(np.abs(model.predict(batch).proba - pipe.predict_proba(batch_frame))))
    return {
        "max_abs_difference": gap,
        "sklearn_1": best(lambda: pipe.predict_proba(one_frame), max(n // 10, 50), r),
        "fallback_1": best(lambda: model.predict_sklearn(one), max(n // 10, 50), r),
        "compiled_1": best(lambda: model.predict(one), n, r),
        "sklearn_1000": best(lambda: pipe.predict_proba(batch_frame), 20, r),
        "compiled_1000": best(lambda: model.predict(batch), 20, r),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    names = list(frame.columns)
    y2 = data.target.to_numpy()
    y3 = np.digitize(frame["mean_radius"], np.quantile(frame["mean_radius"], [1 / 3, 2 / 3]))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, pipe) in enumerate(pipelines(names).items()):
            pipe.fit(frame, y3 if "3 classes" in label else y2)
            model = serving_model(pipe, frame, Path(tmp) / str(i))
            assert model.compiled, (label, model.fallback_reason)
            rows.append({"pipeline": label, **measure(pipe, model, frame, args.number,
                                                      args.repeat)})
    print("| pipeline | sklearn 1 row | compiled 1 row | speed-up | sklearn 1,000 rows "
          "| compiled 1,000 rows | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['pipeline']} | {row['sklearn_1'] * 1e6:,.0f} µs "
              f"| {row['compiled_1'] * 1e6:,.1f} µs "
              f"| {row['sklearn_1'] / row['compiled_1']:,.0f}× "
              f"| {row['sklearn_1000'] * 1e3:,.2f} ms | {row['compiled_1000'] * 1e3:,.2f} ms "
              f"| {row['max_abs_difference']:.1e} |")
    print("\n(ServingModel.predict_sklearn, the fallback, one row: "
          + ", ".join(f"{r['fallback_1'] * 1e6:,.0f} µs" for r in rows) + ")")
    if args.json:
        args.json.write_text(json.dumps({
            "rows": rows, "number": args.number, "repeat": args.repeat,
            "python": platform.python_version(), "sklearn": sklearn.__version__,
            "numpy": np.__version__, "machine": platform.machine()}, indent=2))


if __name__ == "__main__":
    main()
