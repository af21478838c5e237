"""The reference profile: what the training data and the model's predictions on it looked like.

Saved by the train step as :data:`PROFILE_FILE` inside the model folder, before the folder is
hashed, so every copy of the model (the Store's, the export, the registered version) carries
it and it is verified with the model's sha256 (docs/decisions/0035). A served model finds it
at ``LoadedModel.folder / PROFILE_FILE``.

Per feature:

* numeric: ``missing_share``, ``min``, ``max``, ``edges`` (the training deciles, duplicates
  removed: bin *i* holds ``edges[i-1] < x <= edges[i]``, the first and last are open),
  ``shares`` (the training rows' share per bin, of the non-missing ones) and ``sample``: at
  most :data:`SAMPLE_POINTS` evenly spaced quantiles, the sorted values themselves when there
  are fewer rows (what the KS test compares with);
* categorical: ``missing_share`` and ``frequencies`` (share of the non-missing rows per
  value, the :data:`MAX_CATEGORIES` most frequent; the rest are ``other_share``).

The predictions: a classifier's class shares, or a regressor's numeric profile.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from conveyor.ids import now_iso

__all__ = [
    "MAX_CATEGORIES",
    "PROFILE_FILE",
    "PROFILE_FORMAT",
    "SAMPLE_POINTS",
    "bin_shares",
    "build_profile",
    "numeric_profile",
    "profile_bytes",
    "read_profile",
    "write_profile",
]

PROFILE_FILE = "conveyor_profile.json"
PROFILE_FORMAT = 1
SAMPLE_POINTS = 500
MAX_CATEGORIES = 50
BINS = 10


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _is_numeric(series: Any) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def bin_shares(values: np.ndarray, edges: Sequence[float]) -> list[float]:
    """The share of ``values`` in each bin of ``edges`` (``len(edges) + 1`` bins).

    Bin *i* holds ``edges[i-1] < x <= edges[i]``; the first bin is everything up to
    ``edges[0]``, the last everything above ``edges[-1]``.

    >>> bin_shares(np.array([1.0, 2.0, 3.0, 4.0]), [2.0])
    [0.5, 0.5]
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return [0.0] * (len(edges) + 1)
    index = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return [float(c) / values.size for c in counts]


def numeric_profile(series: Any) -> dict[str, Any]:
    """The profile of one numeric column (see the module's docstring)."""
    import pandas as pd

    raw = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    rows = int(raw.size)
    finite = raw[np.isfinite(raw)]
    out: dict[str, Any] = {"kind": "numeric", "rows": rows,
                           "missing_share": float(1 - finite.size / rows) if rows else 0.0}
    if finite.size == 0:
        return {**out, "min": None, "max": None, "edges": [], "shares": [1.0], "sample": []}
    edges = sorted({float(q) for q in np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1])})
    points = min(int(finite.size), SAMPLE_POINTS)
    sample = np.quantile(finite, np.linspace(0, 1, points)) if points > 1 else finite[:1]
    return {**out, "min": float(finite.min()), "max": float(finite.max()), "edges": edges,
            "shares": bin_shares(finite, edges), "sample": [float(v) for v in sample]}


def categorical_profile(series: Any) -> dict[str, Any]:
    """The profile of one categorical column (see the module's docstring)."""
    rows = len(series)
    present = series.dropna().astype(str)
    out: dict[str, Any] = {"kind": "categorical", "rows": rows,
                           "missing_share": float(1 - len(present) / rows) if rows else 0.0}
    if present.empty:
        return {**out, "frequencies": {}, "other_share": 0.0}
    shares = present.value_counts(normalize=True)
    top = shares.iloc[:MAX_CATEGORIES]
    return {**out, "frequencies": {str(k): float(v) for k, v in top.items()},
            "other_share": float(max(0.0, 1.0 - float(top.sum())))}


def build_profile(frame: Any, features: Sequence[str], predictions: Any, *,
                  classes: Sequence[Any] | None, target: str | None = None) -> dict[str, Any]:
    """The reference profile of ``frame``'s ``features`` and the model's ``predictions``.

    Args:
        frame: the training split (a DataFrame holding the feature columns).
        features: the model's input columns.
        predictions: the model's predicted labels (or values) for ``frame``'s rows.
        classes: a classifier's classes (``None`` for a regressor).
        target: the label column's name (shown in reports, used to read labels files).
    """
    import pandas as pd

    profiled: dict[str, Any] = {}
    for name in features:
        column = frame[name]
        profiled[name] = numeric_profile(column) if _is_numeric(column) else \
            categorical_profile(column)
    predicted = pd.Series(np.asarray(predictions))
    if classes is not None:
        shares = predicted.astype(str).value_counts(normalize=True)
        prediction: dict[str, Any] = {
            "kind": "classes", "classes": [_plain(c) for c in classes],
            "shares": {str(c): float(shares.get(str(c), 0.0)) for c in classes}}
    else:
        prediction = numeric_profile(predicted)
    return {"format": PROFILE_FORMAT, "created_at": now_iso(), "rows": len(frame),
            "target": target, "features": profiled, "prediction": prediction}


def _finite(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, Mapping):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data


def profile_bytes(profile: Mapping[str, Any]) -> bytes:
    """``profile`` as the bytes of :data:`PROFILE_FILE` (strict JSON: NaN becomes null)."""
    return (json.dumps(_finite(profile), sort_keys=True, allow_nan=False) + "\n").encode()


def write_profile(profile: Mapping[str, Any], folder: Path) -> Path:
    """Write ``profile`` as :data:`PROFILE_FILE` into a (model) folder; its path."""
    path = Path(folder) / PROFILE_FILE
    path.write_bytes(profile_bytes(profile))
    return path


def read_profile(folder: Path) -> dict[str, Any] | None:
    """The profile saved in a model folder, or ``None`` for a model trained without one."""
    path = Path(folder) / PROFILE_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
        return None
    return data
