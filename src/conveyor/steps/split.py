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
    outputs = ("train", "test")
    config_keys = ("split", "schema")
    default = True

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return f"train {info.get('train_rows')} / test {info.get('test_rows')}"

    def _run(self, ctx: StepContext) -> StepResult:
        frame = ctx.read_table("validate.table")
        task = ctx.read_json("validate.report").get("task", "classification")
        train, test = split_table(frame, ctx.spec.schema_.target, ctx.spec.split, task=task)
        return StepResult(
            outputs={"train": ctx.write_table("train", train),
                     "test": ctx.write_table("test", test)},
            info={"train_rows": len(train), "test_rows": len(test)},
        )
