"""The row checks of a spec as one pandera schema, validated lazily, and the problems it found.

One :class:`pandera.pandas.DataFrameSchema` holds every check that finds rows: finite values
in float features (``types``), a present and finite target (``target_values``), unique ids
(``duplicate_ids``) and the per-column rules of ``validate.columns`` (``values``: min, max,
allowed values, nullable, dtype). pandera collects every failure (``lazy=True``); each
(column, check) group becomes one :class:`Problem` whose message names the file, the column,
the rows and their lines, as the hand-written checks did (ADR 0046).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from conveyor.processes import restore_environ
from conveyor.validation.problems import Problem, RowNamer, plain

__all__ = ["build_schema", "failures", "problems_from", "row_problems"]

_TRUE_FALSE = [True, False, 1, 0, "true", "false", "True", "False", "TRUE", "FALSE",
               "yes", "no", "1", "0"]


# Importing pandera sets these in os.environ for pyspark (pandera.external_config), whether
# pyspark is installed or not: a library import must not change the caller's environment.
_PANDERA_SETS = ("SPARK_LOCAL_IP", "PYARROW_IGNORE_TIMEZONE")


def _pandera() -> Any:
    """``pandera.pandas``, imported without leaving pandera's variables in ``os.environ``."""
    if "pandera.pandas" in sys.modules:
        return sys.modules["pandera.pandas"]
    saved = {name: os.environ.get(name) for name in _PANDERA_SETS}
    try:
        import pandera.pandas
    finally:
        restore_environ(saved)
    return pandera.pandas


def _allowed_check(pa: Any, allowed: Sequence[Any], numeric: bool) -> Any:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in allowed)
    if numeric and numbers:
        return pa.Check(lambda s: s.isin(list(allowed)), name="allowed")
    as_text = {str(v) for v in allowed}
    return pa.Check(lambda s: s.astype(str).isin(as_text), name="allowed")


def build_schema(frame: Any, spec: Any, *, features: Sequence[str],
                 unique_ids: bool = True) -> tuple[Any, dict[str, Any]]:
    """The pandera schema of ``spec``'s row checks for ``frame`` (already type-coerced).

    Args:
        unique_ids: check ``schema.id`` for repeats (the whole table; not one chunk).

    Returns:
        (the schema, column name -> its ``validate.columns`` rule or None).
    """
    import numpy as np
    import pandas as pd
    pa = _pandera()

    schema, rules = spec.schema_, spec.validate_
    parts: dict[str, dict[str, Any]] = {}

    def part(name: str) -> dict[str, Any]:
        return parts.setdefault(name, {"checks": [], "nullable": True, "unique": False})

    def finite() -> Any:
        # a Series back (pandera's contract); missing values are dropped before checks
        return pa.Check(lambda s: ~np.isinf(s.astype(float)), name="finite")

    for name in features:
        if pd.api.types.is_float_dtype(frame[name]):
            part(name)["checks"].append(finite())
    target = frame[schema.target]
    part(schema.target)["nullable"] = False
    if pd.api.types.is_float_dtype(target):
        part(schema.target)["checks"].append(finite())
    if schema.id and unique_ids:  # chunks: ids are compared across chunks by hash instead
        part(schema.id)["unique"] = True
    for name, rule in rules.columns.items():
        spec_part = part(name)
        numeric = pd.api.types.is_numeric_dtype(frame[name]) and not \
            pd.api.types.is_bool_dtype(frame[name])
        if rule.min is not None:
            spec_part["checks"].append(pa.Check(lambda s, lo=rule.min: s >= lo, name="min"))
        if rule.max is not None:
            spec_part["checks"].append(pa.Check(lambda s, hi=rule.max: s <= hi, name="max"))
        if rule.allowed is not None:
            spec_part["checks"].append(_allowed_check(pa, rule.allowed, numeric))
        if rule.dtype == "integer" and numeric:
            spec_part["checks"].append(pa.Check(lambda s: s == s.round(), name="integer"))
        if rule.dtype == "bool" and not pd.api.types.is_bool_dtype(frame[name]):
            spec_part["checks"].append(_allowed_check(pa, _TRUE_FALSE, False))
            spec_part["checks"][-1].name = "bool"
        if not rule.nullable:
            spec_part["nullable"] = False
    columns = {name: pa.Column(checks=p["checks"] or None, nullable=p["nullable"],
                               unique=p["unique"], required=True, name=name)
               for name, p in parts.items()}
    return pa.DataFrameSchema(columns, coerce=False, name="conveyor"), dict(rules.columns)


def row_problems(frame: Any, spec: Any, *, features: Sequence[str], source: str,
                 namer: RowNamer) -> list[Problem]:
    """Validate ``frame`` lazily against :func:`build_schema`; one problem per failure kind.

    Problems come in a fixed order (finite features, target, ids, rules; columns in table
    order) with the policy of their ``validate:`` key, or of their column's rule.
    """
    pandera_schema, _ = build_schema(frame, spec, features=features)
    groups = failures(pandera_schema, frame, source=source)
    ids = spec.schema_.id
    id_values = {}
    if ids and (ids, "field_uniqueness") in groups:
        rows = groups[(ids, "field_uniqueness")][0]
        id_values = dict(zip(rows, frame[ids].iloc[rows], strict=True))
    return problems_from(groups, spec, columns=list(frame.columns), source=source,
                         namer=namer, id_values=id_values)


Groups = dict[tuple[str, str], tuple[list[int], list[Any]]]


def failures(pandera_schema: Any, frame: Any, *, source: str,
             into: Groups | None = None) -> Groups:
    """The failing rows and values of ``frame`` per (column, check), added to ``into``.

    Rows are ``frame``'s index labels: a chunk indexed by its rows' positions in the whole
    table gives the whole table's rows (ADR 0051).
    """
    pa = _pandera()

    groups: Groups = {} if into is None else into
    try:
        pandera_schema.validate(frame, lazy=True, inplace=True)
        return groups
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    for column, check, index, value in zip(cases["column"], cases["check"], cases["index"],
                                           cases["failure_case"], strict=True):
        if index is None or column is None:  # a check that could not run at all
            _raise_unexpected(source, column, check, value)
        rows, values = groups.setdefault((str(column), str(check)), ([], []))
        rows.append(int(index))
        values.append(value)
    return groups


def problems_from(groups: Groups, spec: Any, *, columns: Sequence[str], source: str,
                  namer: RowNamer, id_values: dict[int, Any]) -> list[Problem]:
    """The problems of the failures in ``groups`` (``id_values``: the id of each row whose
    id repeats), in the order :func:`row_problems` documents."""
    schema, rules = spec.schema_, spec.validate_
    column_rules = dict(rules.columns)
    order = {name: i for i, name in enumerate(columns)}
    problems: list[Problem] = []
    target_rows: list[int] = []
    for (column, check), (rows, values) in sorted(
            groups.items(), key=lambda item: (_rank(item[0], schema), order.get(item[0][0], 0))):
        pairs = sorted(zip(rows, values, strict=True), key=lambda p: p[0])
        rows, values = [p[0] for p in pairs], [p[1] for p in pairs]
        rule = column_rules.get(column)
        if column == schema.target and check in ("not_nullable", "finite"):
            target_rows.extend(rows)
            continue
        if check == "finite":
            message = (f"{source}: column {column!r}, {namer.row(rows[0])}: "
                       f"{plain(values[0])} is not finite"
                       + (f" ({len(rows)} such rows)" if len(rows) > 1 else ""))
            problems.append(Problem("types", message, column, rows,
                                    rules.types, len(rows)))
        elif check == "field_uniqueness":
            problems.append(_duplicates([id_values[r] for r in rows], column, rows, source,
                                        namer, rules))
        else:
            problems.append(_rule_problem(column, check, rows, values, rule, source, namer,
                                          rules, target=column == schema.target))
    if target_rows:
        rows = sorted(set(target_rows))
        policy = "drop" if rules.target_values == "drop" else "fail"  # no target: no training
        at = next((i for i, p in enumerate(problems) if p.check != "types"), len(problems))
        problems.insert(at, Problem(
            "target_values",
            f"{source}: target {schema.target!r} is missing or not finite in {len(rows)} rows "
            f"(first: {namer.row(rows[0])})", schema.target, rows, policy, len(rows)))
    return problems


def _rank(key: tuple[str, str], schema: Any) -> int:
    column, check = key
    if check == "finite" and column != schema.target:
        return 0
    if column == schema.target and check in ("not_nullable", "finite"):
        return 1
    return 2 if check == "field_uniqueness" else 3


def _raise_unexpected(source: str, column: Any, check: Any, value: Any) -> None:
    from conveyor.errors import DataError

    raise DataError(f"{source}: column {column!r}: check {check} could not run: {value}; "
                    "does validate.columns give it the right dtype?")


def _duplicates(ids: list[Any], column: str, rows: list[int], source: str, namer: RowNamer,
                rules: Any) -> Problem:
    """``ids``: the id of each row in ``rows`` (every row whose id repeats, in order)."""
    import pandas as pd

    value = plain(ids[0])
    same = [r for r, v in zip(rows, ids, strict=True) if plain(v) == value]
    repeats = len(rows) - len({plain(v) for v in ids})
    message = (f"{source}: id {value!r} in {column!r} repeats on {namer.row(same[0])} and "
               f"{namer.row(same[1])} ({repeats} repeats)")
    # drop keeps the first row of each id and drops its repeats
    repeated = pd.Series(ids, dtype=object).duplicated(keep="first").to_numpy()
    dropped = [r for r, dup in zip(rows, repeated, strict=True) if dup]
    return Problem("duplicate_ids", message, column, dropped if rules.duplicate_ids == "drop"
                   else rows, rules.duplicate_ids, repeats)


def _rule_problem(column: str, check: str, rows: list[int], values: list[Any],
                  rule: Any, source: str, namer: RowNamer, rules: Any, *,
                  target: bool) -> Problem:
    key = f"validate.columns.{column}"
    n = len(rows)
    what = {
        "min": lambda: f"below {key}.min {rule.min:g}",
        "max": lambda: f"above {key}.max {rule.max:g}",
        "allowed": lambda: f"hold values outside {key}.allowed "
                           f"[{', '.join(str(v) for v in rule.allowed)}]",
        "not_nullable": lambda: f"are missing a value ({key}.nullable is false)",
        "integer": lambda: f"are not whole numbers ({key}.dtype integer)",
        "bool": lambda: f"are not true/false ({key}.dtype bool)",
    }.get(check, lambda: f"fail {check}")()
    shown = None if check == "not_nullable" else values
    label = f"target {column!r}" if target else f"column {column!r}"
    message = f"{source}: {label}: {n} rows {what}: {namer.rows(rows, values=shown)}"
    if check == "allowed" and any(isinstance(v, bool) for v in rule.allowed) and any(
            isinstance(v, str) for v in values):
        message += " (YAML reads yes/no/on/off as true/false: quote the allowed values)"
    policy = (rule.policy if rule is not None and rule.policy else None) or rules.values
    return Problem("values", message, column, rows, policy, n)

