"""validate: check the raw table against the schema and write the typed, clean table.

Each check has a policy (``validate:`` in the spec): ``fail`` stops the run with a one-line
error naming the column, row and value; ``warn`` records the finding in the report; ``off``
skips the check. The report is written either way when the step completes.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.errors import DataError
from conveyor.features import feature_types
from conveyor.steps.base import BaseStep, StepContext, StepResult

if TYPE_CHECKING:
    from conveyor.sources.lines import LineMap

__all__ = ["ValidateStep", "validate_table"]

log = logging.getLogger(__name__)
_NUMERIC_SHARE = 0.9  # an inferred text column this numeric is a numeric column with typos
_SAMPLES = 5  # rows named in a message before "and N more"


class _Findings:
    def __init__(self, policies: dict[str, str]) -> None:
        self.policies = policies
        self.items: list[dict[str, str]] = []

    def add(self, check: str, message: str) -> None:
        policy = self.policies.get(check, "fail")
        if policy == "off":
            return
        if policy == "fail":
            raise DataError(message)
        log.warning("validate (%s, warn): %s", check, message)
        self.items.append({"check": check, "message": message})


def _row(index: int, lines: LineMap | None) -> str:
    line = lines.line(index) if lines is not None else None
    return f"row {index + 1}" + (f" (line {line})" if line is not None else "")


def _rows(indexes: Any, lines: LineMap | None, *, shown: int = _SAMPLES) -> str:
    """A few rows, by row and line, and how many more there are."""
    named = ", ".join(_row(int(i), lines) for i in indexes[:shown])
    return named + (f" and {len(indexes) - shown} more" if len(indexes) > shown else "")


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (``5``, not ``np.int64(5)``, in messages)."""
    return value.item() if hasattr(value, "item") else value


def validate_table(
    frame: Any, ctx_spec: Any, *, source: str, lines: LineMap | None = None
) -> tuple[Any, dict[str, Any]]:
    """Check ``frame`` against the spec; return the typed table and the report.

    Args:
        frame: the raw table.
        ctx_spec: the pipeline spec.
        source: the file name, for messages.
        lines: where each row starts in the file, so messages name the line an editor shows
            (None for sources without lines: Parquet, bundled data sets).

    Raises:
        DataError: a check whose policy is ``fail`` found a problem.
    """
    import numpy as np
    import pandas as pd

    schema, rules = ctx_spec.schema_, ctx_spec.validate_
    found = _Findings({k: v for k, v in rules.model_dump().items() if isinstance(v, str)})
    columns = list(frame.columns)

    # -- missing columns ------------------------------------------------------------------
    named = {"schema.target": [schema.target], "schema.id": [schema.id] if schema.id else [],
             "schema.drop": schema.drop,
             "schema.features": list(schema.features) if schema.features != "infer" else []}
    for key, names in named.items():
        for name in names:
            if name not in columns:
                close = difflib.get_close_matches(name, columns, n=1)
                hint = (f"did you mean {close[0]!r}?" if close
                        else f"columns: {', '.join(columns[:12])}")
                # whatever the policy, nothing can go on without the column
                raise DataError(f"{source}: column {name!r} ({key}) is missing; {hint}")

    if len(frame) < rules.min_rows:
        raise DataError(f"{source} has {len(frame)} rows; validate.min_rows is {rules.min_rows}")

    excluded = {schema.target, *(schema.drop), *([schema.id] if schema.id else [])}
    candidates = ([c for c in columns if c not in excluded] if schema.features == "infer"
                  else list(schema.features))
    declared = schema.features if isinstance(schema.features, dict) else {}
    typed = frame.copy()

    # -- types: numeric columns must hold numbers -----------------------------------------
    for name in candidates:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        coerced = pd.to_numeric(column, errors="coerce")
        present = column.notna()
        numeric_share = coerced[present].notna().mean() if present.any() else 0.0
        wants_numeric = declared.get(name) == "numeric" or (
            name not in declared and numeric_share >= _NUMERIC_SHARE)
        if not wants_numeric:
            continue
        bad = present & coerced.isna()
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            found.add("types", f"{source}: column {name!r}, {_row(first, lines)}: "
                      f"{column.iloc[first]!r} is not a number ({int(bad.sum())} such rows)")
        typed[name] = coerced

    for name in candidates:
        column = typed[name]
        if pd.api.types.is_float_dtype(column):
            infinite = np.isinf(column.to_numpy(dtype=float, na_value=np.nan))
            if infinite.any():
                first = int(np.flatnonzero(infinite)[0])
                found.add("types", f"{source}: column {name!r}, {_row(first, lines)}: "
                          f"{column.iloc[first]} is not finite")
                typed[name] = column.where(~infinite)

    # -- empty and mostly-missing columns --------------------------------------------------
    for name in candidates:
        share = typed[name].isna().mean()
        if share == 1.0:
            found.add("empty_columns", f"{source}: column {name!r} has no values (all missing); "
                      "drop it with schema.drop")
        elif share > rules.max_missing_fraction:
            found.add("empty_columns", f"{source}: column {name!r} is {share:.0%} missing, over "
                      f"validate.max_missing_fraction={rules.max_missing_fraction}")

    # -- target ------------------------------------------------------------------------------
    target = typed[schema.target]
    missing = target.isna().to_numpy()
    if pd.api.types.is_float_dtype(target):
        missing = missing | np.isinf(target.to_numpy(dtype=float, na_value=np.nan))
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        found.policies["target_values"] = "fail"  # rows without a target cannot be trained on
        found.add("target_values", f"{source}: target {schema.target!r} is missing or not finite "
                  f"in {int(missing.sum())} rows (first: {_row(first, lines)})")
    if pd.api.types.is_float_dtype(target) and (target == target.round()).all():
        typed[schema.target] = target.astype("int64")
    counts = typed[schema.target].value_counts()
    if len(counts) < 2:
        found.policies["single_class"] = "fail"  # a classifier needs two classes
        found.add("single_class", f"{source}: target {schema.target!r} has a single class "
                  f"{counts.index[0]!r}; a classifier needs at least two")
    positive = schema.positive_label
    if positive is not None:
        labels = [str(v) for v in counts.index]
        if str(positive) not in labels:
            raise DataError(f"{source}: schema.positive_label {positive!r} is not a value of "
                            f"{schema.target!r} (values: {', '.join(labels)})")
        if len(counts) > 2:
            # A positive label declares a binary task: the positive class and one other. The
            # most frequent other label is taken as the negative class; rows holding any
            # further label are bad data, whatever the policies say (a binary model cannot
            # learn a third class, and a multiclass one would pass a binary gate unnoticed).
            others = [_plain(label) for label in counts.index if str(label) != str(positive)]
            extra = others[1:]
            rows = np.flatnonzero(typed[schema.target].isin(extra).to_numpy())
            shown = ", ".join(f"{label} {int(n)}" for label, n in counts.items())
            raise DataError(
                f"{source}: target {schema.target!r} has {len(counts)} classes ({shown}) but "
                f"schema.positive_label {positive!r} makes the task binary ({positive!r} against "
                f"{others[0]!r}); {len(rows)} rows hold {', '.join(repr(x) for x in extra)}: "
                f"{_rows(rows, lines)}; correct or remove them, or drop schema.positive_label "
                "to train a multiclass model")
    small = counts[counts < rules.min_class_rows]
    if len(small):
        found.add("single_class", f"{source}: class {small.index[0]!r} of {schema.target!r} has "
                  f"{int(small.iloc[0])} rows; validate.min_class_rows is {rules.min_class_rows}")

    # -- ids ---------------------------------------------------------------------------------
    if schema.id:
        ids = typed[schema.id]
        dup = ids.duplicated(keep=False).to_numpy()
        if dup.any():
            rows = np.flatnonzero(dup)
            value = ids.iloc[rows[0]]
            value = value.item() if hasattr(value, "item") else value
            same = np.flatnonzero((ids == value).to_numpy())
            found.add("duplicate_ids", f"{source}: id {value!r} in {schema.id!r} repeats on "
                      f"{_row(int(same[0]), lines)} and {_row(int(same[1]), lines)} "
                      f"({int(ids.duplicated().sum())} repeats)")

    # -- leakage: a feature that is the target under another name ------------------------------
    n_classes = len(counts)
    for name in candidates:
        column = typed[name]
        if column.nunique(dropna=False) != n_classes:
            continue
        pairs = pd.DataFrame({"f": column.astype(str), "t": typed[schema.target].astype(str)})
        if pairs.drop_duplicates().shape[0] == n_classes:
            found.add("leakage", f"{source}: column {name!r} determines the target "
                      f"{schema.target!r} exactly (leakage); drop it with schema.drop")

    types = feature_types(typed, candidates if schema.features == "infer" else schema.features,
                          exclude=excluded)
    keep = [c for c in columns if c in types or c == schema.target or c == schema.id]
    report = {
        "rows": len(typed), "columns": len(columns),
        "features": types,
        "classes": {str(k): int(v) for k, v in counts.items()},
        "missing": {c: int(typed[c].isna().sum()) for c in types if typed[c].isna().any()},
        "warnings": found.items,
        "passed": True,
    }
    return typed[keep], report


class ValidateStep(BaseStep):
    name = "validate"
    inputs = ("ingest.raw",)
    outputs = ("table", "report")
    config_keys = ("schema", "validate")
    default = True

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        warn = info.get("warnings", 0)
        return f"{info.get('features')} features" + (f", {warn} warnings" if warn else "")

    def _run(self, ctx: StepContext) -> StepResult:
        frame = ctx.read_table("ingest.raw")
        ingest = ctx.upstream.get("ingest", {})
        source = str(ingest.get("source", "data")).rsplit("/", 1)[-1]
        from conveyor.sources.lines import LineMap  # conveyor.sources imports pandas

        lines = LineMap.from_json(ingest.get("lines"))
        table, report = validate_table(frame, ctx.spec, source=source, lines=lines)
        return StepResult(
            outputs={"table": ctx.write_table("table", table),
                     "report": ctx.write_json("report", report)},
            info={"rows": report["rows"], "features": len(report["features"]),
                  "warnings": len(report["warnings"])},
        )
