"""The gate's judgement: metrics against a spec's bounds. Pure; used by the gate step and by
the evaluation report."""

from __future__ import annotations

from typing import Any

from conveyor.spec.models import GateSpec

__all__ = ["judge", "may_publish"]


def judge(metrics: dict[str, float], gate: GateSpec) -> dict[str, Any]:
    """The verdict of ``gate`` on ``metrics``: every check, and whether all passed.

    >>> from conveyor.spec.models import GateSpec
    >>> judge({"test_f1": 0.8}, GateSpec.model_validate({"test_f1": 0.9}))["reason"]
    'test_f1 = 0.8000, needs >= 0.9'
    """
    checks = []
    for metric, bound in sorted(gate.bounds().items()):
        value = metrics.get(metric)
        rules = []
        passed = value is not None
        if bound.min is not None:
            rules.append(f">= {bound.min}")
            passed = passed and value >= bound.min
        if bound.max is not None:
            rules.append(f"<= {bound.max}")
            passed = passed and value <= bound.max
        checks.append({"metric": metric, "value": value, "rule": " and ".join(rules),
                       "passed": bool(passed)})
    failed = [c for c in checks if not c["passed"]]
    reason = "; ".join(
        f"{c['metric']} = {c['value']:.4f}, needs {c['rule']}" if c["value"] is not None
        else f"{c['metric']} was not computed" for c in failed
    )
    return {"passed": not failed, "checks": checks, "reason": reason}


def may_publish(verdict: dict[str, Any], *, allow_unvalidated: bool) -> tuple[bool, str]:
    """Whether a verdict allows publishing the model (registering, exporting), and the note
    that goes with it: why not, or that it is published in spite of a rejection.

    >>> may_publish({"passed": False, "reason": "test_f1 = 0.5"}, allow_unvalidated=False)[0]
    False
    """
    if verdict["passed"]:
        return True, ""
    if allow_unvalidated:
        return True, "gate rejected the model; published because registry.allow_unvalidated"
    return False, (f"gate rejected the model ({verdict['reason']}); set "
                   "registry.allow_unvalidated=true to publish it anyway")
