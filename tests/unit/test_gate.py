"""The gate's judgement: metrics against bounds, pure."""

from __future__ import annotations

from conveyor.modeling.gate import judge
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
