"""The gate's judgement: metrics against bounds, pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import SpecError
from conveyor.modeling.gate import judge
from conveyor.spec import load_spec
from conveyor.spec.models import GateSpec


def gate(**bounds: object) -> GateSpec:
    return GateSpec.model_validate(bounds)


def test_every_bound_met_passes_with_no_reason() -> None:
    verdict = judge({"test_f1": 0.95, "test_accuracy": 0.97},
                    gate(test_f1=0.9, test_accuracy=0.95))
    assert verdict == {"passed": True, "reason": "", "checks": [
        {"metric": "test_accuracy", "value": 0.97, "rule": ">= 0.95", "passed": True},
        {"metric": "test_f1", "value": 0.95, "rule": ">= 0.9", "passed": True}]}


def test_a_bound_is_inclusive() -> None:
    assert judge({"test_f1": 0.9}, gate(test_f1=0.9))["passed"] is True
    assert judge({"test_f1": 0.8999}, gate(test_f1=0.9))["passed"] is False


def test_failures_are_named_in_order_with_their_values() -> None:
    verdict = judge({"test_f1": 0.5, "test_accuracy": 0.6},
                    gate(test_f1=0.9, test_accuracy=0.95))
    assert verdict["passed"] is False
    assert verdict["reason"] == ("test_accuracy = 0.6000, needs >= 0.95; "
                                 "test_f1 = 0.5000, needs >= 0.9")


def test_a_maximum_and_a_range() -> None:
    bounds = gate(test_log_loss={"max": 0.3}, test_recall={"min": 0.8, "max": 0.99})
    verdict = judge({"test_log_loss": 0.35, "test_recall": 1.0}, bounds)
    assert [c["rule"] for c in verdict["checks"]] == ["<= 0.3", ">= 0.8 and <= 0.99"]
    assert verdict["reason"] == ("test_log_loss = 0.3500, needs <= 0.3; "
                                 "test_recall = 1.0000, needs >= 0.8 and <= 0.99")
    assert judge({"test_log_loss": 0.2, "test_recall": 0.9}, bounds)["passed"] is True


def test_a_metric_that_was_not_computed_fails() -> None:
    verdict = judge({"test_f1": 0.99}, gate(test_f1=0.9, test_roc_auc=0.9))
    assert verdict["passed"] is False
    assert verdict["reason"] == "test_roc_auc was not computed"
    assert verdict["checks"][1] == {"metric": "test_roc_auc", "value": None,
                                    "rule": ">= 0.9", "passed": False}


def test_no_gate_passes() -> None:
    assert judge({"test_f1": 0.1}, gate()) == {"passed": True, "checks": [], "reason": ""}


# --------------------------------------------------------------------------- gate.champion
# (the comparison itself: tests/unit/promotion/test_champion_compare.py; through `conveyor
# run` with MLflow: tests/integration/test_champion_gate.py)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"


def spec_error(*overrides: str) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(EXAMPLE, overrides, env={"WDBC_PATH": "/data/wdbc.data"})
    assert "\n" not in str(info.value)
    return str(info.value)


def test_champion_spec_shape() -> None:
    loaded = load_spec(EXAMPLE, ("gate.champion.metric=test_f1",
                                 "gate.champion.min_delta=0.005", "gate.promote=true"),
                       env={"WDBC_PATH": "/data/wdbc.data"})
    gate_spec = loaded.spec.gate
    assert gate_spec.champion is not None
    assert (gate_spec.champion.metric, gate_spec.champion.min_delta,
            gate_spec.champion.alias, gate_spec.promote) == ("test_f1", 0.005, "production", True)
    assert sorted(gate_spec.bounds()) == ["test_accuracy", "test_f1"]  # options are no bounds
    assert judge({"test_accuracy": 0.99, "test_f1": 0.99}, gate_spec)["passed"] is True


def test_champion_spec_errors_name_the_key() -> None:
    assert spec_error("gate.champion.metric=test_f2").startswith(
        "<command line>: gate.champion.metric: unknown metric 'test_f2'")
    assert "did you mean 'test_recall'?" in spec_error("gate.champion.metric=test_recal")
    assert "unknown metric 'train_f1'" in spec_error("gate.champion.metric=train_f1")
    negative = spec_error("gate.champion.metric=test_f1", "gate.champion.min_delta=-0.01")
    assert "gate.champion.min_delta: min_delta must be a finite number >= 0" in negative
    assert "got -0.01" in negative
    orphan = spec_error("gate.champion.metric=test_f1", "registry.name=")
    assert "gate.champion: a champion check needs registry.name" in orphan
    assert "gate.promote: gate.promote needs gate.champion" in spec_error("gate.promote=true")
    assert "did you mean 'champion'?" in spec_error("gate.champoin=1")
    assert "gate.promote: gate.promote moves 'production'" in spec_error(
        "gate.champion.metric=test_f1", "gate.champion.alias=staging", "gate.promote=true")
