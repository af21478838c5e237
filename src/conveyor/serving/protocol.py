"""Request decoding and validation: a body in, a batch in the model's signature order out.

Every way a request can be wrong ends in a :class:`RequestError` carrying the HTTP status and
a one-line message naming the column, row or limit; nothing here raises anything else for a
bad request. Formats (MLflow's scoring protocol, as ``mlflow models serve`` reads it):

* ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}``
* ``{"dataframe_records": [{"col": value, ...}, ...]}``
* ``{"instances": [{...}, ...]}`` or ``{"inputs": {"col": [...], ...}}`` (either shape for
  either key)
* ``text/csv`` with a header row
* ``/predict``: ``{"records": [{...}, ...]}`` or ``{"rows": [{...} | [...], ...]}`` (a row
  given as a list is in the order ``/openapi.json`` lists the features)

When every feature is numeric, the batch is a float64 array ``(rows, features)`` decoded
straight from the JSON (no DataFrame per request); otherwise a pandas DataFrame with the
signature's columns in order. Why these limits and this design: docs/decisions/0032.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from conveyor.errors import BadInputError

__all__ = [
    "FORMATS",
    "Limits",
    "RequestError",
    "Schema",
    "decode_csv",
    "decode_invocations",
    "decode_predict",
    "parse_json",
]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_NUMERIC = {"double": "number", "float": "number", "long": "integer", "integer": "integer"}
_JSON_TYPES = {**_NUMERIC, "boolean": "boolean", "string": "string", "datetime": "string",
               "binary": "string"}
# orjson's own nesting limit: deeper documents are refused while parsing. Below it, every value
# must sit where its format puts a value (at most 4 levels down), so the decoders refuse
# anything nested deeper than the format by naming the row and column (ADR 0032).
MAX_DEPTH = 1024


class RequestError(BadInputError):
    """A request the server refuses: ``status`` (4xx) and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """What one request may hold.

    Attributes:
        max_rows: rows per request (``--max-rows``).
        max_body_bytes: bytes of body per request (``--max-body-bytes``), chunked or not.
    """

    max_rows: int = 10_000
    max_body_bytes: int = 8 * 1024 * 1024


class Schema:
    """The request schema: the model's signature columns, in the order the model expects.

    Args:
        features: ``(name, dtype, required)`` triples (:class:`conveyor.serving.model.Feature`).
    """

    def __init__(self, features: Sequence[Any], *, max_rows: int = Limits.max_rows) -> None:
        self.max_rows = max_rows
        self.names = [f.name for f in features]
        self.dtypes = [f.dtype for f in features]
        self.required = [bool(f.required) for f in features]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.numeric = all(d in _NUMERIC for d in self.dtypes)
        self.all_required = all(self.required)
        self._integer = np.array([d in ("long", "integer") for d in self.dtypes])
        self._required = np.array(self.required)
        self._names_set = frozenset(self.names)
        self._orders: dict[tuple[str, ...], list[int] | None] = {}

    # ------------------------------------------------------------------ shapes in

    def from_rows(self, data: Any, columns: Sequence[str] | None = None) -> Any:
        """A batch from rows of values (lists), in ``columns``' order (default: ours)."""
        if not isinstance(data, list):
            raise RequestError(400, "rows must be a JSON array of arrays")
        order = None
        if columns is not None:
            order = self._order(columns)
        width = len(columns) if columns is not None else len(self.names)
        self._check_count(len(data))
        if not self.numeric:
            return self._frame_from_rows(data, columns or self.names)
        try:
            X = np.array(data, dtype=None)
        except (ValueError, TypeError):
            X = None
        if X is None or X.dtype.kind not in "fiu" or X.ndim != 2 or X.shape[1] != width:
            self._explain_rows(data, columns or self.names, width)
            raise RequestError(400, "rows must be arrays of numbers")  # not reached
        X = X.astype(np.float64, copy=False)
        if order is not None:
            X = X[:, order]
        return self._check_numbers(X)

    def _order(self, columns: Sequence[str]) -> list[int] | None:
        """Where each signature column is in ``columns`` (``None``: already in order).

        Checked once per distinct header: a client sends the same one request after request.
        """
        key = tuple(columns)
        try:
            return self._orders[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable "name": a list or an object
            raise RequestError(400, "columns must be an array of names") from None
        if not all(isinstance(c, str) for c in key):
            raise RequestError(400, "columns must be an array of names")
        self._check_columns(key)
        order = None if list(key) == self.names else [key.index(n) for n in self.names]
        if len(self._orders) >= 64:  # bounded: headers are few, but a client could vary them
            self._orders.clear()
        self._orders[key] = order
        return order

    def from_records(self, records: Any) -> Any:
        """A batch from a list of ``{column: value}`` objects."""
        if not isinstance(records, list):
            raise RequestError(400, "records must be a JSON array of objects")
        self._check_count(len(records))
        names = self.names
        width = len(names)
        rows = []
        append = rows.append
        try:
            for record in records:
                if len(record) != width:  # extra or missing columns: say which
                    raise KeyError
                append([record[name] for name in names])
        except (KeyError, TypeError):
            self._explain_records(records)
        return self.from_rows(rows)

    def from_columns(self, columns: Any) -> Any:
        """A batch from ``{column: [values]}``."""
        if not isinstance(columns, dict):
            raise RequestError(400, "columns must be a JSON object of arrays")
        self._check_columns(list(columns))
        lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
        if -1 in lengths:
            bad = next(k for k, v in columns.items() if not isinstance(v, list))
            raise RequestError(400, f"column {bad!r}: expected an array of values")
        if len(lengths) > 1:
            raise RequestError(400, "columns have different lengths: "
                               + ", ".join(f"{k}={len(v)}" for k, v in columns.items()))
        count = lengths.pop() if lengths else 0
        self._check_count(count)
        return self.from_rows([list(row) for row in zip(*(columns[n] for n in self.names),
                                                           strict=True)])

    def from_frame(self, frame: Any) -> Any:
        """A batch from a DataFrame (a CSV body)."""
        self._check_columns([str(c) for c in frame.columns])
        self._check_count(len(frame))
        frame = frame[self.names]
        if not self.numeric:
            return self._check_frame(frame)
        for name in self.names:
            column = frame[name]
            if column.dtype.kind not in "fiub":
                bad = _first_non_number(column.tolist())
                row, value = bad if bad else (0, column.iloc[0])
                raise RequestError(400, f"column {name!r} row {row}: expected "
                                   f"{self.dtypes[self.index[name]]}, got {value!r}")
        return self._check_numbers(frame.to_numpy(dtype=np.float64))

    # ------------------------------------------------------------------ checks

    def _check_count(self, count: int) -> None:
        if count == 0:
            raise RequestError(400, "empty batch: send at least one row")
        limit = self.max_rows
        if count > limit:
            raise RequestError(413, f"{count} rows is over the limit of {limit} rows per "
                               "request (--max-rows); split the batch")

    def _check_columns(self, columns: Sequence[Any]) -> None:
        given = set(columns)
        if len(given) != len(columns):
            dup = next(c for c in columns if list(columns).count(c) > 1)
            raise RequestError(400, f"column {dup!r} is given twice")
        missing = [n for n, req in zip(self.names, self.required, strict=True)
                   if req and n not in given]
        if missing:
            raise RequestError(400, f"missing column {missing[0]!r}"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                               + "; the model's features are listed at /openapi.json")
        extra = [c for c in columns if c not in self._names_set]
        if extra:
            raise RequestError(400, f"unknown column {extra[0]!r}: not a feature of this "
                               "model (see /openapi.json)")
        if len(given) != len(self.names):  # an optional column left out: the DataFrame path
            raise RequestError(400, "missing column "
                               f"{next(n for n in self.names if n not in given)!r}")

    def _check_numbers(self, X: Any) -> Any:
        bad = ~np.isfinite(X)
        if bad.any():
            bad &= self._required | ~np.isnan(X)  # NaN is allowed in an optional column
            if bad.any():
                row, col = (int(i) for i in np.argwhere(bad)[0])
                value = X[row, col]
                shown = "a missing value" if np.isnan(value) else repr(float(value))
                raise RequestError(400, f"column {self.names[col]!r} row {row}: {shown} "
                                   "where the signature requires a finite number")
        if self._integer.any():
            ints = X[:, self._integer]
            off = ints != np.floor(ints)
            off &= np.isfinite(ints)
            if off.any():
                row, col = (int(i) for i in np.argwhere(off)[0])
                name = [n for n, i in zip(self.names, self._integer, strict=True) if i][col]
                raise RequestError(400, f"column {name!r} row {row}: expected an integer, "
                                   f"got {float(ints[row, col])!r}")
        return X

    def _explain_rows(self, data: list[Any], columns: Sequence[str], width: int) -> None:
        for r, row in enumerate(data):
            if not isinstance(row, list):
                raise RequestError(400, f"row {r}: expected an array of {width} values, got "
                                   f"{_kind(row)}")
            if len(row) != width:
                raise RequestError(400, f"row {r}: {len(row)} values for {width} columns")
            for c, value in enumerate(row):
                if _is_number(value):
                    continue
                name = columns[c]
                dtype = self.dtypes[self.index[name]]
                if value is None:
                    if self.required[self.index[name]]:
                        raise RequestError(400, f"column {name!r} row {r}: null where the "
                                           "signature requires a value")
                    continue
                raise RequestError(400, f"column {name!r} row {r}: expected {dtype}, got "
                                   f"{_show(value)}")
        # only optional nulls: a float array with NaN where allowed
        raise _Retry

    def _explain_records(self, records: list[Any]) -> None:
        for r, record in enumerate(records):
            if not isinstance(record, dict):
                raise RequestError(400, f"row {r}: expected an object of column values, got "
                                   f"{_kind(record)}")
            missing = [n for n in self.names if n not in record]
            if missing:
                raise RequestError(400, f"row {r}: missing column {missing[0]!r}"
                                   + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                                      else ""))
            extra = [c for c in record if c not in self._names_set]
            if extra:
                raise RequestError(400, f"row {r}: unknown column {extra[0]!r}: not a feature "
                                   "of this model (see /openapi.json)")
        raise RequestError(400, "records must be objects of column values")

    # ------------------------------------------------------------------ non-numeric

    def _frame_from_rows(self, data: list[Any], columns: Sequence[str]) -> Any:
        import pandas as pd

        width = len(columns)
        for r, row in enumerate(data):
            if not isinstance(row, list) or len(row) != width:
                raise RequestError(400, f"row {r}: expected an array of {width} values")
        frame = pd.DataFrame(data, columns=list(columns))
        return self._check_frame(frame[self.names])

    def _check_frame(self, frame: Any) -> Any:
        import pandas as pd

        out = {}
        for name, dtype, required in zip(self.names, self.dtypes, self.required, strict=True):
            values = frame[name].tolist()
            for r, value in enumerate(values):
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    if required:
                        raise RequestError(400, f"column {name!r} row {r}: a missing value "
                                           "where the signature requires one")
                    continue
                if not _fits(value, dtype):
                    raise RequestError(400, f"column {name!r} row {r}: expected {dtype}, got "
                                       f"{_show(value)}")
            out[name] = values
        frame = pd.DataFrame(out, columns=self.names)
        for name, dtype in zip(self.names, self.dtypes, strict=True):
            if dtype in ("long", "integer") and not frame[name].isna().any():
                frame[name] = frame[name].astype("int64")
            elif dtype in _NUMERIC:
                frame[name] = frame[name].astype("float64")
        return frame

    # ------------------------------------------------------------------ OpenAPI

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of one row (an object of the signature's columns)."""
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {n: {"type": _JSON_TYPES.get(d, "string"), "x-mlflow-type": d}
                           for n, d in zip(self.names, self.dtypes, strict=True)},
            "required": [n for n, r in zip(self.names, self.required, strict=True) if r],
        }


class _Retry(Exception):
    """Rows with only allowed nulls: decode them the slow way."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _first_non_number(values: list[Any]) -> tuple[int, Any] | None:
    for r, value in enumerate(values):
        if not _is_number(value):
            return r, value
    return None


def _fits(value: Any, dtype: str) -> bool:
    if dtype in ("double", "float"):
        return _is_number(value)
    if dtype in ("long", "integer"):
        return _is_number(value) and float(value).is_integer()
    if dtype == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return _kind(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------------- bodies


def parse_json(body: bytes) -> Any:
    """Parse a JSON body; malformed or too deeply nested JSON is a 400."""
    if not body.strip():
        raise RequestError(400, "empty body: send a JSON object")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = str(exc).split(":", 1)[0]
        if "depth" in str(exc).lower() or "recursion" in str(exc).lower():
            raise RequestError(400, f"JSON nested deeper than {MAX_DEPTH} levels") from None
        raise RequestError(400, f"malformed JSON at byte {exc.pos}: {reason}") from None
    if not isinstance(doc, dict):
        raise RequestError(400, f"expected a JSON object, got {_kind(doc)}")
    return doc


def _decode(schema: Schema, doc: dict[str, Any], key: str) -> Any:
    value = doc[key]
    try:
        if key == "dataframe_split":
            if not isinstance(value, dict) or "data" not in value:
                raise RequestError(400, "dataframe_split must be an object with \"columns\" "
                                   "and \"data\"")
            unknown = set(value) - {"columns", "data", "index"}
            if unknown:
                raise RequestError(400, f"dataframe_split: unknown key {sorted(unknown)[0]!r}")
            columns = value.get("columns")
            if columns is not None and not isinstance(columns, list):
                raise RequestError(400, "dataframe_split.columns must be an array of names")
            return schema.from_rows(value["data"], columns)
        if isinstance(value, dict) and key in ("instances", "inputs"):
            return schema.from_columns(value)
        if key == "rows" and isinstance(value, list) and value and isinstance(value[0], list):
            return schema.from_rows(value)
        return schema.from_records(value)
    except _Retry:
        return _decode_with_nulls(schema, doc, key)


def _decode_with_nulls(schema: Schema, doc: dict[str, Any], key: str) -> Any:
    """Rows holding nulls in optional columns: NaN there (numeric) or the DataFrame path."""
    value = doc[key]
    if key == "dataframe_split":
        rows, columns = value["data"], value.get("columns") or schema.names
    elif isinstance(value, dict):
        columns = list(value)
        rows = [list(r) for r in zip(*value.values(), strict=True)]
    elif value and isinstance(value[0], list):
        rows, columns = value, schema.names
    else:
        columns = schema.names
        rows = [[record[n] for n in columns] for record in value]
    X = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)
    order = [list(columns).index(n) for n in schema.names]
    return schema._check_numbers(X[:, order])


def decode_invocations(schema: Schema, doc: dict[str, Any]) -> Any:
    """The batch of an MLflow scoring request (a parsed JSON object)."""
    keys = [k for k in doc if k in FORMATS]
    if len(keys) != 1:
        raise RequestError(400, "expected exactly one of "
                           + ", ".join(f'"{k}"' for k in FORMATS)
                           + f"; got keys {sorted(doc)}")
    extra = sorted(set(doc) - {keys[0], "params"})
    if extra:
        raise RequestError(400, f"unknown key {extra[0]!r} next to {keys[0]!r}")
    if doc.get("params"):
        raise RequestError(400, "this model takes no params; drop \"params\"")
    return _decode(schema, doc, keys[0])


def decode_predict(schema: Schema, doc: dict[str, Any]) -> Any:
    """The batch of a ``/predict`` request: ``{"records": [...]}`` or ``{"rows": [...]}``."""
    keys = [k for k in doc if k in ("records", "rows")]
    if len(keys) != 1 or len(doc) != 1:
        raise RequestError(400, 'expected {"records": [{...}, ...]} or {"rows": [...]}; got '
                           f"keys {sorted(doc)}")
    return _decode(schema, doc, keys[0])


def decode_csv(schema: Schema, body: bytes) -> Any:
    """The batch of a ``text/csv`` body (a header row, then one row per line)."""
    import io

    import pandas as pd

    if not body.strip():
        raise RequestError(400, "empty body: send a header row and at least one row")
    try:
        frame = pd.read_csv(io.BytesIO(body), encoding="utf-8")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"malformed CSV: {str(exc).splitlines()[0][:200]}") from None
    return schema.from_frame(frame)
