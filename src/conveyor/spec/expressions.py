"""The expression language of derived columns (``derive:``): parsed, never ``eval``-ed.

An expression is Python's expression syntax cut down to what a feature needs: column names,
numbers and strings, arithmetic, comparisons, ``and``/``or``/``not``, and calls of the
functions in :data:`FUNCTIONS`. Anything else (attributes, subscripts, lambdas,
comprehensions, keyword arguments, calls of anything but a listed name) is refused when the
spec is loaded, with the position of the offending part. Evaluation, over whole columns, is
:func:`conveyor.features.derive.evaluate`; this module is light (the spec imports it).

>>> sorted(referenced_columns(parse("SibSp + Parch + 1")))
['Parch', 'SibSp']
>>> parse("__import__('os')")
Traceback (most recent call last):
...
conveyor.spec.expressions.ExpressionError: unknown function '__import__' (at column 1); \
functions: abs, ceil, clip, col, contains, exp, extract, fillna, floor, isin, isnull, len, \
log, log1p, lower, max, min, notnull, number, round, sqrt, str, strip, upper, where
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache

from conveyor.errors import BadInputError

__all__ = ["FUNCTIONS", "ExpressionError", "parse", "referenced_columns"]

#: name -> (fewest, most) arguments
FUNCTIONS: dict[str, tuple[int, int]] = {
    "abs": (1, 1), "ceil": (1, 1), "clip": (3, 3), "col": (1, 1), "contains": (2, 2),
    "exp": (1, 1), "extract": (2, 3), "fillna": (2, 2), "floor": (1, 1), "isin": (2, 2),
    "isnull": (1, 1), "len": (1, 1), "log": (1, 1), "log1p": (1, 1), "lower": (1, 1),
    "max": (2, 2), "min": (2, 2), "notnull": (1, 1), "number": (1, 1), "round": (1, 2),
    "sqrt": (1, 1), "str": (1, 1), "strip": (1, 1), "upper": (1, 1), "where": (3, 3),
}
MAX_LENGTH = 1000
MAX_NODES = 300
MAX_DEPTH = 40
MAX_PATTERN = 200

_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
              ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or, ast.Eq, ast.NotEq, ast.Lt,
              ast.LtE, ast.Gt, ast.GtE)


class ExpressionError(BadInputError, ValueError):
    """An expression the language does not allow, with where it is (a ``ValueError`` too,
    so the spec's validation locates it under its key)."""


def _where(node: ast.AST) -> str:
    return f" (at column {getattr(node, 'col_offset', 0) + 1})"


@lru_cache(maxsize=512)
def parse(text: str) -> ast.Expression:
    """Parse and check ``text``; the tree is safe to hand to the evaluator.

    Raises:
        ExpressionError: a syntax error or anything outside the language, naming the part
            and its column.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("an expression is needed, e.g. 'SibSp + Parch + 1'")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(text)} characters; at most {MAX_LENGTH}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error at column {exc.offset or 0}: {exc.msg}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise ExpressionError(f"expression has {len(nodes)} parts; at most {MAX_NODES}")
    _check(tree.body, 0)
    return tree


def _check(node: ast.AST, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression nests deeper than {MAX_DEPTH}")
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool)) and node.value is not None:
            raise ExpressionError(f"constant {node.value!r} is not allowed{_where(node)}")
        return
    if isinstance(node, ast.Name):
        return
    if isinstance(node, ast.BinOp):
        _operator(node.op, node)
        _check(node.left, depth + 1)
        _check(node.right, depth + 1)
    elif isinstance(node, ast.UnaryOp):
        _operator(node.op, node)
        _check(node.operand, depth + 1)
    elif isinstance(node, ast.BoolOp):
        _operator(node.op, node)
        for value in node.values:
            _check(value, depth + 1)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            _operator(op, node)
        for value in (node.left, *node.comparators):
            _check(value, depth + 1)
    elif isinstance(node, ast.Call):
        _check_call(node, depth)
    else:
        what = {ast.Attribute: "attribute access", ast.Subscript: "indexing",
                ast.Lambda: "lambda", ast.IfExp: "'x if c else y' (use where(c, x, y))",
                ast.List: "a list outside isin()", ast.Tuple: "a tuple"}.get(
                    type(node), type(node).__name__)
        raise ExpressionError(f"{what} is not allowed{_where(node)}")


def _operator(op: ast.AST, node: ast.AST) -> None:
    if not isinstance(op, _OPERATORS):
        raise ExpressionError(f"operator {type(op).__name__} is not allowed{_where(node)}")


def _check_call(node: ast.Call, depth: int) -> None:
    if not isinstance(node.func, ast.Name):
        raise ExpressionError(f"only the listed functions can be called{_where(node)}")
    name = node.func.id
    if name not in FUNCTIONS:
        raise ExpressionError(f"unknown function {name!r}{_where(node)}; functions: "
                              + ", ".join(sorted(FUNCTIONS)))
    if node.keywords:
        raise ExpressionError(f"{name}() takes no keyword arguments{_where(node)}")
    low, high = FUNCTIONS[name]
    if not low <= len(node.args) <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        raise ExpressionError(f"{name}() takes {wanted} arguments, got {len(node.args)}"
                              f"{_where(node)}")
    args = list(node.args)
    if name == "col":
        if not (isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)):
            raise ExpressionError(f"col() takes a column name in quotes{_where(node)}")
        return
    if name in ("extract", "contains"):
        pattern = args[1]
        if not (isinstance(pattern, ast.Constant) and isinstance(pattern.value, str)):
            raise ExpressionError(f"{name}() takes its pattern as a string{_where(node)}")
        _check_pattern(pattern.value, name, node)
        if name == "extract" and len(args) == 3 and not (
                isinstance(args[2], ast.Constant) and type(args[2].value) is int):
            raise ExpressionError(f"extract()'s group must be a whole number{_where(node)}")
        args = args[:1]
    elif name == "isin":
        values = args[1]
        if not (isinstance(values, ast.List) and all(
                isinstance(v, ast.Constant) for v in values.elts)):
            raise ExpressionError(
                f"isin() takes a list of constants, e.g. isin(Embarked, ['S', 'C']){_where(node)}")
        args = args[:1]
    for arg in args:
        _check(arg, depth + 1)


def _check_pattern(pattern: str, name: str, node: ast.AST) -> None:
    if len(pattern) > MAX_PATTERN:
        raise ExpressionError(f"{name}() pattern is {len(pattern)} characters; at most "
                              f"{MAX_PATTERN}{_where(node)}")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ExpressionError(f"{name}() pattern {pattern!r} is not a regular expression: "
                              f"{exc}{_where(node)}") from None
    if name == "extract" and compiled.groups < 1:
        raise ExpressionError(f"extract() pattern {pattern!r} needs a group in parentheses, "
                              f"e.g. '([A-Za-z]+)\\.'{_where(node)}")


def referenced_columns(tree: ast.Expression) -> set[str]:
    """The column names an expression reads (bare names and ``col("...")``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not _is_function_name(tree, node):
            names.add(node.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "col":
            names.add(node.args[0].value)  # type: ignore[attr-defined]
    return names


def _is_function_name(tree: ast.Expression, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(tree))
