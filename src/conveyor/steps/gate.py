"""gate: compare the evaluation metrics with the spec's bounds and, with ``gate.champion``,
with the registered model's champion on this run's test rows; the verdict decides whether the
model may be registered and exported, and a rejection makes the run ``rejected``.

The verdict (``gate/verdict.json``) is ``{"passed", "checks", "reason", "champion",
"comparison"}`` (docs/decisions/0042-gate-against-the-champion.md). The gate also renders
the run's HTML report with the verdict, rejected or not (ADR 0041).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.modeling.gate import judge
from conveyor.monitoring.alerts import notify_gate_failure
from conveyor.steps.base import BaseStep, StepContext, StepResult
from conveyor.steps.reporting import REPORT_INPUTS, write_run_report

if TYPE_CHECKING:
    from conveyor.promotion import ChampionCheck
    from conveyor.spec import Spec

__all__ = ["GateStep"]


class GateStep(BaseStep):
    name = "gate"
    inputs = ("evaluate.metrics", "train.model", "split.train", "split.test",
              "validate.report")
    optional_inputs = REPORT_INPUTS
    outputs = ("verdict", "report")
    config_keys = ("gate",)
    default = True
    #: the report names this run and renders this run's spec: never another run's (ADR 0041)
    cacheable = False

    def _run(self, ctx: StepContext) -> StepResult:
        metrics = ctx.read_json("evaluate.metrics")
        verdict: dict[str, Any] = {**judge(metrics, ctx.spec.gate), "champion": None,
                                   "comparison": []}
        info: dict[str, Any] = {}
        if ctx.spec.gate.champion is not None:
            check = self._challenge(ctx, metrics)
            verdict.update(champion=check.champion, comparison=check.comparison)
            if not check.passed:
                verdict["passed"] = False
            reasons = [verdict["reason"]] if verdict["reason"] else []
            if not check.passed or verdict["passed"]:
                reasons.append(check.reason)
            verdict["reason"] = "; ".join(reasons)
            info["champion"] = {"status": check.status,
                                "version": (check.champion or {}).get("version"),
                                "production": check.production,
                                "generation": check.generation}
        if not verdict["passed"]:  # an alert when the spec's webhook variable is set
            notify_gate_failure(ctx.spec, verdict["reason"], ctx.run_id)
        # the report before the verdict halts the run: a rejected run has one too (ADR 0041)
        return StepResult(outputs={"verdict": ctx.write_json("verdict", verdict),
                                   "report": write_run_report(ctx, verdict)},
                          info={"passed": verdict["passed"], "reason": verdict["reason"],
                                **info})

    @staticmethod
    def _challenge(ctx: StepContext, metrics: dict[str, float]) -> ChampionCheck:
        from conveyor.modeling.evaluation import scoring_positive
        from conveyor.modeling.training import split_xy
        from conveyor.promotion import Holdout, challenge_champion
        from conveyor.steps.register import registration_key

        spec = ctx.spec
        champion = spec.gate.champion
        assert champion is not None and spec.registry.name
        target = spec.schema_.target
        features = list(ctx.read_json("validate.report")["features"])
        X, y = split_xy(ctx.read_table("split.test"), features, target)
        positive = scoring_positive(spec.schema_.positive_label,
                                    ctx.read_table("split.train")[target])
        return challenge_champion(
            ctx.tracker, spec.registry.name, Holdout(X=X, y=y.to_numpy(), target=target),
            metrics, metric=champion.metric, min_delta=champion.min_delta,
            alias=champion.alias, positive=positive,
            # what evaluate computed (a regression's rmse … when evaluate.metrics is unwritten)
            metrics=sorted({k.removeprefix("test_") for k in metrics if k.startswith("test_")}),
            candidate_key=registration_key(ctx.inputs["train.model"]))

    def tags(self, info: Mapping[str, Any]) -> dict[str, str]:
        if "passed" not in info:
            return {}
        tags = {"conveyor.gate": "passed" if info["passed"] else "rejected"}
        champion = info.get("champion")
        if champion:
            tags["conveyor.champion_version"] = champion.get("version") or "none"
            tags["conveyor.champion_check"] = champion["status"]
        return tags

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        if not info.get("passed"):
            return f"rejected: {info.get('reason', '')}"
        return f"passed ({info['reason']})" if info.get("champion") else "passed"

    def outcome(self, info: Mapping[str, Any]) -> str | None:
        return None if info.get("passed", True) else "rejected"

    def halt(self, info: Mapping[str, Any], spec: Spec) -> str | None:
        """A rejection ends the run, unless ``registry.allow_unvalidated`` publishes anyway."""
        if info.get("passed", True) or spec.registry.allow_unvalidated:
            return None
        return (f"gate rejected the model: {info.get('reason', '')}; nothing was registered "
                "or exported")
