"""The step registry: which steps a spec runs and in which order (no services)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import PluginError, SpecError
from conveyor.spec import load_spec
from conveyor.steps import STEP_NAMES, BaseStep, pipeline_steps, registered_steps, step_class
from conveyor.steps.registry import _ordered

SPEC = """\
name: tiny
data: {source: sklearn, name: iris}
schema: {target: target}
model: {estimator: logistic_regression}
"""
BUILT_IN = ["ingest", "validate", "split", "train", "evaluate", "gate", "register", "export"]


def _load(tmp_path: Path, text: str):
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return load_spec(path)


def test_the_built_in_steps_are_registered_by_entry_point_in_their_order() -> None:
    assert set(BUILT_IN) <= set(registered_steps())
    assert list(STEP_NAMES) == BUILT_IN
    assert [s.name for s in pipeline_steps()] == BUILT_IN
    assert step_class("nope") is None


def test_a_spec_without_steps_runs_every_built_in_step(tmp_path: Path) -> None:
    loaded = _load(tmp_path, SPEC)
    assert [s.name for s in pipeline_steps(loaded)] == BUILT_IN
    assert "steps" not in loaded.spec.dump()  # the spec hash of existing specs is unchanged


def test_a_steps_list_chooses_and_the_inputs_order(tmp_path: Path) -> None:
    loaded = _load(tmp_path, SPEC + "steps: [evaluate, train, split, validate, ingest]\n")
    assert [s.name for s in pipeline_steps(loaded)] == BUILT_IN[:5]


def test_an_unknown_step_names_the_item_and_its_line(tmp_path: Path) -> None:
    loaded = _load(tmp_path, SPEC + "steps:\n  - ingest\n  - valdate\n")
    with pytest.raises(SpecError) as err:
        pipeline_steps(loaded)
    assert err.value.key == "steps.1" and err.value.line == 7
    assert "unknown step 'valdate'; did you mean 'validate'?" in str(err.value)


def test_a_step_without_its_upstream_names_the_steps_key(tmp_path: Path) -> None:
    loaded = _load(tmp_path, SPEC + "steps: [ingest, validate, split, train, evaluate, "
                   "register]\n")
    with pytest.raises(SpecError) as err:
        pipeline_steps(loaded)
    assert err.value.key == "steps" and err.value.line == 5
    assert ("step 'register' needs gate.verdict, but step 'gate' is not in steps; add it, "
            "or remove 'register'") in str(err.value)


class _A(BaseStep):
    name = "a"
    inputs = ("b.x",)


class _B(BaseStep):
    name = "b"
    inputs = ("a.x",)


class _C(BaseStep):
    name = "c"
    after = ("d",)


class _D(BaseStep):
    name = "d"


def test_order_follows_after_and_refuses_a_cycle() -> None:
    assert [s.name for s in _ordered([_C, _D])] == ["d", "c"]
    with pytest.raises(PluginError, match="a, b depend on each other in a cycle"):
        _ordered([_A, _B])
