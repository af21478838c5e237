"""gate: compare the evaluation metrics with the spec's bounds; the verdict decides whether
the model may be registered and exported."""

from __future__ import annotations

from conveyor.modeling.gate import judge
from conveyor.steps.base import BaseStep, StepContext, StepResult

__all__ = ["GateStep"]


class GateStep(BaseStep):
    name = "gate"
    inputs = ("evaluate.metrics",)
    outputs = ("verdict",)
    config_keys = ("gate",)

    def _run(self, ctx: StepContext) -> StepResult:
        verdict = judge(ctx.read_json("evaluate.metrics"), ctx.spec.gate)
        return StepResult(outputs={"verdict": ctx.write_json("verdict", verdict)},
                          info={"passed": verdict["passed"], "reason": verdict["reason"]})
