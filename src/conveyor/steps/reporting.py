"""The run's report, gathered from what the steps before the gate wrote and rendered by
:func:`conveyor.modeling.report.render_report`.

The gate step calls :func:`write_run_report` with its verdict, before a rejection halts the
run, so a rejected run has its report too: that is when a person most wants to read one
(docs/decisions/0041-evaluation-report-and-threshold.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.ids import now_iso

if TYPE_CHECKING:
    from conveyor.steps.base import StepContext
    from conveyor.store import ArtifactRef

__all__ = ["REPORT_INPUTS", "write_run_report"]

#: what the report reads when the run has it (the gate's ``optional_inputs``)
REPORT_INPUTS = ("evaluate.plots", "validate.report", "train.threshold", "train.search",
                 "train.search_history")


def _json(ctx: StepContext, name: str) -> Any:
    return ctx.read_json(name) if name in ctx.inputs else None


def write_run_report(ctx: StepContext, verdict: dict[str, Any] | None) -> ArtifactRef:
    """Render the run's ``report.html`` into the calling step's folder and return its ref."""
    from conveyor.modeling.report import render_report, spec_as_yaml

    store = ctx.store
    images: dict[str, bytes] = {}
    for ref in _json(ctx, "evaluate.plots") or []:
        images[ref["title"]] = store.get_bytes(ref["uri"], sha256=ref.get("sha256"))
    history = None
    if "train.search_history" in ctx.inputs:
        ref = ctx.inputs["train.search_history"]
        history = store.get_bytes(ref.uri, sha256=ref.sha256)
    train = ctx.upstream.get("train", {})
    facts = {"model": train.get("estimator") or ctx.spec.model.estimator,
             **{k: v for k, v in (ctx.upstream.get("evaluate", {}).get("facts") or {}).items()
                if k in ("train rows", "test rows", "features")}}
    page = render_report(
        pipeline=ctx.spec.name, run_id=ctx.run_id, metrics=ctx.read_json("evaluate.metrics"),
        images=images, verdict=verdict, facts=facts, data=_json(ctx, "validate.report"),
        spec_yaml=spec_as_yaml(ctx.spec.dump()), target=ctx.spec.schema_.target,
        search=_json(ctx, "train.search"), search_history=history,
        threshold=_json(ctx, "train.threshold"), created=now_iso())
    return ctx.write_bytes("report.html", page.encode("utf-8"))
