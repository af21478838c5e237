"""``@task.conveyor``: a TaskFlow decorator that runs a Conveyor step.

The decorated function runs first and returns the run-time overrides for the step (a mapping
of ``key.path`` to value, or a list of ``key.path=value`` strings, or ``None``); then the step
runs exactly as :class:`~conveyor.airflow.operators.ConveyorStepOperator` would run it::

    @task.conveyor(spec_path="pipelines/churn.yaml", step="train")
    def train(params=None):
        return {"model.params.C": params["C"]}
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.decorator import (
    DecoratedOperator,
    TaskDecorator,
    determine_kwargs,
    task_decorator_factory,
)
from airflow.sdk.definitions.context import context_merge

from conveyor.airflow.operators import ConveyorStepOperator, _encode

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["conveyor_task"]


class _ConveyorDecoratedOperator(DecoratedOperator, ConveyorStepOperator):
    """Call the function for overrides, then run the Conveyor step."""

    template_fields: Sequence[str] = (
        *DecoratedOperator.template_fields,
        *ConveyorStepOperator.template_fields,
    )
    custom_operator_name: str = "@task.conveyor"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs, **kwargs
        )

    def execute(self, context: Context) -> Any:
        context_merge(context, self.op_kwargs)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        chosen = self.python_callable(*self.op_args, **kwargs)
        if isinstance(chosen, Mapping):
            self.overrides = [*self.overrides, *(f"{k}={_encode(v)}" for k, v in chosen.items())]
        elif isinstance(chosen, (list, tuple)):
            self.overrides = [*self.overrides, *map(str, chosen)]
        elif chosen is not None:
            raise TypeError(
                "a @task.conveyor function returns overrides: a mapping of key.path to value, "
                f"a list of 'key.path=value' strings, or None; got {type(chosen).__name__}"
            )
        return ConveyorStepOperator.execute(self, context)


def conveyor_task(
    python_callable: Callable[..., Any] | None = None, **kwargs: Any
) -> TaskDecorator:
    """Wrap a function returning overrides into a Conveyor step task (``@task.conveyor``).

    Args:
        python_callable: the function (given when used without arguments).
        **kwargs: :class:`~conveyor.airflow.operators.ConveyorStepOperator` arguments
            (``spec_path``, ``step``, ``profile``, ...) and task arguments.
    """
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=_ConveyorDecoratedOperator,
        **kwargs,
    )
