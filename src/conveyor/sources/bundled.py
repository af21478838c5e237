"""Data sets bundled with scikit-learn, shaped like their raw upstream files."""

from __future__ import annotations

from typing import Any

import pandas as pd

from conveyor.spec.models import SklearnSource

__all__ = ["read_sklearn_source"]


def _wdbc_name(sklearn_name: str) -> str:
    # "mean radius" -> radius_mean, "radius error" -> radius_se, "worst concave points" -> ...
    words = sklearn_name.replace("concave points", "concave_points").replace(
        "fractal dimension", "fractal_dimension").split()
    if words[0] in ("mean", "worst"):
        return f"{words[1]}_{words[0]}"
    return f"{words[0]}_se"


def read_sklearn_source(source: SklearnSource) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Load a bundled data set; ``breast_cancer`` matches the raw WDBC file's names and labels.

    The target column is named ``diagnosis`` (M/B) for breast_cancer and ``target`` (class
    names) otherwise; diabetes's ``target`` is a number (disease progression one year after
    baseline, 25 to 346; its features unscaled, as in the original data).
    """
    from sklearn import datasets

    loader = getattr(datasets, f"load_{source.name}")
    if source.name == "diabetes":
        frame = loader(as_frame=True, scaled=False).frame.copy()
        return frame, {"uri": "sklearn://diabetes", "bytes": 0, "first_line": None,
                       "lines": None, "format": "sklearn"}
    bunch = loader(as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    names = list(bunch.target_names)
    if source.name == "breast_cancer":
        frame.columns = [*(_wdbc_name(c) for c in bunch.feature_names), "target"]
        frame.insert(0, "diagnosis", frame.pop("target").map({0: "M", 1: "B"}))
    else:
        frame.columns = [str(c).replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
        frame["target"] = frame["target"].map(dict(enumerate(names)))
    # no file, so no lines: errors name rows only
    return frame, {"uri": f"sklearn://{source.name}", "bytes": 0, "first_line": None,
                   "lines": None, "format": "sklearn"}
