"""gate: compare the evaluation metrics with the spec's bounds; the verdict decides whether
the model may be registered and exported, and a rejection makes the run ``rejected``. The
gate also renders the run's HTML report (with the verdict), rejected or not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.modeling.gate import judge
from conveyor.monitoring.alerts import notify_gate_failure
from conveyor.steps.base import BaseStep, StepContext, StepResult
from conveyor.steps.reporting import REPORT_INPUTS, write_run_report

if TYPE_CHECKING:
    from conveyor.spec import Spec

__all__ = ["GateStep"]


class GateStep(BaseStep):
    name = "gate"
    inputs = ("evaluate.metrics",)
    optional_inputs = REPORT_INPUTS
    outputs = ("verdict", "report")
    config_keys = ("gate",)
    default = True
    #: the report names this run and renders this run's spec: never another run's (ADR 0041)
    cacheable = False

    def _run(self, ctx: StepContext) -> StepResult:
        verdict = judge(ctx.read_json("evaluate.metrics"), ctx.spec.gate)
        if not verdict["passed"]:  # an alert when the spec's webhook variable is set
            notify_gate_failure(ctx.spec, verdict["reason"], ctx.run_id)
        # the report before the verdict halts the run: a rejected run has one too (ADR 0041)
        return StepResult(outputs={"verdict": ctx.write_json("verdict", verdict),
                                   "report": write_run_report(ctx, verdict)},
                          info={"passed": verdict["passed"], "reason": verdict["reason"]})

    def tags(self, info: Mapping[str, Any]) -> dict[str, str]:
        if "passed" not in info:
            return {}
        return {"conveyor.gate": "passed" if info["passed"] else "rejected"}

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return "passed" if info.get("passed") else f"rejected: {info.get('reason', '')}"

    def outcome(self, info: Mapping[str, Any]) -> str | None:
        return None if info.get("passed", True) else "rejected"

    def halt(self, info: Mapping[str, Any], spec: Spec) -> str | None:
        """A rejection ends the run, unless ``registry.allow_unvalidated`` publishes anyway."""
        if info.get("passed", True) or spec.registry.allow_unvalidated:
            return None
        return (f"gate rejected the model: {info.get('reason', '')}; nothing was registered "
                "or exported")
