"""register: a model that passed the gate becomes a version of ``registry.name`` — one version
per trained model (docs/decisions/0016-one-version-per-trained-model.md).

The registration key is the sha256 of the trained model folder in the Store (``train.model``):
a re-run of the step, a resumed run and a fully cached run (whose ``train`` reuses an earlier
run's model) all find that model's version instead of adding one; a retrained model
(``--from train``, another ``C``) has another digest and gets a new version. Every version
carries what ``conveyor promote`` needs: the hold-out set (the test split's features and
label, published once under ``{root}/{pipeline}/_holdout/``), the registry digest of the
model and the test metrics.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from conveyor.modeling.gate import may_publish
from conveyor.steps.base import BaseStep, StepContext, StepResult
from conveyor.store import ArtifactRef
from conveyor.tracking import RUN_TAG, PromotionEvidence, register_model, withdraw_versions

__all__ = ["RegisterStep", "publish_holdout", "registration_key"]

log = logging.getLogger(__name__)
_CHECK_ROWS = 10  # the check batch a promotion predicts through the registry


def registration_key(model: ArtifactRef) -> str:
    """The registry's idempotency key of a pipeline's trained model: its folder digest."""
    return f"sha256:{model.sha256}"


def publish_holdout(ctx: StepContext) -> ArtifactRef:
    """The rows promotion scores this model on: the test split's features and label.

    Written once per (test split, features, label) under ``{root}/{pipeline}/_holdout/``,
    outside every run folder, so ``conveyor gc`` never takes it from a registered version.
    """
    test = ctx.inputs["split.test"]
    features = list(ctx.read_json("validate.report")["features"])
    target = ctx.spec.schema_.target
    material = json.dumps({"test": test.sha256, "features": features, "target": target})
    key = hashlib.sha256(material.encode()).hexdigest()[:24]
    frame = ctx.read_table("split.test")[[*features, target]].reset_index(drop=True)
    return ctx.store.put_table_once(ctx.store.uri(ctx.spec.name, "_holdout", f"{key}.parquet"),
                                    frame)


class RegisterStep(BaseStep):
    name = "register"
    inputs = ("gate.verdict", "train.model", "split.test", "validate.report",
              "evaluate.metrics")
    outputs = ("registration",)
    config_keys = ("registry",)
    section = "registry"
    default = True
    cacheable = False

    def tags(self, info: Mapping[str, Any]) -> dict[str, str]:
        return {"conveyor.registered_version": str(info["version"])} if "version" in info else {}

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return f"{info.get('name')} v{info.get('version')}"

    def withdraw(self, ctx: StepContext, kept: Mapping[str, Any]) -> dict[str, str]:
        """Delete the versions this failed run created (ADR 0010), except the one its
        completed manifest names and any that someone gave an alias meanwhile."""
        name = ctx.spec.registry.name
        if not name:
            return {}
        keep = [str(kept.get("info", {}).get("version", ""))]
        withdrawn = withdraw_versions(ctx.tracker, name, ctx.run_id, keep=keep)
        return {"conveyor.withdrawn_version": ",".join(withdrawn)} if withdrawn else {}

    def _run(self, ctx: StepContext) -> StepResult:
        allowed, why = may_publish(ctx.read_json("gate.verdict"),
                                   allow_unvalidated=ctx.spec.registry.allow_unvalidated)
        name = ctx.spec.registry.name
        if not allowed:
            return StepResult(status="skipped", info={"reason": why})
        if not name:
            return StepResult(status="skipped", info={"reason": "registry.name is not set"})
        train = ctx.upstream["train"]
        model = ctx.inputs["train.model"]
        holdout = publish_holdout(ctx)
        version, created = register_model(
            ctx.tracker, train["model_uri"], name, key=registration_key(model),
            conveyor_run_id=ctx.run_id,
            evidence=PromotionEvidence(
                holdout_uri=holdout.uri, holdout_sha256=holdout.sha256,
                holdout_target=ctx.spec.schema_.target,
                metrics=ctx.read_json("evaluate.metrics")),
            tags={"conveyor.pipeline": ctx.spec.name,
                  "conveyor.spec_hash": ctx.loaded.spec_hash,
                  "conveyor.model_sha256": model.sha256,
                  "conveyor.validated": str(not why).lower(),
                  # promotion scores a regressor by rmse, mae, r2, mape (ADR 0038)
                  "conveyor.task": str(ctx.read_json("validate.report").get(
                      "task", "classification"))},
        )
        registered_by = dict(version.tags or {}).get(RUN_TAG, ctx.run_id)
        record = {"name": name, "version": str(version.version),
                  "model_uri": f"models:/{name}/{version.version}", "note": why,
                  "registered_by": registered_by}
        # the stored record is the same on a re-run; whether this attempt created it is a fact
        # about the attempt, kept in the step's info only
        outputs = {"registration": ctx.write_json("registration", record)}
        plan = self._challenger_plan(ctx, record["version"], holdout) if not why else None
        if plan is not None:
            outputs["challenger"] = ctx.write_json("challenger", plan)
        return StepResult(outputs=outputs, info={
            **record, "created": created,
            **({"challenger": True, "promote": plan["promote"]} if plan else {})})

    # --- gate against the champion (issue 11, docs/decisions/0042-...)
    @staticmethod
    def _challenger_plan(ctx: StepContext, version: str,
                         holdout: ArtifactRef) -> dict[str, Any] | None:
        """What :meth:`publish` needs to make this version the ``challenger`` (and, with
        ``gate.promote``, production): the gate's comparison and the compare-and-set's base.

        ``None`` without a champion check, or when the candidate *is* the champion.
        """
        gate = ctx.spec.gate
        champion = ctx.upstream.get("gate", {}).get("champion")
        if gate.champion is None or not champion or champion["status"] == "same":
            return None
        from conveyor.promotion.scoring import as_array

        verdict = ctx.read_json("gate.verdict")
        row = next(iter(verdict["comparison"]), {})
        target = ctx.spec.schema_.target
        rows = ctx.store.get_table(holdout).drop(columns=[target]).iloc[:_CHECK_ROWS]
        return {"name": ctx.spec.registry.name, "version": version, "promote": gate.promote,
                "metric": gate.champion.metric, "min_delta": gate.champion.min_delta,
                "candidate": ctx.read_json("evaluate.metrics").get(gate.champion.metric),
                "champion": row.get("champion"), "production": champion["production"],
                "generation": champion["generation"], "reason": verdict["reason"],
                "holdout_uri": holdout.uri, "holdout_sha256": holdout.sha256,
                "holdout_target": target,
                "check_predictions": as_array(ctx.load_model().predict(rows)).tolist()}

    def publish(self, ctx: StepContext, outputs: Mapping[str, ArtifactRef]) -> None:
        """After the run's manifest: alias ``challenger`` on a version that beat the champion,
        and with ``gate.promote`` production moved to it by ``conveyor promote``'s
        compare-and-set. Recorded as the MLflow run's tags ``conveyor.challenger_version``,
        ``conveyor.promotion`` (promoted, kept, aborted) and ``conveyor.promotion_reason``."""
        ref = outputs.get("challenger")
        if ref is None:
            return
        from conveyor.promotion import promote_challenger
        from conveyor.tracking.aliases import CHALLENGER, set_alias

        plan = ctx.store.get_json(ref.uri, sha256=ref.sha256)
        set_alias(ctx.tracker, plan["name"], CHALLENGER, plan["version"])
        tags = {"conveyor.challenger_version": plan["version"]}
        if plan["promote"]:
            decision = promote_challenger(ctx.tracker, plan, store=ctx.store,
                                          owner=f"conveyor run {ctx.run_id}")
            tags.update({"conveyor.promotion": decision.action,
                         "conveyor.promotion_reason": decision.reason[:500]})
            if decision.action != "promoted":
                log.warning("%s v%s was not promoted: %s", plan["name"], plan["version"],
                            decision.reason)
        ctx.tracker.set_tags(tags)
