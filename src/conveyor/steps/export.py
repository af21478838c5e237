"""export: copy the model, its metrics and a manifest to ``export.uri`` (a folder or S3).

Layout: ``{export.uri}/{run_id}/{model/, metrics.json, manifest.json}`` and
``{export.uri}/latest.json``. The manifest is written after everything it lists and
``latest.json`` last, so a reader that starts from either never sees a half-written export.
"""

from __future__ import annotations

from datetime import UTC, datetime

from conveyor.steps.base import BaseStep, StepContext, StepResult
from conveyor.steps.register import may_publish
from conveyor.store import Store, home_dir, to_uri

__all__ = ["ExportStep"]


class ExportStep(BaseStep):
    name = "export"
    inputs = ("train.model", "evaluate.metrics", "gate.verdict")
    outputs = ("manifest",)
    config_keys = ("export",)
    cacheable = False

    def _run(self, ctx: StepContext) -> StepResult:
        allowed, why = may_publish(ctx)
        if not allowed:
            return StepResult(status="skipped", info={"reason": why})
        spec = ctx.spec.export
        root = to_uri(spec.uri, ctx.loaded.base_dir) if spec.uri else (
            home_dir() / "exports" / ctx.spec.name).as_uri()
        target = Store(root, spec.storage_options)
        base = target.uri(ctx.run_id)
        model = ctx.store.copy_dir(ctx.inputs["train.model"], target, f"{base}/model")
        metrics_ref = ctx.inputs["evaluate.metrics"]
        metrics = target.put_bytes(f"{base}/metrics.json",
                                   ctx.store.get_bytes(metrics_ref.uri, sha256=metrics_ref.sha256))
        manifest = {
            "pipeline": ctx.spec.name, "run_id": ctx.run_id,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "spec_hash": ctx.loaded.spec_hash,
            "registered": ctx.upstream.get("register", {}).get("model_uri"),
            "artifacts": {"model": model.to_dict(), "metrics.json": metrics.to_dict()},
        }
        ref = target.put_json(f"{base}/manifest.json", manifest)
        target.put_json(target.uri("latest.json"), {"run_id": ctx.run_id, "manifest": ref.uri,
                                                     "sha256": ref.sha256})
        return StepResult(outputs={"manifest": ref},
                          info={"uri": base, "model": model.uri, "metrics": metrics.uri})
