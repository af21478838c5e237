"""gate: compare the evaluation metrics with the spec's bounds; the verdict decides whether
the model may be registered and exported."""

from __future__ import annotations

from typing import Any

from conveyor.spec.models import GateSpec
from conveyor.steps.base import BaseStep, StepContext, StepResult

__all__ = ["GateStep", "judge"]


def judge(metrics: dict[str, float], gate: GateSpec) -> dict[str, Any]:
    """The verdict of ``gate`` on ``metrics``: every check, and whether all passed."""
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


class GateStep(BaseStep):
    name = "gate"
    inputs = ("evaluate.metrics",)
    outputs = ("verdict",)
    config_keys = ("gate",)

    def _run(self, ctx: StepContext) -> StepResult:
        verdict = judge(ctx.read_json("evaluate.metrics"), ctx.spec.gate)
        return StepResult(outputs={"verdict": ctx.write_json("verdict", verdict)},
                          info={"passed": verdict["passed"], "reason": verdict["reason"]})
