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

from conveyor.validation.problems import SAMPLES, Problem, RowNamer, plain

__all__ = ["MAX_CATEGORIES", "SCHEMA_VERSION", "ColumnStats", "TableStats", "compare_schema",
           "compare_stats", "infer_schema"]

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


class ColumnStats:
    """What the schema and its comparison need of one column, gathered chunk by chunk.

    Counts, the finite range, up to :data:`MAX_CATEGORIES` + 1 distinct texts, and, against a
    saved entry, the values outside its range or categories: their count, the first
    :data:`~conveyor.validation.problems.SAMPLES` rows (with values) and the first six unseen
    categories. Feeding a whole table as one chunk gives what feeding it in chunks gives
    (ADR 0051).
    """

    def __init__(self, saved: Mapping[str, Any] | None = None) -> None:
        self.saved = saved or {}
        self.kind: str | None = None
        self.dtype = ""
        self.rows = self.missing = self.outside = 0
        self.low: float | None = None
        self.high: float | None = None
        self.categories: dict[str, None] = {}  # insertion-ordered set, capped
        self.first_rows: list[int] = []
        self.first_values: list[Any] = []
        self.unseen: dict[str, None] = {}

    def update(self, column: Any) -> None:
        """Add a chunk (indexed by its rows' positions in the whole table)."""
        import numpy as np

        self.kind, self.dtype = _kind(column), str(column.dtype)
        present = column.notna().to_numpy()
        self.rows += len(column)
        self.missing += int(len(column) - present.sum())
        if self.kind == "numeric":
            values = column.to_numpy(dtype=float, na_value=np.nan)
            finite = values[np.isfinite(values)]
            if finite.size:
                low, high = float(finite.min()), float(finite.max())
                self.low = low if self.low is None else min(self.low, low)
                self.high = high if self.high is None else max(self.high, high)
            if self.saved.get("kind") == "numeric" and self.saved.get("min") is not None:
                lo, hi = float(self.saved["min"]), float(self.saved["max"])
                outside = np.flatnonzero(present & ((values < lo) | (values > hi)))
                self._outside(column.index[outside], values[outside])
        elif self.kind == "categorical":
            text = column[present].astype(str)
            if len(self.categories) <= MAX_CATEGORIES:
                for value in text.unique()[:MAX_CATEGORIES + 1]:
                    self.categories.setdefault(value, None)
            if self.saved.get("kind") == "categorical" and \
                    self.saved.get("categories") is not None:
                unseen = ~text.isin(set(self.saved["categories"])).to_numpy()
                self._outside(text.index[unseen], text.to_numpy()[unseen])
                for value in text[unseen].unique()[:6]:
                    if len(self.unseen) < 6:
                        self.unseen.setdefault(str(plain(value)), None)

    def _outside(self, rows: Any, values: Any) -> None:
        self.outside += len(rows)
        room = SAMPLES - len(self.first_rows)
        if room > 0:
            self.first_rows += [int(r) for r in rows[:room]]
            self.first_values += list(values[:room])

    def entry(self) -> dict[str, Any]:
        """This column's entry of the schema :func:`infer_schema` writes."""
        share = self.missing / self.rows if self.rows else float("nan")
        entry: dict[str, Any] = {"kind": self.kind, "dtype": self.dtype,
                                 "missing_share": round(float(share), 6)}
        if self.kind == "numeric":
            entry["min"], entry["max"] = self.low, self.high
        elif self.kind == "categorical":
            entry["categories"] = (sorted(self.categories) if len(self.categories)
                                   <= MAX_CATEGORIES else None)
        return entry


class TableStats:
    """:class:`ColumnStats` of some columns of a table, gathered chunk by chunk."""

    def __init__(self, columns: Sequence[str], saved: Mapping[str, Any] | None = None) -> None:
        known = (saved or {}).get("columns", {})
        self.columns = {str(name): ColumnStats(known.get(name)) for name in columns}
        self.rows = 0

    def update(self, frame: Any) -> None:
        self.rows += len(frame)
        for name, stats in self.columns.items():
            stats.update(frame[name])

    def schema(self) -> dict[str, Any]:
        return {"version": SCHEMA_VERSION, "rows": self.rows,
                "columns": {name: stats.entry() for name, stats in self.columns.items()}}


def infer_schema(frame: Any, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """The schema of ``frame`` (JSON-able): per column its kind, dtype, missing share, and
    its range (numeric) or categories (text with at most :data:`MAX_CATEGORIES` values)."""
    stats = TableStats(columns if columns is not None else list(frame.columns))
    stats.update(frame)
    return stats.schema()


def compare_schema(frame: Any, saved: Mapping[str, Any], drift: Any, *, source: str,
                   namer: RowNamer, ignore: Sequence[str] = ()) -> list[Problem]:
    """How ``frame`` differs from the ``saved`` schema, one problem per finding.

    Args:
        frame: the validated table (before rows are dropped for drift: nothing is).
        saved: a schema from :func:`infer_schema`.
        drift: ``validate.drift`` (its policy and thresholds).
        ignore: columns the table lacks on purpose (already reported elsewhere).
    """
    stats = TableStats(list(frame.columns), saved)
    stats.update(frame)
    return compare_stats(stats, saved, drift, source=source, namer=namer, ignore=ignore)


def compare_stats(stats: TableStats, saved: Mapping[str, Any], drift: Any, *, source: str,
                  namer: RowNamer, ignore: Sequence[str] = ()) -> list[Problem]:
    """:func:`compare_schema` of a table whose statistics were gathered in chunks."""
    policy = drift.policy
    known: Mapping[str, Any] = saved.get("columns", {})
    problems: list[Problem] = []

    def add(column: str | None, message: str, rows: Any = (), count: int = 0) -> None:
        problems.append(Problem("drift", f"{source}: {message}", column, list(rows), policy,
                                count))

    for name in stats.columns:
        if name not in known:
            add(name, f"column {name!r} is new: the saved schema does not have it (accept "
                      "the new schema with conveyor schema accept)")
    for name in known:
        if name not in stats.columns and name not in ignore:
            add(name, f"column {name!r} of the saved schema is missing")
    for name, entry in known.items():
        column = stats.columns.get(name)
        if column is None:
            continue
        kind = column.kind
        if kind != entry.get("kind"):
            add(name, f"column {name!r} changed type: {entry.get('kind')} "
                      f"({entry.get('dtype')}) in the saved schema, {kind} ({column.dtype}) now")
            continue
        rows_present = column.rows - column.missing
        share = 1.0 - rows_present / column.rows if column.rows else 0.0
        jump = share - float(entry.get("missing_share") or 0.0)
        if jump > drift.max_missing_increase:
            add(name, f"column {name!r} is {share:.1%} missing, {entry['missing_share']:.1%} "
                      f"in the saved schema (+{jump:.1%}, over validate.drift."
                      f"max_missing_increase={drift.max_missing_increase:g})",
                count=column.missing)
        if not rows_present:
            continue
        n, rows = column.outside, _Head(column.first_rows, column.outside)
        if kind == "numeric" and entry.get("min") is not None:
            low, high = float(entry["min"]), float(entry["max"])
            if n / rows_present > drift.max_out_of_range_share:
                add(name, f"column {name!r}: {n} values ({n / rows_present:.1%}) are outside "
                          f"the saved range [{_num(low)}, {_num(high)}], over validate.drift."
                          f"max_out_of_range_share={drift.max_out_of_range_share:g}: "
                          f"{namer.rows(rows, values=column.first_values)}", rows.head, n)
        elif kind == "categorical" and entry.get("categories") is not None and \
                n / rows_present > drift.max_out_of_range_share:
            new = sorted(column.unseen)
            add(name, f"column {name!r}: {n} values ({n / rows_present:.1%}) are categories "
                      f"never seen ({', '.join(repr(v) for v in new[:5])}), over "
                      f"validate.drift.max_out_of_range_share="
                      f"{drift.max_out_of_range_share:g}: {namer.rows(rows)}", rows.head, n)
    return problems


class _Head:
    """The first rows of ``count`` (all a message shows: ``row 3, … and N more``)."""

    def __init__(self, head: list[int], count: int) -> None:
        self.head, self.count = head, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: slice) -> list[int]:
        return self.head[index]


def _num(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else str(value)
