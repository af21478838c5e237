"""ingest: read the source named by ``data:`` into the Store as Parquet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.steps.base import BaseStep, StepContext, StepResult

__all__ = ["IngestStep"]


class IngestStep(BaseStep):
    """Read the raw table. Always runs (the source may have changed); its output's hash then
    decides whether later steps are cached."""

    name = "ingest"
    outputs = ("raw",)
    config_keys = ("data",)
    section = "data"
    default = True
    cacheable = False

    def tags(self, info: Mapping[str, Any]) -> dict[str, str]:
        return {"conveyor.data_hash": info["data_hash"]} if "data_hash" in info else {}

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return f"{info.get('rows')} rows × {info.get('columns')} columns"

    def _run(self, ctx: StepContext) -> StepResult:
        from conveyor.sources import read_source  # pandas: imported when a task runs, not at parse

        frame, facts = read_source(ctx.spec.data, ctx.loaded.base_dir)
        ref = ctx.write_table("raw", frame)
        ctx.tracker.log_dataset(frame, source=facts["uri"], name=ctx.spec.name,
                                digest=ref.sha256, context="raw",
                                targets=ctx.spec.schema_.target)
        return StepResult(
            outputs={"raw": ref},
            info={"rows": len(frame), "columns": len(frame.columns), "source": facts["uri"],
                  "first_line": facts["first_line"], "lines": facts.get("lines"),
                  "data_hash": ref.sha256},
        )
