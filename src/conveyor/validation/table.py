"""The checks of one table against a spec, whole (ADR 0046): types coerced, the row checks
(pandera), drops, the checks of whole columns, the comparison with a saved schema, the report.

Used by the validate step and, for ``split.test_data``, by the split step (steps never import
each other, so the function lives below them). A table too large for memory is checked in
chunks with the same results by :mod:`conveyor.validation.chunked` (ADR 0051).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.errors import DataError
from conveyor.features import feature_types
from conveyor.features.derive import source_columns
from conveyor.validation.problems import Problem, RowNamer

if TYPE_CHECKING:
    from conveyor.sources.lines import LineMap

__all__ = ["check_binary_target", "check_class_sizes", "check_leakage", "check_min_rows",
           "check_missing_share", "check_named_columns", "check_numeric", "check_two_classes",
           "check_value_leakage", "integral_target", "leakage_message", "missing_share_message",
           "model_inputs", "not_a_number", "numeric_target", "validate_table"]

log = logging.getLogger(__name__)
_NUMERIC_SHARE = 0.9  # an inferred text column this numeric is a numeric column with typos
_SAMPLES = 5  # rows named in a message before "and N more"


def _row(index: int, lines: Any) -> str:
    if isinstance(lines, RowNamer):
        return lines.row(index)
    line = lines.line(index) if lines is not None else None
    return f"row {index + 1}" + (f" (line {line})" if line is not None else "")


def _rows(indexes: Any, lines: Any, *, shown: int = _SAMPLES) -> str:
    """A few rows, by row and line, and how many more there are."""
    named = ", ".join(_row(int(i), lines) for i in indexes[:shown])
    return named + (f" and {len(indexes) - shown} more" if len(indexes) > shown else "")


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (``5``, not ``np.int64(5)``, in messages)."""
    return value.item() if hasattr(value, "item") else value


class _Findings:
    """The problems found so far, sorted by what their policies make of them."""

    def __init__(self, namer: RowNamer) -> None:
        self.namer = namer  # names rows of the table as it is now (after drops: kept rows)
        self.problems: list[Problem] = []  # every problem not switched off, in order found
        self.reported: list[dict[str, Any]] = []
        self.warnings: list[dict[str, str]] = []

    def add(self, problem: Problem) -> None:
        if problem.policy == "off":
            return
        self.problems.append(problem)
        self.reported.append(problem.to_dict(self.namer))
        if problem.policy == "warn":
            log.warning("validate (%s, warn): %s", problem.check, problem.message)
            self.warnings.append({"check": problem.check, "message": problem.message})

    def raise_failures(self) -> None:
        """One DataError for the problems whose policy is ``fail`` (the first named)."""
        failed = [p for p in self.problems if p.policy == "fail"]
        if failed:
            more = len(failed) - 1
            error = DataError(failed[0].message + (
                f" (and {more} more problem{'s' if more > 1 else ''}: "
                f"{', '.join(sorted({p.check for p in failed[1:]}))})" if more else ""))
            error.problems = list(self.reported)  # type: ignore[attr-defined]
            raise error


def _declared(ctx_spec: Any) -> dict[str, str]:
    """Columns whose kind the spec declares: schema.features, then validate.columns."""
    schema, rules = ctx_spec.schema_, ctx_spec.validate_
    declared = dict(schema.features) if isinstance(schema.features, dict) else {}
    for name, rule in rules.columns.items():
        if name in declared:
            continue
        if rule.dtype in ("numeric", "integer") or rule.min is not None or rule.max is not None:
            declared[name] = "numeric"
        elif rule.dtype == "categorical":
            declared[name] = "categorical"
    return declared


def _columns_to_type(columns: Any, ctx_spec: Any) -> tuple[set[str], list[str], list[str],
                                                          dict[str, str]]:
    """(the columns that are never features, the feature candidates, the columns to coerce to
    numbers, the declared kinds) of a table with ``columns`` under the spec: one rule for the
    whole and the chunked paths."""
    schema, rules = ctx_spec.schema_, ctx_spec.validate_
    excluded = {schema.target, *(schema.drop), *([schema.id] if schema.id else [])}
    candidates = ([c for c in columns if c not in excluded] if schema.features == "infer"
                  else list(schema.features))
    declared = _declared(ctx_spec)
    coerce = candidates + [c for c in rules.columns if c not in candidates
                           and declared.get(c) == "numeric"]
    return excluded, candidates, coerce, declared


def _cv_folds(ctx_spec: Any) -> tuple[int, str] | None:
    """The most cross-validation folds the spec asks for, and its key."""
    found = []
    evaluate_cv = getattr(getattr(ctx_spec, "evaluate", None), "cv", None)
    if isinstance(evaluate_cv, int):
        found.append((evaluate_cv, "evaluate.cv"))
    tune = getattr(getattr(ctx_spec, "model", None), "tune", None)
    if isinstance(getattr(tune, "cv", None), int):
        found.append((tune.cv, "model.tune.cv"))
    return max(found) if found else None


def validate_table(
    frame: Any, ctx_spec: Any, *, source: str, lines: LineMap | None = None,
    baseline: Mapping[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Check ``frame`` against the spec; return the typed table and the report.

    Structural checks first (named columns, rows); then the types are coerced and every row
    check runs at once (pandera, lazy); rows whose problems have the ``drop`` policy are
    removed; then the checks of whole columns (missing shares, classes, leakage) and the
    comparison with ``baseline``. The first problem whose policy is ``fail`` stops the run.

    Args:
        frame: the raw table.
        ctx_spec: the pipeline spec.
        source: the file name, for messages.
        lines: where each row starts in the file, so messages name the line an editor shows
            (None for sources without lines: Parquet, bundled data sets).
        baseline: the pipeline's saved schema (``infer_schema``), or None on a first run.

    Raises:
        DataError: a check whose policy is ``fail`` found a problem.
    """
    import numpy as np

    from conveyor.validation.baseline import compare_schema, infer_schema
    from conveyor.validation.rules import row_problems

    schema, rules = ctx_spec.schema_, ctx_spec.validate_
    columns = list(frame.columns)
    found = _Findings(RowNamer(lines))

    # whatever the policies, nothing can go on without these
    check_named_columns(columns, schema, source, rules=rules)
    check_min_rows(len(frame), rules.min_rows, source)

    excluded, candidates, coerce, declared = _columns_to_type(columns, ctx_spec)
    typed = frame.copy()

    for name in coerce:
        coerced, message = check_numeric(frame[name], name, declared.get(name), source=source,
                                         lines=lines)
        if message:
            bad = np.flatnonzero((frame[name].notna() & coerced.isna()).to_numpy())
            found.add(Problem("types", message, name, bad, rules.types, len(bad)))
        if coerced is not None:
            typed[name] = coerced
    found.raise_failures()  # a column of text where numbers belong makes the rest noise

    for problem in row_problems(typed, ctx_spec, features=candidates, source=source,
                                namer=found.namer):
        found.add(problem)
        if problem.check == "types" and problem.policy == "warn":  # ±inf kept as missing
            values = typed[problem.column].to_numpy(dtype=float, na_value=np.nan)
            typed[problem.column] = typed[problem.column].where(~np.isinf(values))
    found.raise_failures()

    drop, by_check = drop_rows(found, len(typed), lines=lines, source=source,
                               min_rows=rules.min_rows)
    if drop is not None:
        typed = typed.iloc[found.namer.kept].reset_index(drop=True)

    for name in candidates:
        message = check_missing_share(typed[name], name, rules.max_missing_fraction,
                                      source=source)
        if message:
            found.add(Problem("empty_columns", message, name, policy=rules.empty_columns))

    from conveyor.modeling.tasks import infer_task

    task = infer_task(typed[schema.target], schema.task)
    counts = None
    if task.task == "regression":
        typed[schema.target] = numeric_target(typed[schema.target], schema.target,
                                              source=source, lines=found.namer)
    else:
        counts = _classification_checks(typed, ctx_spec, found, source=source)

    for name in candidates:
        if counts is not None:
            message = check_leakage(typed[name], typed[schema.target], name, schema.target,
                                    source=source, n_classes=len(counts))
        else:
            message = check_value_leakage(typed[name], typed[schema.target], name,
                                          schema.target, source=source)
        if message:
            found.add(Problem("leakage", message, name, policy=rules.leakage))

    types = feature_types(typed, candidates if schema.features == "infer" else schema.features,
                          exclude=excluded)
    # the columns derived ones are computed from stay for the model (``model_inputs``)
    read = set(source_columns(ctx_spec.derive)) if getattr(ctx_spec, "derive", None) else set()
    keep = [c for c in columns if c in types or c == schema.target or c == schema.id
            or c in read]
    status = "first run: this table's schema is saved when the run completes"
    if baseline is not None:
        status = "compared"
        for problem in compare_schema(typed[keep], baseline, rules.drift, source=source,
                                      namer=found.namer):
            found.add(problem)
    found.raise_failures()

    report = build_report(
        ctx_spec, rows=len(typed), rows_in=len(frame), columns=len(columns), types=types,
        task=task, counts=counts, found=found, source=source, by_check=by_check, status=status,
        missing={c: int(typed[c].isna().sum()) for c in types if typed[c].isna().any()},
        schema=infer_schema(typed[keep], keep))
    return typed[keep], report


def drop_rows(found: _Findings, rows: int, *, lines: Any, source: str,
              min_rows: int) -> tuple[Any, dict[str, int]]:
    """The rows the ``drop`` problems remove (a mask, or None) and how many per check;
    ``found`` then names the kept rows.

    Raises:
        DataError: fewer than ``validate.min_rows`` rows are left.
    """
    import numpy as np

    dropping = [p for p in found.problems if p.policy == "drop"]
    by_check: dict[str, int] = {}
    if not dropping:
        return None, by_check
    drop = np.zeros(rows, dtype=bool)
    for problem in dropping:
        at = np.asarray(problem.rows, dtype=int)
        by_check[problem.check] = by_check.get(problem.check, 0) + int((~drop[at]).sum())
        drop[at] = True
        log.warning("validate (%s, drop): %s", problem.check, problem.message)
    kept = np.flatnonzero(~drop)
    found.namer = RowNamer(lines, kept=kept)
    if len(kept) < min_rows:
        raise DataError(f"{source} has {len(kept)} rows after dropping {int(drop.sum())} "
                        f"({', '.join(f'{k} {v}' for k, v in by_check.items())}); "
                        f"validate.min_rows is {min_rows}")
    return drop, by_check


def build_report(ctx_spec: Any, *, rows: int, rows_in: int, columns: int,
                 types: dict[str, str], task: Any, counts: Any, found: _Findings, source: str,
                 by_check: dict[str, int], status: str, missing: dict[str, int],
                 schema: dict[str, Any]) -> dict[str, Any]:
    """``report.json`` of a table that passed (whole or in chunks)."""
    rules = ctx_spec.validate_
    report = {
        "rows": rows, "columns": columns,
        "features": types,
        "task": task.task, "task_reason": task.reason,
        "classes": {str(k): int(v) for k, v in counts.items()} if counts is not None else {},
        "missing": missing,
        "warnings": found.warnings,
        "passed": True,
        # issue 12
        "source": source, "rows_in": rows_in,
        "dropped": {"rows": rows_in - rows, "by_check": by_check},
        "problems": found.reported,
        "policies": {k: v for k, v in rules.model_dump().items() if isinstance(v, str)}
        | {"drift": rules.drift.policy},
        "baseline": {"status": status},
        "schema": schema,
    }
    id_ = ctx_spec.schema_.id
    if id_:  # new rows bring new ids: their range and values are no drift
        report["schema"]["columns"][id_] = {
            k: v for k, v in report["schema"]["columns"][id_].items()
            if k not in ("min", "max", "categories")}
    return report


def _classification_checks(typed: Any, ctx_spec: Any, found: _Findings, *,
                           source: str) -> Any:
    """The class checks of a classification target (ADR 0038); the rows per class."""
    schema, rules = ctx_spec.schema_, ctx_spec.validate_
    typed[schema.target] = integral_target(typed[schema.target])
    counts = typed[schema.target].value_counts()
    message = check_two_classes(counts, schema.target, source=source)
    if message:  # a classifier needs two classes, whatever the policy
        found.add(Problem("single_class", message, schema.target))
        found.raise_failures()
    if schema.positive_label is not None:
        check_binary_target(typed[schema.target], counts, schema.target, schema.positive_label,
                            source=source, lines=found.namer)
    folds = _cv_folds(ctx_spec)
    message = check_class_sizes(counts, schema.target, rules.min_class_rows, source=source)
    if message is None and folds is not None and folds[0] > rules.min_class_rows:
        message = check_class_sizes(counts, schema.target, folds[0], source=source,
                                    key=folds[1], why=" (each fold needs a row of each class)")
    if message:
        found.add(Problem("single_class", message, schema.target, policy=rules.single_class))
    return counts


# --------------------------------------------------------------------------- the checks
# Each check is a pure function of a column (or the column names, or the class counts): it
# returns the message of what it found (None when nothing) and, where it cleans, the cleaned
# column; validate_table applies the policies. A check that no policy can waive raises.


def check_named_columns(columns: list[str], schema: Any, source: str, *,
                        rules: Any = None) -> None:
    """Every column the spec names (target, id, drop, declared features, the columns of
    ``validate.columns``) is in the table.

    Raises:
        DataError: naming the first missing column, its schema key and the closest name.
    """
    named = {"schema.target": [schema.target], "schema.id": [schema.id] if schema.id else [],
             "schema.drop": schema.drop,
             "schema.features": list(schema.features) if schema.features != "infer" else [],
             "validate.columns": list(rules.columns) if rules is not None else []}
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
    return coerced, not_a_number(name, first, column.iloc[first], int(bad.sum()),
                                 source=source, lines=lines)


def not_a_number(name: str, row: int, value: Any, count: int, *, source: str,
                 lines: LineMap | None) -> str:
    """The message of a numeric column's first value that is not a number."""
    return (f"{source}: column {name!r}, {_row(row, lines)}: {value!r} is not a number "
            f"({count} such rows)")


def check_missing_share(column: Any, name: str, max_missing_fraction: float, *,
                        source: str) -> str | None:
    """A column with no values, or more missing than ``validate.max_missing_fraction``."""
    return missing_share_message(column.isna().mean(), name, max_missing_fraction,
                                 source=source)


def missing_share_message(share: float, name: str, max_missing_fraction: float, *,
                          source: str) -> str | None:
    """:func:`check_missing_share` of a column whose missing share is known."""
    if share == 1.0:
        return (f"{source}: column {name!r} has no values (all missing); "
                "drop it with schema.drop")
    if share > max_missing_fraction:
        return (f"{source}: column {name!r} is {share:.0%} missing, over "
                f"validate.max_missing_fraction={max_missing_fraction}")
    return None


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


def check_class_sizes(counts: Any, name: str, min_class_rows: int, *, source: str,
                      key: str = "validate.min_class_rows", why: str = "") -> str | None:
    """The first class with fewer rows than ``validate.min_class_rows`` (or than the
    cross-validation folds ``key`` asks for)."""
    small = counts[counts < min_class_rows]
    if not len(small):
        return None
    return (f"{source}: class {small.index[0]!r} of {name!r} has {int(small.iloc[0])} rows; "
            f"{key} is {min_class_rows}{why}")


def check_leakage(column: Any, target: Any, name: str, target_name: str, *,
                  source: str, n_classes: int | None = None) -> str | None:
    """A feature that is the target under another name: one value per class, one-to-one.

    ``n_classes`` (the target's, when known) saves counting them once per feature.
    """
    import pandas as pd

    if n_classes is None:  # the classes: a missing target has failed by now
        n_classes = target.nunique()
    # a prefix with more distinct values than there are classes settles it without hashing
    # the whole column (a float feature of 200k rows: most of this check's time)
    if column.iloc[:256].nunique(dropna=False) > n_classes:
        return None
    if column.nunique(dropna=False) != n_classes:
        return None
    pairs = pd.DataFrame({"f": column.astype(str), "t": target.astype(str)})
    if pairs.drop_duplicates().shape[0] != n_classes:
        return None
    return leakage_message(name, target_name, source=source)


def model_inputs(table: Any, report: dict[str, Any], spec: Any) -> tuple[Any, dict[str, Any]]:
    """Turn a table validated with its derived columns into the model's inputs.

    The model computes derived columns itself (its first step), so they leave the table and
    ``report["features"]`` for ``report["derived"]`` (name -> kind), and the columns they read
    join the table; one read only by a derivation (``Name`` for ``title``) is a feature of
    kind ``input``: passed to the model, not encoded.

    Raises:
        DataError: a derivation reads the target (the label would leak into the features).
    """
    features = dict(report["features"])
    derived = {name: features.pop(name) for name in spec.derive if name in features}
    target = spec.schema_.target
    inputs = source_columns(spec.derive)
    if target in inputs:
        raise DataError(f"derive: a derived column reads the target {target!r}; the label "
                        "would leak into the features")
    for column in inputs:
        features.setdefault(column, "input")
    # validate_table kept the columns they read (rows dropped by a policy are gone from both)
    out = table.drop(columns=[c for c in spec.derive if c in table.columns])
    return out, {**report, "features": features, "derived": derived}


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
    return leakage_message(name, target_name, source=source)


def leakage_message(name: str, target_name: str, *, source: str) -> str:
    """The message of a feature that determines the target."""
    return (f"{source}: column {name!r} determines the target {target_name!r} exactly "
            "(leakage); drop it with schema.drop")
