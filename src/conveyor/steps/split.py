"""split: a stratified hold-out split of the validated table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.errors import DataError
from conveyor.steps.base import BaseStep, StepContext, StepResult

__all__ = ["SplitStep"]


class SplitStep(BaseStep):
    name = "split"
    inputs = ("validate.table",)
    outputs = ("train", "test")
    config_keys = ("split", "schema")
    default = True

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return f"train {info.get('train_rows')} / test {info.get('test_rows')}"

    def _run(self, ctx: StepContext) -> StepResult:
        from sklearn.model_selection import train_test_split

        spec = ctx.spec.split
        frame = ctx.read_table("validate.table")
        target = frame[ctx.spec.schema_.target]
        try:
            train, test = train_test_split(
                frame, test_size=spec.test_size, random_state=spec.seed,
                stratify=target if spec.stratify else None,
            )
        except ValueError as exc:
            raise DataError(f"cannot split {len(frame)} rows with split.test_size="
                            f"{spec.test_size}: {exc}") from None
        return StepResult(
            outputs={"train": ctx.write_table("train", train.reset_index(drop=True)),
                     "test": ctx.write_table("test", test.reset_index(drop=True))},
            info={"train_rows": len(train), "test_rows": len(test)},
        )
