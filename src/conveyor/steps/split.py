"""split: a stratified hold-out split of the validated table (on the classes, or on quantile
bins of a regression target)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.modeling.training import split_table
from conveyor.steps.base import BaseStep, StepContext, StepResult

__all__ = ["SplitStep"]


class SplitStep(BaseStep):
    name = "split"
    inputs = ("validate.table", "validate.report")
    optional_inputs = ("ingest.test_raw",)
    outputs = ("train", "test")
    config_keys = ("split", "schema", "derive")
    default = True

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return f"train {info.get('train_rows')} / test {info.get('test_rows')}"

    def _run(self, ctx: StepContext) -> StepResult:
        from conveyor.validation.chunked import ParquetChunks, chunk_rows

        size = chunk_rows(ctx.spec)
        rows = ctx.upstream.get("validate", {}).get("rows")
        if not isinstance(rows, int) or rows > size:
            chunks = ParquetChunks(ctx.store.local_file(ctx.inputs["validate.table"],
                                                        ctx.scratch), size)
            if chunks.rows > size:  # ADR 0051: the rows stream through, never all in memory
                return self._run_chunked(ctx, chunks)
        frame = ctx.read_table("validate.table")
        if ctx.spec.split.test_data is not None:
            train, test = frame, self._test_set(ctx, list(frame.columns))
        else:
            task = ctx.read_json("validate.report").get("task", "classification")
            train, test = split_table(frame, ctx.spec.schema_.target, ctx.spec.split,
                                      task=task)
        del frame  # its rows are in train and test now: not a third copy while they are written
        return StepResult(
            outputs={"train": ctx.write_table("train", train),
                     "test": ctx.write_table("test", test)},
            info={"train_rows": len(train), "test_rows": len(test)},
        )

    def _run_chunked(self, ctx: StepContext, chunks: Any) -> StepResult:
        """The same rows as :meth:`_run`, in the same order: the split's indices come from
        the target column alone (:func:`split_table` of the row numbers and the target), then
        the rows are taken chunk by chunk (:func:`conveyor.validation.chunked.take_rows`)."""
        import numpy as np
        import pandas as pd

        from conveyor.validation.chunked import take_rows

        put = ctx.store.put_table_batches
        if ctx.spec.split.test_data is not None:
            test = self._test_set(ctx, chunks.columns)
            train, rows, _ = put(ctx.output_uri("train.parquet"), chunks())
            return StepResult(
                outputs={"train": train, "test": ctx.write_table("test", test)},
                info={"train_rows": rows, "test_rows": len(test)})
        target = ctx.spec.schema_.target
        task = ctx.read_json("validate.report").get("task", "classification")
        column = pd.concat(chunks([target]))[target].reset_index(drop=True)
        rows = pd.DataFrame({"__row": np.arange(len(column)), target: column})
        del column
        train, test = split_table(rows, target, ctx.spec.split, task=task)
        tables = take_rows(chunks, {"train": train["__row"].to_numpy(),
                                    "test": test["__row"].to_numpy()}, ctx.scratch)
        del rows, train, test
        train_ref, train_rows, _ = put(ctx.output_uri("train.parquet"), tables["train"]())
        test_ref, test_rows, _ = put(ctx.output_uri("test.parquet"), tables["test"]())
        return StepResult(outputs={"train": train_ref, "test": test_ref},
                          info={"train_rows": train_rows, "test_rows": test_rows})

    def _test_set(self, ctx: StepContext, columns: list[str]) -> Any:
        """``split.test_data`` as ingest read it, checked and typed as the data were."""
        from conveyor.errors import ConveyorRuntimeError, DataError
        from conveyor.sources.lines import LineMap
        from conveyor.validation.table import validate_table

        if "ingest.test_raw" not in ctx.inputs:
            raise ConveyorRuntimeError("split.test_data is set but ingest read no test set in "
                                       f"run {ctx.run_id}; run step ingest again")
        ingest = ctx.upstream.get("ingest", {})
        source = str(ingest.get("test_source", "test data")).rstrip("/").rsplit("/", 1)[-1]
        raw = ctx.read_table("ingest.test_raw")
        if ctx.spec.derive:  # checked with its derived columns, as the data were
            from conveyor.features.derive import derive_frame

            raw = derive_frame(raw, ctx.spec.derive, source=source)
        test, _ = validate_table(raw, ctx.spec, source=source,
                                 lines=LineMap.from_json(ingest.get("test_lines")))
        missing = [c for c in columns if c not in test.columns]
        if missing:
            raise DataError(f"{source}: the test set has no column(s) {', '.join(missing)} "
                            "that the data have (split.test_data)")
        return test[columns]
