"""score: batch-score a table with the run's trained model, after it was registered and
exported (docs/scoring.md, "The score step").

A plug-in step like any other (ADR 0027): it runs when the spec has a ``score:`` section, is
registered in the entry-point group ``conveyor.steps``, and so becomes a task of the
generated Airflow DAG. The model is the run's own ``train.model``, its folder checked against
the hash the run recorded before it is loaded; nothing is scored when the gate rejected it.
The output is written whole or not at all (:func:`conveyor.serving.batch.score`); a re-run of
the step replaces it (``{run_id}`` in ``score.output`` keeps one output per run).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from conveyor.modeling.gate import may_publish
from conveyor.steps.base import BaseStep, StepContext, StepResult
from conveyor.store import to_uri

__all__ = ["ScoreSpec", "ScoreStep"]


class ScoreSpec(BaseModel):
    """``score:``: what to score after the model is published, and where to write it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str = Field(min_length=1, description="CSV or Parquet: a file, a glob or a folder "
                       "(relative to the spec's folder, file:// or s3://).")
    output: str = Field(min_length=1, description="the Parquet output; '{run_id}' is replaced "
                        "by the run's id.")
    id_column: str | None = Field(default=None, description="copied beside the predictions "
                                  "(default: 'id' when the input has it).")
    chunk_rows: int = Field(default=100_000, ge=1, description="rows per chunk.")
    engine: Literal["local", "dask"] = "local"
    scheduler: str | None = Field(default=None, description="a Dask scheduler's address.")
    workers: int = Field(default=2, ge=1, description="LocalCluster workers (dask).")


class ScoreStep(BaseStep):
    """score: the run's model over ``score.input``, into ``score.output``."""

    name = "score"
    inputs = ("train.model", "gate.verdict")
    after = ("register", "export")  # score what was published, once it is
    outputs = ("summary",)
    config_keys = ("score",)
    config_model = ScoreSpec
    cacheable = False  # the input may change under the same URI

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return f"{info.get('rows', 0):,} rows → {info.get('output', '')}"

    def tags(self, info: Mapping[str, Any]) -> dict[str, str]:
        return {"conveyor.scored_output": str(info["output"])} if info.get("output") else {}

    def _run(self, ctx: StepContext) -> StepResult:
        from conveyor.serving.batch import score
        from conveyor.serving.model import ModelIdentity, load

        section: ScoreSpec = ctx.spec.section("score")
        allowed, why = may_publish(ctx.read_json("gate.verdict"),
                                   allow_unvalidated=ctx.spec.registry.allow_unvalidated)
        if not allowed:
            return StepResult(status="skipped", info={"reason": why})
        ref = ctx.inputs["train.model"]
        registered = str(ctx.upstream.get("register", {}).get("model_uri") or "")
        identity = ModelIdentity(
            uri=registered or ref.uri, kind="folder", name=ctx.spec.name,
            version=registered.rpartition("/")[2] or None, alias=None, run_id=ctx.run_id,
            sha256=ref.sha256, location=ref.uri)
        model = load(identity, workdir=ctx.scratch)
        output = to_uri(section.output.replace("{run_id}", ctx.run_id), ctx.loaded.base_dir)
        result = score(identity.uri, to_uri(section.input, ctx.loaded.base_dir), output,
                       id_column=section.id_column, chunk_rows=section.chunk_rows,
                       engine=section.engine, scheduler=section.scheduler,
                       workers=section.workers, overwrite=True, model=model)
        info = {"output": result.output_uri, "rows": result.rows,
                "seconds": round(result.seconds, 3), "model_sha256": result.model_sha256,
                "engine": result.engine}
        return StepResult(outputs={"summary": ctx.write_json("summary", info)}, info=info,
                          metrics={"scored_rows": float(result.rows)})
