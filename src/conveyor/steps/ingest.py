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
        # pandas: imported when a task runs, not at parse
        from conveyor.errors import DataError
        from conveyor.sources import scan_source

        chunks, facts = scan_source(ctx.spec.data, ctx.loaded.base_dir)
        first: list[Any] = []

        def kept(frames: Any) -> Any:  # the first rows describe the dataset to MLflow
            for frame in frames:
                if not first:
                    first.append(frame.head(1000))
                yield frame

        def check(rows: int, columns: list[str]) -> None:
            if not rows:
                raise DataError(f"{facts['uri']} has no rows")

        # chunk by chunk into one Parquet file, published once whole (ADR 0044)
        ref, rows, columns = ctx.store.put_table_batches(ctx.output_uri("raw.parquet"),
                                                         kept(chunks), check=check)
        ctx.tracker.log_dataset(first[0], source=facts["uri"], name=ctx.spec.name,
                                digest=ref.sha256, context="raw",
                                targets=ctx.spec.schema_.target, rows=rows)
        info = {"rows": rows, "columns": len(columns), "source": facts["uri"],
                "first_line": facts["first_line"], "lines": facts.get("lines"),
                "data_hash": ref.sha256}
        if facts.get("parts"):  # several files: where each one's rows start
            info["parts"] = facts["parts"]
        outputs = {"raw": ref}
        if ctx.spec.split.test_data is not None:
            outputs["test_raw"] = self._test_set(ctx, info)
        return StepResult(outputs=outputs, info=info)

    def _test_set(self, ctx: StepContext, info: dict[str, Any]) -> Any:
        """The separate test set ``split.test_data`` names, read here like the data: ingest
        always runs, so its hash tells the split step when the test files change."""
        from conveyor.errors import DataError
        from conveyor.sources import scan_source

        chunks, facts = scan_source(ctx.spec.split.test_data, ctx.loaded.base_dir)

        def check(rows: int, columns: list[str]) -> None:
            if not rows:
                raise DataError(f"{facts['uri']} has no rows (split.test_data)")

        ref, rows, _ = ctx.store.put_table_batches(ctx.output_uri("test_raw.parquet"),
                                                   chunks, check=check)
        info.update({"test_rows": rows, "test_source": facts["uri"],
                     "test_lines": facts.get("lines"), "test_data_hash": ref.sha256})
        return ref
