"""register: a model that passed the gate becomes a new version of ``registry.name``, once
per run (a re-run finds its version by tag instead of adding one)."""

from __future__ import annotations

from conveyor.steps.base import BaseStep, StepContext, StepResult
from conveyor.tracking import register_model

__all__ = ["RegisterStep", "may_publish"]


def may_publish(ctx: StepContext) -> tuple[bool, str]:
    """Whether the gate allows publishing this run's model, and why not."""
    verdict = ctx.read_json("gate.verdict")
    if verdict["passed"]:
        return True, ""
    if ctx.spec.registry.allow_unvalidated:
        return True, "gate rejected the model; published because registry.allow_unvalidated"
    return False, (f"gate rejected the model ({verdict['reason']}); set "
                   "registry.allow_unvalidated=true to publish it anyway")


class RegisterStep(BaseStep):
    name = "register"
    inputs = ("gate.verdict", "train.model")
    outputs = ("registration",)
    config_keys = ("registry",)
    cacheable = False

    def _run(self, ctx: StepContext) -> StepResult:
        allowed, why = may_publish(ctx)
        name = ctx.spec.registry.name
        if not allowed:
            return StepResult(status="skipped", info={"reason": why})
        if not name:
            return StepResult(status="skipped", info={"reason": "registry.name is not set"})
        train = ctx.upstream["train"]
        version, created = register_model(
            ctx.tracker, train["model_uri"], name, conveyor_run_id=ctx.run_id,
            tags={"conveyor.pipeline": ctx.spec.name,
                  "conveyor.spec_hash": ctx.loaded.spec_hash,
                  "conveyor.model_sha256": ctx.inputs["train.model"].sha256,
                  "conveyor.validated": str(not why).lower()},
        )
        record = {"name": name, "version": str(version.version),
                  "model_uri": f"models:/{name}/{version.version}", "note": why}
        # the stored record is the same on a re-run; whether this attempt created it is a fact
        # about the attempt, kept in the step's info only
        return StepResult(outputs={"registration": ctx.write_json("registration", record)},
                          info={**record, "created": created})
