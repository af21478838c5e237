"""The schema a pipeline's data is expected to keep, and how a new table differs from it.

As TensorFlow Data Validation does: the first run infers a schema (each column's kind,
range, categories and missing share) and saves it with the pipeline; later runs compare
their table with it and report new and missing columns, changed kinds, values out of the
saved range, categories never seen, and missing shares that jumped. A user accepts a new
schema with ``conveyor schema accept SPEC`` (ADR 0046).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from conveyor.validation.problems import Problem, RowNamer, plain

__all__ = ["MAX_CATEGORIES", "SCHEMA_VERSION", "compare_schema", "infer_schema"]

SCHEMA_VERSION = 1
#: A text column with more distinct values than this is free text: its values are not listed.
MAX_CATEGORIES = 100


def _kind(column: Any) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(column):
        return "bool"
    if pd.api.types.is_numeric_dtype(column):
        return "numeric"
    return "categorical"


def infer_schema(frame: Any, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """The schema of ``frame`` (JSON-able): per column its kind, dtype, missing share, and
    its range (numeric) or categories (text with at most :data:`MAX_CATEGORIES` values)."""
    import numpy as np

    out: dict[str, Any] = {}
    for name in columns if columns is not None else list(frame.columns):
        column = frame[name]
        kind = _kind(column)
        entry: dict[str, Any] = {"kind": kind, "dtype": str(column.dtype),
                                 "missing_share": round(float(column.isna().mean()), 6)}
        if kind == "numeric":
            values = column.to_numpy(dtype=float, na_value=np.nan)
            finite = values[np.isfinite(values)]
            entry["min"] = float(finite.min()) if finite.size else None
            entry["max"] = float(finite.max()) if finite.size else None
        elif kind == "categorical":
            distinct = column.dropna().astype(str).unique()
            entry["categories"] = sorted(distinct.tolist()) if len(distinct) <= MAX_CATEGORIES \
                else None
        out[str(name)] = entry
    return {"version": SCHEMA_VERSION, "rows": len(frame), "columns": out}


def compare_schema(frame: Any, saved: Mapping[str, Any], drift: Any, *, source: str,
                   namer: RowNamer, ignore: Sequence[str] = ()) -> list[Problem]:
    """How ``frame`` differs from the ``saved`` schema, one problem per finding.

    Args:
        frame: the validated table (before rows are dropped for drift: nothing is).
        saved: a schema from :func:`infer_schema`.
        drift: ``validate.drift`` (its policy and thresholds).
        ignore: columns the table lacks on purpose (already reported elsewhere).
    """
    import numpy as np

    policy = drift.policy
    known: Mapping[str, Any] = saved.get("columns", {})
    problems: list[Problem] = []

    def add(column: str | None, message: str, rows: Any = (), count: int = 0) -> None:
        problems.append(Problem("drift", f"{source}: {message}", column, list(rows), policy,
                                count))

    for name in frame.columns:
        if name not in known:
            add(name, f"column {name!r} is new: the saved schema does not have it (accept "
                      "the new schema with conveyor schema accept)")
    for name in known:
        if name not in frame.columns and name not in ignore:
            add(name, f"column {name!r} of the saved schema is missing")
    for name, entry in known.items():
        if name not in frame.columns:
            continue
        column = frame[name]
        kind = _kind(column)
        if kind != entry.get("kind"):
            add(name, f"column {name!r} changed type: {entry.get('kind')} "
                      f"({entry.get('dtype')}) in the saved schema, {kind} ({column.dtype}) now")
            continue
        present = column.notna().to_numpy()
        rows_present = int(present.sum())
        share = 1.0 - rows_present / len(column) if len(column) else 0.0
        jump = share - float(entry.get("missing_share") or 0.0)
        if jump > drift.max_missing_increase:
            add(name, f"column {name!r} is {share:.1%} missing, {entry['missing_share']:.1%} "
                      f"in the saved schema (+{jump:.1%}, over validate.drift."
                      f"max_missing_increase={drift.max_missing_increase:g})", count=int(
                          len(column) - rows_present))
        if not rows_present:
            continue
        if kind == "numeric" and entry.get("min") is not None:
            values = column.to_numpy(dtype=float, na_value=np.nan)
            low, high = float(entry["min"]), float(entry["max"])
            outside = present & ((values < low) | (values > high))
            n = int(outside.sum())
            if n / rows_present > drift.max_out_of_range_share:
                rows = np.flatnonzero(outside)
                add(name, f"column {name!r}: {n} values ({n / rows_present:.1%}) are outside "
                          f"the saved range [{_num(low)}, {_num(high)}], over validate.drift."
                          f"max_out_of_range_share={drift.max_out_of_range_share:g}: "
                          f"{namer.rows(rows, values=values[rows[:5]])}", rows, n)
        elif kind == "categorical" and entry.get("categories") is not None:
            seen = set(entry["categories"])
            text = column.astype(str)
            unseen = present & ~text.isin(seen).to_numpy()
            n = int(unseen.sum())
            if n / rows_present > drift.max_out_of_range_share:
                rows = np.flatnonzero(unseen)
                new = sorted({str(plain(v)) for v in text.iloc[rows].unique()[:6]})
                add(name, f"column {name!r}: {n} values ({n / rows_present:.1%}) are categories "
                          f"never seen ({', '.join(repr(v) for v in new[:5])}), over "
                          f"validate.drift.max_out_of_range_share="
                          f"{drift.max_out_of_range_share:g}: {namer.rows(rows)}", rows, n)
    return problems


def _num(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else str(value)
