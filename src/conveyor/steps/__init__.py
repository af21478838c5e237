"""Steps: one module per step, and the step graph of a pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.steps.base import BaseStep, StepContext, StepResult, StepStatus
from conveyor.steps.evaluate import EvaluateStep
from conveyor.steps.export import ExportStep
from conveyor.steps.gate import GateStep
from conveyor.steps.ingest import IngestStep
from conveyor.steps.register import RegisterStep
from conveyor.steps.split import SplitStep
from conveyor.steps.train import TrainStep
from conveyor.steps.validate import ValidateStep

if TYPE_CHECKING:
    from conveyor.spec import LoadedSpec, Spec

__all__ = [
    "STEP_NAMES",
    "BaseStep",
    "StepContext",
    "StepResult",
    "StepStatus",
    "check_spec",
    "pipeline_steps",
]

_STEPS: tuple[type[BaseStep], ...] = (
    IngestStep, ValidateStep, SplitStep, TrainStep, EvaluateStep, GateStep, RegisterStep,
    ExportStep,
)
STEP_NAMES = tuple(step.name for step in _STEPS)


def pipeline_steps(spec: Spec | None = None) -> list[BaseStep]:
    """The steps of a pipeline in a topological order (every step after its upstream)."""
    return [step() for step in _STEPS]


def check_spec(loaded: LoadedSpec) -> None:
    """Checks that need more than the spec's shape: the estimator and its parameters.

    Raises:
        SpecError: naming the file, line and key.
    """
    from conveyor.errors import SpecError
    from conveyor.modeling import build_estimator, check_params, resolve_estimator

    spec = loaded.spec
    try:
        estimator = resolve_estimator(spec.model.estimator)
    except SpecError as exc:
        raise loaded.error("model.estimator", exc.reason) from None
    for param, message in check_params(estimator, dict(spec.model.params)):
        raise loaded.error(f"model.params.{param}", message)
    try:  # values too (C=abc), before any run is created
        build_estimator(spec.model.estimator, dict(spec.model.params))
    except SpecError as exc:
        raise loaded.error(exc.key or "model.params", exc.reason) from None
    if spec.model.tune is not None:
        for param, message in check_params(estimator, dict(spec.model.tune.params)):
            raise loaded.error(f"model.tune.params.{param}", message)
