"""Runners decide where and when steps run; the executor is what they share."""

from conveyor.runners.executor import (
    Run,
    StepRecord,
    execute_step,
    fail_run,
    finish_run,
    new_run_id,
    open_run,
    store_for,
)
from conveyor.runners.local import LocalRunner, RunSummary, plan_steps

__all__ = [
    "LocalRunner",
    "Run",
    "RunSummary",
    "StepRecord",
    "execute_step",
    "fail_run",
    "finish_run",
    "new_run_id",
    "open_run",
    "plan_steps",
    "store_for",
]
