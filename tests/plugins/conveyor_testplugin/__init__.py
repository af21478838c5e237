"""A plug-in as a third party would write it: one step and one data source, each one class,
registered by entry point (tests/integration/test_plugins.py writes the entry points).

Nothing in Conveyor names them: the spec uses ``data: {source: counting, ...}`` and a
``describe:`` section, and Conveyor finds both through ``conveyor.sources`` and
``conveyor.steps``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from conveyor.sources import BaseSource
from conveyor.steps import BaseStep, StepContext, StepResult

__all__ = ["CountingSource", "CountingSpec", "DescribeSpec", "DescribeStep"]


class CountingSpec(BaseModel):
    """``data: {source: counting, rows: N}``: N generated rows, two features, two classes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["counting"]
    rows: int = Field(default=60, ge=10, description="How many rows to make.")


class CountingSource(BaseSource):
    name = "counting"
    spec_model = CountingSpec

    def read(self, config: Any, base_dir: Path) -> tuple[Any, dict[str, Any]]:
        import pandas as pd

        n = config.rows
        frame = pd.DataFrame({
            "x1": [float(i % 7) + (3.0 if i % 2 else 0.0) for i in range(n)],
            "x2": [float((i * 5) % 11) for i in range(n)],
            "label": ["odd" if i % 2 else "even" for i in range(n)],
        })
        return frame, {"uri": f"counting://{n}", "first_line": None, "lines": None}


class DescribeSpec(BaseModel):
    """``describe: {columns: [...]}``: the columns to describe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: list[str] = Field(min_length=1)


class DescribeStep(BaseStep):
    """describe: the mean of chosen columns of the training split."""

    name = "describe"
    inputs = ("split.train",)
    outputs = ("stats",)
    config_keys = ("describe",)
    config_model = DescribeSpec

    def _run(self, ctx: StepContext) -> StepResult:
        section = ctx.spec.section("describe")
        train = ctx.read_table("split.train")
        stats = {column: float(train[column].mean()) for column in section.columns}
        return StepResult(outputs={"stats": ctx.write_json("stats", stats)},
                          info={"rows": len(train), "columns": list(stats)})

    def tags(self, info: Mapping[str, Any]) -> dict[str, str]:
        return {"testplugin.described_rows": str(info.get("rows"))}

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return f"described {info.get('rows')} rows ({', '.join(info.get('columns', []))})"
