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

    The checks run in a fixed order, each one function below; the first whose policy is
    ``fail`` stops the rest.

    Args:
        frame: the raw table.
        ctx_spec: the pipeline spec.
        source: the file name, for messages.
        lines: where each row starts in the file, so messages name the line an editor shows
            (None for sources without lines: Parquet, bundled data sets).

    Raises:
        DataError: a check whose policy is ``fail`` found a problem.
    """
    schema, rules = ctx_spec.schema_, ctx_spec.validate_
    found = _Findings({k: v for k, v in rules.model_dump().items() if isinstance(v, str)})
    columns = list(frame.columns)

    # whatever the policies, nothing can go on without these
    check_named_columns(columns, schema, source)
    check_min_rows(len(frame), rules.min_rows, source)

    excluded = {schema.target, *(schema.drop), *([schema.id] if schema.id else [])}
    candidates = ([c for c in columns if c not in excluded] if schema.features == "infer"
                  else list(schema.features))
    declared = schema.features if isinstance(schema.features, dict) else {}
    typed = frame.copy()

    for name in candidates:
        coerced, message = check_numeric(frame[name], name, declared.get(name), source=source,
                                         lines=lines)
        if message:
            found.add("types", message)
        if coerced is not None:
            typed[name] = coerced
    for name in candidates:
        cleaned, message = check_finite(typed[name], name, source=source, lines=lines)
        if message:
            found.add("types", message)
            typed[name] = cleaned

    for name in candidates:
        message = check_missing_share(typed[name], name, rules.max_missing_fraction,
                                      source=source)
        if message:
            found.add("empty_columns", message)

    message = check_target_present(typed[schema.target], schema.target, source=source,
                                   lines=lines)
    if message:
        found.policies["target_values"] = "fail"  # rows without a target cannot be trained on
        found.add("target_values", message)
    from conveyor.modeling.tasks import infer_task

    task = infer_task(typed[schema.target], schema.task)
    if task.task == "regression":
        typed[schema.target] = numeric_target(typed[schema.target], schema.target,
                                              source=source, lines=lines)
        counts = None
    else:
        counts = _classification_checks(typed, schema, rules, found, source=source,
                                        lines=lines)
    if schema.id:
        message = check_unique_ids(typed[schema.id], schema.id, source=source, lines=lines)
        if message:
            found.add("duplicate_ids", message)

    leakage = check_leakage if task.task == "classification" else check_value_leakage
    for name in candidates:
        message = leakage(typed[name], typed[schema.target], name, schema.target, source=source)
        if message:
            found.add("leakage", message)

    types = feature_types(typed, candidates if schema.features == "infer" else schema.features,
                          exclude=excluded)
    keep = [c for c in columns if c in types or c == schema.target or c == schema.id]
    report = {
        "rows": len(typed), "columns": len(columns),
        "features": types,
        "task": task.task, "task_reason": task.reason,
        "classes": {str(k): int(v) for k, v in counts.items()} if counts is not None else {},
        "missing": {c: int(typed[c].isna().sum()) for c in types if typed[c].isna().any()},
        "warnings": found.items,
        "passed": True,
    }
    return typed[keep], report


def _classification_checks(typed: Any, schema: Any, rules: Any, found: _Findings, *,
                           source: str, lines: LineMap | None) -> Any:
    """The class checks of a classification target; the rows per class."""
    typed[schema.target] = integral_target(typed[schema.target])
    counts = typed[schema.target].value_counts()
    message = check_two_classes(counts, schema.target, source=source)
    if message:
        found.policies["single_class"] = "fail"  # a classifier needs two classes
        found.add("single_class", message)
    if schema.positive_label is not None:
        check_binary_target(typed[schema.target], counts, schema.target, schema.positive_label,
                            source=source, lines=lines)
    message = check_class_sizes(counts, schema.target, rules.min_class_rows, source=source)
    if message:
        found.add("single_class", message)
    return counts


# --------------------------------------------------------------------------- the checks
# Each check is a pure function of a column (or the column names, or the class counts): it
# returns the message of what it found (None when nothing) and, where it cleans, the cleaned
# column; validate_table applies the policies. A check that no policy can waive raises.


def check_named_columns(columns: list[str], schema: Any, source: str) -> None:
    """Every column the schema names (target, id, drop, declared features) is in the table.

    Raises:
        DataError: naming the first missing column, its schema key and the closest name.
    """
    named = {"schema.target": [schema.target], "schema.id": [schema.id] if schema.id else [],
             "schema.drop": schema.drop,
             "schema.features": list(schema.features) if schema.features != "infer" else []}
    for key, names in named.items():
        for name in names:
            if name not in columns:
                close = difflib.get_close_matches(name, columns, n=1)
                hint = (f"did you mean {close[0]!r}?" if close
                        else f"columns: {', '.join(columns[:12])}")
                raise DataError(f"{source}: column {name!r} ({key}) is missing; {hint}")


def check_min_rows(rows: int, min_rows: int, source: str) -> None:
    """Raises DataError when the table has fewer than ``validate.min_rows`` rows."""
    if rows < min_rows:
        raise DataError(f"{source} has {rows} rows; validate.min_rows is {min_rows}")


def check_numeric(column: Any, name: str, declared: str | None, *, source: str,
                  lines: LineMap | None = None) -> tuple[Any, str | None]:
    """A text column that should hold numbers, as numbers, and its first non-number.

    A column is numeric when declared so, or when undeclared and at least 90 % of its
    present values parse as numbers (the rest are typos, not categories).

    Returns:
        (the coerced column, or None when the column stays as it is; the message naming the
        first value that is not a number, or None).
    """
    import numpy as np
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return None, None
    coerced = pd.to_numeric(column, errors="coerce")
    present = column.notna()
    numeric_share = coerced[present].notna().mean() if present.any() else 0.0
    wants_numeric = declared == "numeric" or (declared is None
                                              and numeric_share >= _NUMERIC_SHARE)
    if not wants_numeric:
        return None, None
    bad = present & coerced.isna()
    if not bad.any():
        return coerced, None
    first = int(np.flatnonzero(bad.to_numpy())[0])
    return coerced, (f"{source}: column {name!r}, {_row(first, lines)}: "
                     f"{column.iloc[first]!r} is not a number ({int(bad.sum())} such rows)")


def check_finite(column: Any, name: str, *, source: str,
                 lines: LineMap | None = None) -> tuple[Any, str | None]:
    """A float column's first ±inf; returns (the column with ±inf as missing, message)."""
    import numpy as np
    import pandas as pd

    if not pd.api.types.is_float_dtype(column):
        return column, None
    infinite = np.isinf(column.to_numpy(dtype=float, na_value=np.nan))
    if not infinite.any():
        return column, None
    first = int(np.flatnonzero(infinite)[0])
    return column.where(~infinite), (f"{source}: column {name!r}, {_row(first, lines)}: "
                                     f"{column.iloc[first]} is not finite")


def check_missing_share(column: Any, name: str, max_missing_fraction: float, *,
                        source: str) -> str | None:
    """A column with no values, or more missing than ``validate.max_missing_fraction``."""
    share = column.isna().mean()
    if share == 1.0:
        return (f"{source}: column {name!r} has no values (all missing); "
                "drop it with schema.drop")
    if share > max_missing_fraction:
        return (f"{source}: column {name!r} is {share:.0%} missing, over "
                f"validate.max_missing_fraction={max_missing_fraction}")
    return None


def check_target_present(target: Any, name: str, *, source: str,
                         lines: LineMap | None = None) -> str | None:
    """Rows whose target is missing (or ±inf): how many, and the first."""
    import numpy as np
    import pandas as pd

    missing = target.isna().to_numpy()
    if pd.api.types.is_float_dtype(target):
        missing = missing | np.isinf(target.to_numpy(dtype=float, na_value=np.nan))
    if not missing.any():
        return None
    first = int(np.flatnonzero(missing)[0])
    return (f"{source}: target {name!r} is missing or not finite in {int(missing.sum())} rows "
            f"(first: {_row(first, lines)})")


def integral_target(target: Any) -> Any:
    """A float target holding only whole numbers (``1.0``, ``0.0``) as int64 labels."""
    import pandas as pd

    if pd.api.types.is_float_dtype(target) and (target == target.round()).all():
        return target.astype("int64")
    return target


def check_two_classes(counts: Any, name: str, *, source: str) -> str | None:
    """A target with a single class (``counts``: rows per class, most frequent first)."""
    if len(counts) >= 2:
        return None
    return (f"{source}: target {name!r} has a single class {counts.index[0]!r}; a classifier "
            "needs at least two")


def check_binary_target(target: Any, counts: Any, name: str, positive: Any, *, source: str,
                        lines: LineMap | None = None) -> None:
    """``schema.positive_label`` is a class, and the only other class is the negative one.

    A positive label declares a binary task: the positive class and one other. The most
    frequent other label is taken as the negative class; rows holding any further label are
    bad data, whatever the policies say (a binary model cannot learn a third class, and a
    multiclass one would pass a binary gate unnoticed).

    Raises:
        DataError: the label is not a value of the target, or a third class's rows (sampled).
    """
    import numpy as np

    labels = [str(v) for v in counts.index]
    if str(positive) not in labels:
        raise DataError(f"{source}: schema.positive_label {positive!r} is not a value of "
                        f"{name!r} (values: {', '.join(labels)})")
    if len(counts) <= 2:
        return
    others = [_plain(label) for label in counts.index if str(label) != str(positive)]
    extra = others[1:]
    rows = np.flatnonzero(target.isin(extra).to_numpy())
    shown = ", ".join(f"{label} {int(n)}" for label, n in counts.items())
    raise DataError(
        f"{source}: target {name!r} has {len(counts)} classes ({shown}) but "
        f"schema.positive_label {positive!r} makes the task binary ({positive!r} against "
        f"{others[0]!r}); {len(rows)} rows hold {', '.join(repr(x) for x in extra)}: "
        f"{_rows(rows, lines)}; correct or remove them, or drop schema.positive_label "
        "to train a multiclass model")


def check_class_sizes(counts: Any, name: str, min_class_rows: int, *,
                      source: str) -> str | None:
    """The first class with fewer rows than ``validate.min_class_rows``."""
    small = counts[counts < min_class_rows]
    if not len(small):
        return None
    return (f"{source}: class {small.index[0]!r} of {name!r} has {int(small.iloc[0])} rows; "
            f"validate.min_class_rows is {min_class_rows}")


def check_unique_ids(ids: Any, name: str, *, source: str,
                     lines: LineMap | None = None) -> str | None:
    """The first repeated id, the first two rows holding it, and how many repeats."""
    import numpy as np

    dup = ids.duplicated(keep=False).to_numpy()
    if not dup.any():
        return None
    value = _plain(ids.iloc[np.flatnonzero(dup)[0]])
    same = np.flatnonzero((ids == value).to_numpy())
    return (f"{source}: id {value!r} in {name!r} repeats on {_row(int(same[0]), lines)} and "
            f"{_row(int(same[1]), lines)} ({int(ids.duplicated().sum())} repeats)")


def check_leakage(column: Any, target: Any, name: str, target_name: str, *,
                  source: str) -> str | None:
    """A feature that is the target under another name: one value per class, one-to-one."""
    import pandas as pd

    n_classes = target.nunique()  # the classes: a missing target has failed by now
    if column.nunique(dropna=False) != n_classes:
        return None
    pairs = pd.DataFrame({"f": column.astype(str), "t": target.astype(str)})
    if pairs.drop_duplicates().shape[0] != n_classes:
        return None
    return (f"{source}: column {name!r} determines the target {target_name!r} exactly "
            "(leakage); drop it with schema.drop")


def numeric_target(target: Any, name: str, *, source: str,
                   lines: LineMap | None = None) -> Any:
    """A regression target as float64 values with at least two distinct values.

    Raises:
        DataError: a value that is not a number (naming its row), or a constant target.
    """
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(target, errors="coerce") if not pd.api.types.is_numeric_dtype(
        target) or pd.api.types.is_bool_dtype(target) else target
    bad = values.isna().to_numpy() & target.notna().to_numpy()
    if pd.api.types.is_bool_dtype(target) or bad.any():
        first = int(np.flatnonzero(bad)[0]) if bad.any() else 0
        raise DataError(f"{source}: target {name!r}, {_row(first, lines)}: "
                        f"{_plain(target.iloc[first])!r} is not a number; a regression target "
                        "must be numeric (or set schema.task: classification)")
    values = values.astype("float64")
    if values.nunique() < 2:
        raise DataError(f"{source}: target {name!r} is constant ({_plain(values.iloc[0])!r}); "
                        "there is nothing to regress")
    return values


def check_value_leakage(column: Any, target: Any, name: str, target_name: str, *,
                        source: str) -> str | None:
    """A numeric feature that is the regression target, or a linear function of it."""
    import numpy as np
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return None
    pairs = pd.DataFrame({"f": column.astype(float), "t": target}).dropna()
    if len(pairs) < 3 or pairs["f"].nunique() < 2:
        return None
    r = np.corrcoef(pairs["f"].to_numpy(), pairs["t"].to_numpy())[0, 1]
    if not np.isfinite(r) or abs(r) < 1 - 1e-9:
        return None
    return (f"{source}: column {name!r} determines the target {target_name!r} exactly "
            "(leakage); drop it with schema.drop")


class ValidateStep(BaseStep):
    name = "validate"
    inputs = ("ingest.raw",)
    outputs = ("table", "report")
    config_keys = ("schema", "validate")
    default = True

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        warn = info.get("warnings", 0)
        task = f", {info['task']}" if info.get("task") else ""
        return f"{info.get('features')} features{task}" + (f", {warn} warnings" if warn else "")

    def _run(self, ctx: StepContext) -> StepResult:
        frame = ctx.read_table("ingest.raw")
        ingest = ctx.upstream.get("ingest", {})
        source = str(ingest.get("source", "data")).rsplit("/", 1)[-1]
        from conveyor.sources.lines import LineMap  # conveyor.sources imports pandas

        lines = LineMap.from_json(ingest.get("lines"))
        table, report = validate_table(frame, ctx.spec, source=source, lines=lines)
        from conveyor.modeling.tasks import check_task

        check_task(ctx.loaded, report["task"], report["task_reason"])
        return StepResult(
            outputs={"table": ctx.write_table("table", table),
                     "report": ctx.write_json("report", report)},
            info={"rows": report["rows"], "features": len(report["features"]),
                  "warnings": len(report["warnings"]), "task": report["task"],
                  "task_reason": report["task_reason"]},
        )
