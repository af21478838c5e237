"""Request decoding against a signature: the paths the breast-cancer model (all doubles,
all required) does not take in tests/integration/test_serve.py: optional columns, integer
and string columns, CSV."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from conveyor.serving.model import Feature
from conveyor.serving.protocol import (
    RequestError,
    Schema,
    decode_csv,
    decode_invocations,
    decode_predict,
    parse_json,
)

NUMERIC = Schema([Feature("a", "double", False), Feature("b", "long", True)], max_rows=3)
MIXED = Schema([Feature("age", "double", False), Feature("sex", "string", True),
                Feature("n", "long", True)], max_rows=3)


def refused(schema: Schema, doc: dict[str, Any]) -> tuple[int, str]:
    with pytest.raises(RequestError) as caught:
        decode_invocations(schema, doc)
    return caught.value.status, caught.value.message


def test_numeric_rows_decode_to_float64_in_signature_order() -> None:
    X = decode_invocations(NUMERIC, {"dataframe_split": {"columns": ["b", "a"],
                                                         "data": [[1, 0.5], [2, 3]]}})
    assert X.dtype == np.float64 and X.tolist() == [[0.5, 1.0], [3.0, 2.0]]
    same = decode_predict(NUMERIC, {"records": [{"b": 1, "a": 0.5}, {"a": 3, "b": 2}]})
    assert same.tolist() == X.tolist()
    assert decode_predict(NUMERIC, {"rows": [[0.5, 1], [3, 2]]}).tolist() == X.tolist()


def test_null_is_nan_in_an_optional_column_and_refused_in_a_required_one() -> None:
    X = decode_invocations(NUMERIC, {"dataframe_records": [{"a": None, "b": 2}]})
    assert math.isnan(X[0, 0]) and X[0, 1] == 2
    assert refused(NUMERIC, {"dataframe_records": [{"a": 1, "b": None}]}) == (
        400, "column 'b' row 0: null where the signature requires a value")


def test_integer_and_row_limits() -> None:
    assert refused(NUMERIC, {"instances": [{"a": 1, "b": 2.5}]}) == (
        400, "column 'b' row 0: expected an integer, got 2.5")
    status, message = refused(NUMERIC, {"instances": [{"a": 1, "b": 2}] * 4})
    assert status == 413 and "4 rows is over the limit of 3" in message


def test_a_mixed_signature_is_a_typed_frame() -> None:
    frame = decode_invocations(MIXED, {"inputs": {"sex": ["m", "f"], "age": [None, 2.0],
                                                  "n": [1, 2]}})
    assert list(frame.columns) == ["age", "sex", "n"]
    assert str(frame["n"].dtype) == "int64" and math.isnan(frame["age"][0])
    assert refused(MIXED, {"dataframe_records": [{"age": 1.0, "sex": 3, "n": 1}]}) == (
        400, "column 'sex' row 0: expected string, got 3")
    assert refused(MIXED, {"dataframe_records": [{"age": 1.0, "n": 1}]})[1].startswith(
        "row 0: missing column 'sex'")


def test_csv_bodies() -> None:
    frame = decode_csv(MIXED, b"sex,age,n\nm,,3\nf,2.5,1\n")
    assert frame["sex"].tolist() == ["m", "f"] and frame["n"].tolist() == [3, 1]
    X = decode_csv(NUMERIC, b"a,b\n1.5,2\n")
    assert X.tolist() == [[1.5, 2.0]]
    with pytest.raises(RequestError, match=r"column 'b' row 0: a missing value"):
        decode_csv(NUMERIC, b"a,b\n1.5,\n")
    with pytest.raises(RequestError, match="unknown column 'c'"):
        decode_csv(NUMERIC, b"a,b,c\n1,2,3\n")


@pytest.mark.parametrize(("body", "message"), [
    (b"", "empty body"),
    (b"[1, 2]", "expected a JSON object, got an array"),
    (b'{"a": NaN}', "malformed JSON"),
    (b"[" * 2000, "nested deeper than 1024"),
])
def test_parse_json_refuses(body: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message) as caught:
        parse_json(body)
    assert caught.value.status == 400
