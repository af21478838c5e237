"""split: a stratified hold-out split of the validated table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.modeling.training import split_table
from conveyor.steps.base import BaseStep, StepContext, StepResult

if TYPE_CHECKING:
    from conveyor.spec.models import SplitSpec

__all__ = ["SplitStep", "split_table"]


def split_table(frame: Any, target: str, spec: SplitSpec) -> tuple[Any, Any]:
    """The (train, test) hold-out split of ``frame``, each re-indexed from 0.

    Stratified by ``target`` when ``spec.stratify``; the same frame and spec give the same
    split (``spec.seed``).

    Raises:
        DataError: the table cannot be split that way (too few rows or rows per class).
    """
    from sklearn.model_selection import train_test_split

    try:
        train, test = train_test_split(
            frame, test_size=spec.test_size, random_state=spec.seed,
            stratify=frame[target] if spec.stratify else None,
        )
    except ValueError as exc:
        raise DataError(f"cannot split {len(frame)} rows with split.test_size="
                        f"{spec.test_size}: {exc}") from None
    return train.reset_index(drop=True), test.reset_index(drop=True)


class SplitStep(BaseStep):
    name = "split"
    inputs = ("validate.table",)
    outputs = ("train", "test")
    config_keys = ("split", "schema")
    default = True

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return f"train {info.get('train_rows')} / test {info.get('test_rows')}"

    def _run(self, ctx: StepContext) -> StepResult:
        frame = ctx.read_table("validate.table")
        train, test = split_table(frame, ctx.spec.schema_.target, ctx.spec.split)
        return StepResult(
            outputs={"train": ctx.write_table("train", train),
                     "test": ctx.write_table("test", test)},
            info={"train_rows": len(train), "test_rows": len(test)},
        )
