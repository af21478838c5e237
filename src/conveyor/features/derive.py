"""Derived columns (``derive:``): evaluated over whole columns, inside the saved model.

:class:`conveyor.features.transformers.DeriveColumns` is the first step of the model's
Pipeline, so ``conveyor serve`` and ``conveyor score`` compute ``family_size`` and ``title``
from the raw columns exactly as training did. The spec's expressions travel in the model as
text and are parsed again (by :mod:`conveyor.spec.expressions`, which refuses anything outside
the language) when the model computes them. Custom Python functions are allowed only by
import path from the packages named in ``CONVEYOR_FEATURE_MODULES`` (the user's own), checked
on the resolved object.
"""

from __future__ import annotations

import importlib
import inspect
import operator
import os
from collections.abc import Mapping
from typing import Any

from conveyor.errors import DataError, SpecError
from conveyor.spec.expressions import ExpressionError, parse, referenced_columns

__all__ = [
    "FEATURE_MODULES_ENV",
    "derive_frame",
    "evaluate",
    "plain_rule",
    "resolve_function",
    "source_columns",
]

FEATURE_MODULES_ENV = "CONVEYOR_FEATURE_MODULES"

_BINARY = {"Add": operator.add, "Sub": operator.sub, "Mult": operator.mul,
           "Div": operator.truediv, "FloorDiv": operator.floordiv, "Mod": operator.mod,
           "Pow": operator.pow}
_COMPARE = {"Eq": operator.eq, "NotEq": operator.ne, "Lt": operator.lt, "LtE": operator.le,
            "Gt": operator.gt, "GtE": operator.ge}


def evaluate(text: str, frame: Any) -> Any:
    """The value of expression ``text`` over ``frame``: a Series as long as the frame.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"SibSp": [1, 0], "Parch": [0, 2],
    ...                       "Name": ["Braund, Mr. Owen", "Cumings, Mrs. John"]})
    >>> evaluate("SibSp + Parch + 1", frame).tolist()
    [2, 3]
    >>> evaluate('extract(Name, "([A-Za-z]+)\\\\.")', frame).tolist()
    ['Mr', 'Mrs']
    >>> evaluate("where(SibSp + Parch == 0, 1, 0)", frame).tolist()
    [0, 0]
    """
    import pandas as pd

    value = _eval(parse(text).body, frame)
    if not isinstance(value, pd.Series):
        value = pd.Series([value] * len(frame), index=frame.index)
    return value


def _eval(node: Any, frame: Any) -> Any:
    import ast

    import numpy as np
    import pandas as pd

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return _column(frame, node.id)
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op).__name__](_eval(node.left, frame), _eval(node.right, frame))
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, frame)
        if isinstance(node.op, ast.Not):
            return ~_as_bool(value) if isinstance(value, pd.Series) else not value
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BoolOp):
        values = [_as_bool(_eval(v, frame)) for v in node.values]
        out = values[0]
        for value in values[1:]:
            out = (out & value) if isinstance(node.op, ast.And) else (out | value)
        return out
    if isinstance(node, ast.Compare):
        left = _eval(node.left, frame)
        result = None
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, frame)
            part = _COMPARE[type(op).__name__](left, right)
            result = part if result is None else (result & part)
            left = right
        return result
    assert isinstance(node, ast.Call)  # the parser allows nothing else
    name = node.func.id
    if name == "col":
        return _column(frame, node.args[0].value)
    if name == "isin":
        return _series(_eval(node.args[0], frame), frame).isin(
            [v.value for v in node.args[1].elts])
    if name in ("extract", "contains"):
        text = _series(_eval(node.args[0], frame), frame)
        text = text.where(text.isna(), text.astype(str))
        pattern = node.args[1].value
        if name == "contains":
            return text.str.contains(pattern, regex=True, na=False)
        group = node.args[2].value if len(node.args) == 3 else 1
        found = text.str.extract(pattern, expand=True)
        if not 1 <= group <= found.shape[1]:
            raise DataError(f"extract(): the pattern {pattern!r} has {found.shape[1]} groups; "
                            f"group {group} does not exist")
        return found.iloc[:, group - 1]
    args = [_eval(a, frame) for a in node.args]
    if name == "where":
        cond, yes, no = args
        cond = _as_bool(_series(cond, frame))
        return pd.Series(np.where(cond, _values(yes, frame), _values(no, frame)),
                         index=frame.index).infer_objects()
    if name in ("len", "lower", "upper", "strip"):
        text = _series(args[0], frame)
        text = text.where(text.isna(), text.astype(str))
        return {"len": text.str.len, "lower": text.str.lower, "upper": text.str.upper,
                "strip": text.str.strip}[name]()
    if name == "str":
        value = _series(args[0], frame)
        return value.where(value.isna(), value.astype(str))
    if name == "number":
        return pd.to_numeric(_series(args[0], frame), errors="coerce")
    if name in ("isnull", "notnull"):
        value = _series(args[0], frame)
        return value.isna() if name == "isnull" else value.notna()
    if name == "fillna":
        return _series(args[0], frame).fillna(args[1])
    if name == "clip":
        return _series(args[0], frame).clip(args[1], args[2])
    if name == "round":
        return _series(args[0], frame).round(int(args[1]) if len(args) == 2 else 0)
    if name in ("min", "max"):
        left, right = _series(args[0], frame), _series(args[1], frame)
        return (np.minimum if name == "min" else np.maximum)(left, right)
    fn = {"abs": np.abs, "ceil": np.ceil, "exp": np.exp, "floor": np.floor, "log": np.log,
          "log1p": np.log1p, "sqrt": np.sqrt}[name]
    return fn(pd.to_numeric(_series(args[0], frame), errors="raise"))


def _column(frame: Any, name: str) -> Any:
    if name not in frame.columns:
        raise KeyError(name)
    return frame[name]


def _series(value: Any, frame: Any) -> Any:
    import pandas as pd

    return value if isinstance(value, pd.Series) else pd.Series(
        [value] * len(frame), index=frame.index)


def _values(value: Any, frame: Any) -> Any:
    return _series(value, frame).to_numpy()


def _as_bool(value: Any) -> Any:
    import pandas as pd

    if isinstance(value, pd.Series):
        return value.fillna(False).astype(bool)
    return bool(value)


def resolve_function(path: str, *, key: str = "derive") -> Any:
    """A custom feature function by import path, from a module ``CONVEYOR_FEATURE_MODULES``
    allows (comma-separated package names: the user's own).

    Raises:
        SpecError: no allow-list, a module outside it, not a plain function, or not found.
    """
    allowed = [m.strip() for m in os.environ.get(FEATURE_MODULES_ENV, "").split(",")
               if m.strip()]
    module_name, _, attr = path.rpartition(".")
    if not allowed:
        raise SpecError(f"custom feature function {path!r} needs {FEATURE_MODULES_ENV} to name "
                        "the packages it may come from (e.g. my_features)", key=key)

    def inside(module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in allowed)

    if not module_name or not inside(module_name) or any(
            part.startswith("_") for part in path.split(".")):
        raise SpecError(f"feature function {path!r} is outside {FEATURE_MODULES_ENV} "
                        f"({', '.join(allowed)})", key=key)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"cannot import {module_name!r} for {path!r}: {exc}", key=key) from None
    fn = getattr(module, attr, None)
    if not inspect.isfunction(fn) or not inside(getattr(fn, "__module__", "") or ""):
        raise SpecError(f"{path!r} is not a function defined in {', '.join(allowed)}", key=key)
    return fn


def source_columns(derive: Mapping[str, Any]) -> list[str]:
    """The table's columns the derivations read (not the derived ones), in spec order."""
    derived: set[str] = set()
    out: list[str] = []
    for name, rule in derive.items():
        if isinstance(rule, str):
            for column in sorted(referenced_columns(parse(rule))):
                if column not in derived and column not in out:
                    out.append(column)
        else:
            for column in getattr(rule, "columns", None) or rule.get("columns", []):
                if column not in derived and column not in out:
                    out.append(column)
        derived.add(name)
    return out


def plain_rule(rule: Any) -> Any:
    """A spec entry (string or ``{function, columns}`` model) as plain data for the model."""
    if isinstance(rule, str):
        return rule
    data = rule.model_dump() if hasattr(rule, "model_dump") else dict(rule)
    return {"function": data["function"], "columns": list(data.get("columns") or [])}


def derive_frame(frame: Any, derive: Mapping[str, Any], *, source: str = "data") -> Any:
    """``frame`` with the derived columns appended, in spec order (each may use the earlier).

    Raises:
        DataError: a derivation that fails on this data (a missing column, a type that does
            not fit the operation, an existing column of the same name), naming ``derive.<name>``.
    """
    import numpy as np
    import pandas as pd

    out = frame.copy()
    for name, rule in derive.items():
        rule = plain_rule(rule)
        where = f"{source}: derive.{name}"
        if name in frame.columns:
            raise DataError(f"{where}: column {name!r} already exists in the data; choose "
                            "another name")
        try:
            if isinstance(rule, str):
                value = evaluate(rule, out)
            else:
                fn = resolve_function(rule["function"], key=f"derive.{name}.function")
                missing = [c for c in rule["columns"] if c not in out.columns]
                if missing:
                    raise KeyError(missing[0])
                value = fn(out[rule["columns"]] if rule["columns"] else out)
        except KeyError as exc:
            raise DataError(f"{where}: no column {exc.args[0]!r} in the data (columns: "
                            f"{', '.join(map(str, frame.columns[:12]))}"
                            f"{', ...' if len(frame.columns) > 12 else ''})") from None
        except ExpressionError as exc:  # a model whose stored expression no longer parses
            raise DataError(f"{where}: {exc}") from None
        except (TypeError, ValueError, ZeroDivisionError) as exc:
            raise DataError(f"{where}: cannot compute {rule!r} on this data: "
                            f"{str(exc).splitlines()[0]}") from None
        value = pd.Series(np.asarray(value), index=out.index) if not isinstance(
            value, pd.Series) else value
        if len(value) != len(out):
            raise DataError(f"{where}: gave {len(value)} values for {len(out)} rows")
        if value.dtype == bool:
            value = value.astype("int64")  # a flag is a 0/1 feature, as the encoders expect
        if pd.api.types.is_float_dtype(value):
            value = value.replace([np.inf, -np.inf], np.nan)
        out[name] = value
    return out
