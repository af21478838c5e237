"""export: publish the model, its metrics and a manifest to ``export.uri`` (a folder or S3).

Layout: ``{export.uri}/{run_id}/{model/, metrics.json, report.html, manifest.json}`` and
``{export.uri}/latest.json``. An export is whole or absent
(docs/decisions/0015-export-published-last.md):

1. *stage*: everything is written under ``{export.uri}/_staging/{run_id}-{token}/``;
2. *check*: every staged file is read back and compared with the hash it was written with;
3. *move into place*: the checked files are copied to ``{export.uri}/{run_id}/``, the
   export's ``manifest.json`` last, and the staging folder is removed. A failure at any point
   removes what this attempt wrote.

``latest.json`` is not written by ``_run``: the runner calls the step's
:meth:`ExportStep.publish` hook (:func:`publish_latest`) after the run's own manifest, so it
never names a run that then failed, and a run that fails after this step withdraws its export
through :meth:`ExportStep.withdraw` (:func:`withdraw_export`).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from conveyor.errors import StoreError
from conveyor.ids import now_iso
from conveyor.modeling.gate import may_publish
from conveyor.spec import LoadedSpec
from conveyor.steps.base import BaseStep, StepContext, StepResult
from conveyor.store import ArtifactRef, Store, home_dir, to_uri

__all__ = ["ExportStep", "export_store", "publish_latest", "withdraw_export"]

log = logging.getLogger(__name__)
_STAGING = "_staging"
_LATEST = "latest.json"


def export_store(loaded: LoadedSpec) -> Store:
    """The export target of a spec: ``export.uri``, or ``CONVEYOR_HOME/exports/<pipeline>``."""
    spec = loaded.spec.export
    root = to_uri(spec.uri, loaded.base_dir) if spec.uri else (
        home_dir() / "exports" / loaded.spec.name).as_uri()
    return Store(root, spec.storage_options)


def _check(target: Store, refs: dict[str, ArtifactRef]) -> None:
    """Read every staged file back; a missing or different file fails the export."""
    for ref in refs.values():
        if target.exists(f"{ref.uri}/_conveyor_dir.json"):
            index = target.get_json(f"{ref.uri}/_conveyor_dir.json")
            for rel, sha in index["files"].items():
                target.get_bytes(f"{ref.uri}/{rel}", sha256=sha)
        else:
            target.get_bytes(ref.uri, sha256=ref.sha256)


class ExportStep(BaseStep):
    name = "export"
    inputs = ("train.model", "evaluate.metrics", "gate.verdict")
    optional_inputs = ("gate.report",)
    after = ("register",)  # the export's manifest names the registered version
    outputs = ("manifest",)
    config_keys = ("export",)
    default = True
    cacheable = False

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return str(info.get("uri", ""))

    def publish(self, ctx: StepContext, outputs: Mapping[str, ArtifactRef]) -> None:
        """Point ``latest.json`` at this run's export (a skipped export has no manifest)."""
        if "manifest" in outputs:
            publish_latest(ctx.loaded, ctx.run_id, outputs["manifest"])

    def withdraw(self, ctx: StepContext, kept: Mapping[str, Any]) -> dict[str, str]:
        """Remove the failed run's export and hand ``latest.json`` back (ADR 0015)."""
        keep_sha = kept.get("artifacts", {}).get("manifest", {}).get("sha256")
        removed = withdraw_export(ctx.loaded, ctx.run_id, keep_sha256=keep_sha)
        return {"conveyor.withdrawn_export": "true"} if removed else {}

    def _run(self, ctx: StepContext) -> StepResult:
        allowed, why = may_publish(ctx.read_json("gate.verdict"),
                                   allow_unvalidated=ctx.spec.registry.allow_unvalidated)
        if not allowed:
            return StepResult(status="skipped", info={"reason": why})
        target = export_store(ctx.loaded)
        staging = target.uri(_STAGING, f"{ctx.run_id}-{uuid.uuid4().hex[:8]}")
        base = target.uri(ctx.run_id)
        moved = False
        try:
            staged = {
                "model": ctx.store.copy_dir(ctx.inputs["train.model"], target,
                                            f"{staging}/model"),
                "metrics.json": target.put_bytes(f"{staging}/metrics.json", ctx.store.get_bytes(
                    ctx.inputs["evaluate.metrics"].uri,
                    sha256=ctx.inputs["evaluate.metrics"].sha256)),
            }
            report = ctx.inputs.get("gate.report")
            if report is not None:  # the run's HTML report travels with its model (ADR 0041)
                staged["report.html"] = target.put_bytes(
                    f"{staging}/report.html", ctx.store.get_bytes(report.uri,
                                                                  sha256=report.sha256))
            _check(target, staged)
            moved = True
            final = {"model": target.copy_dir(staged["model"], target, f"{base}/model")}
            for name in [n for n in staged if n != "model"]:
                final[name] = target.put_bytes(f"{base}/{name}", target.get_bytes(
                    staged[name].uri, sha256=staged[name].sha256))
            manifest = {
                "pipeline": ctx.spec.name, "run_id": ctx.run_id,
                "exported_at": now_iso(),
                "spec_hash": ctx.loaded.spec_hash,
                "registered": ctx.upstream.get("register", {}).get("model_uri"),
                "artifacts": {name: ref.to_dict() for name, ref in final.items()},
            }
            ref = target.put_json(f"{base}/manifest.json", manifest)
        except BaseException:
            if moved:
                _quietly(target.delete, base)
            raise
        finally:
            _quietly(target.delete, staging)
        return StepResult(outputs={"manifest": ref},
                          info={"uri": base, "model": final["model"].uri,
                                "metrics": final["metrics.json"].uri,
                                **({"report": final["report.html"].uri}
                                   if "report.html" in final else {})})


def _quietly(action: Any, uri: str) -> None:
    """Clean up after a failure without hiding it (the original error is what matters)."""
    try:
        action(uri)
    except Exception as exc:  # noqa: BLE001 - a failed clean-up must not mask the error
        log.warning("could not remove %s: %s", uri, exc)


def publish_latest(loaded: LoadedSpec, run_id: str, manifest: ArtifactRef) -> ArtifactRef:
    """Point ``{export.uri}/latest.json`` at this run's export (after the run's manifest).

    The pointer it replaces is kept as ``previous``, so a withdrawn export can hand
    ``latest.json`` back to the export before it.
    """
    target = export_store(loaded)
    uri = target.uri(_LATEST)
    previous: dict[str, Any] | None = None
    if target.exists(uri):
        current = target.get_json(uri)
        previous = current if current.get("run_id") != run_id else current.get("previous")
        if isinstance(previous, dict):
            previous = {k: v for k, v in previous.items() if k != "previous"}
    return target.put_json(uri, {"run_id": run_id, "manifest": manifest.uri,
                                 "sha256": manifest.sha256, "previous": previous})


def withdraw_export(loaded: LoadedSpec, run_id: str, *, keep_sha256: str | None = None) -> bool:
    """Remove a failed run's export, and give ``latest.json`` back if it named the run.

    Args:
        loaded: the run's spec.
        run_id: the failed run.
        keep_sha256: the export manifest's hash recorded by the run's manifest (an earlier,
            completed attempt of the run): an export with that manifest is kept.

    Returns:
        Whether an export was removed.
    """
    target = export_store(loaded)
    for name in target.list(target.uri(_STAGING)):
        if name.startswith(f"{run_id}-"):
            _quietly(target.delete, target.uri(_STAGING, name))
    base = target.uri(run_id)
    manifest_uri = f"{base}/manifest.json"
    if keep_sha256 and target.exists(manifest_uri) and hashlib.sha256(
            target.get_bytes(manifest_uri)).hexdigest() == keep_sha256:
        return False
    removed = bool(target.list(base))
    if removed:
        target.delete(base)
        log.warning("run %s failed after exporting: %s withdrawn", run_id, base)
    latest_uri = target.uri(_LATEST)
    try:
        latest = target.get_json(latest_uri) if target.exists(latest_uri) else None
    except StoreError:
        latest = None
    if isinstance(latest, dict) and latest.get("run_id") == run_id:
        previous = latest.get("previous")
        if isinstance(previous, dict) and target.exists(str(previous.get("manifest", ""))):
            target.put_json(latest_uri, {**previous, "previous": None})
        else:
            target.delete(latest_uri)
    return removed
