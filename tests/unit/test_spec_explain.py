"""conveyor.spec.explain: one rule turns a pydantic error into ``file:line: key: message``.

The pipeline spec, the lab spec and the lab's classifier configs all explain errors with it,
so these pure cases pin the rule once; test_spec_loader and tests/unit/lab pin it per file.
"""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conveyor.spec.explain import explain, locate, unknown_key_message


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: Literal["f1", "accuracy"] = "f1"
    size: float = Field(default=0.3, gt=0, lt=1)


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    inner: _Inner | None = None


SOURCES = {(): ("x.yaml", 1), ("name",): ("x.yaml", 1), ("inner",): ("x.yaml", 2),
           ("inner", "metrc"): ("x.yaml", 3), ("inner", "size"): ("x.yaml", 4)}


def _error(data: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        _Outer.model_validate(data)
    return str(explain(caught.value, SOURCES, _Outer))


def test_locate_walks_up_to_the_nearest_key_with_a_line() -> None:
    assert locate(SOURCES, ("inner", "size")) == ("x.yaml", 4)
    assert locate(SOURCES, ("inner", "absent", "deeper")) == ("x.yaml", 2)
    assert locate(SOURCES, ("nowhere",)) == ("x.yaml", 1)
    assert locate({}, ("a",)) == ("<spec>", None)


def test_unknown_key_names_the_nearest_valid_key_or_lists_them() -> None:
    assert unknown_key_message("metrc", ["metric", "size"]) == \
        "unknown key 'metrc'; did you mean 'metric'?"
    assert unknown_key_message("zzz", ["metric", "size"]) == \
        "unknown key 'zzz'; valid keys: metric, size"
    assert len(unknown_key_message("k" * 10_000, ["metric"])) < 200


def test_a_typo_beats_the_missing_key_it_causes_and_names_its_line() -> None:
    # "nmae" is both an unknown key and a missing "name": the typo explains both
    assert _error({"nmae": "a"}) == "x.yaml:1: nmae: unknown key 'nmae'; did you mean 'name'?"
    assert _error({"name": "a", "inner": {"metrc": "f1"}}) == \
        "x.yaml:3: inner.metrc: unknown key 'metrc'; did you mean 'metric'?"


@pytest.mark.parametrize(("data", "expected"), [
    ({}, "x.yaml:1: name: required key is missing"),  # no line of its own: the document's
    ({"name": "a", "inner": {"metric": "auc"}},
     "x.yaml:2: inner.metric: input should be 'f1' or 'accuracy', got 'auc'"),
    ({"name": "a", "inner": {"size": 2}},
     "x.yaml:4: inner.size: Input should be less than 1, got 2"),
    ({"name": "a", "inner": {"size": "x" * 5000}}, "got 'xxxx"),
    # a value where a section goes named the model's class ("instance of _Inner")
    ({"name": "a", "inner": "f1"},
     "x.yaml:2: inner: expected a mapping with the keys metric, size, got 'f1'"),
])
def test_values_are_explained_in_one_short_line(data: dict, expected: str) -> None:
    message = _error(data)
    assert expected in message
    assert "\n" not in message and len(message) < 400
