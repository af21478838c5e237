"""The task of a pipeline: classification or regression, declared or inferred from the target.

:func:`infer_task` is the one rule, called wherever the task matters: the validate step
decides it once from the whole target column and records it in its report (``task``,
``task_reason``); split, train and evaluate read it from there; promotion scoring falls back
to it for a version registered without a ``conveyor.task`` tag (ADR 0038).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from conveyor.spec.models import CLASSIFICATION_METRICS, LOWER_IS_BETTER, REGRESSION_METRICS

__all__ = [
    "DEFAULT_METRICS",
    "MAX_CLASSES",
    "Task",
    "TaskDecision",
    "check_task",
    "declared_task",
    "default_metric",
    "describe_task",
    "infer_task",
    "lower_is_better",
    "metric_task",
    "spec_metrics",
    "task_problems",
]

Task = Literal["classification", "regression"]

#: An integer-valued numeric target with at most this many distinct values is a class label
#: (digits has 10 classes; a count or a price in whole units has many more values).
MAX_CLASSES = 20

#: ``evaluate.metrics`` when the spec does not list them.
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc"),
    "regression": ("rmse", "mae", "r2", "mape"),
}


class TaskDecision(NamedTuple):
    """The task and why (shown in messages: "regression (214 distinct numeric values)")."""

    task: Task
    reason: str

    def __str__(self) -> str:
        return f"{self.task} ({self.reason})"


def infer_task(y: Any, declared: str = "auto") -> TaskDecision:
    """The task for target values ``y``: the declared one, or the rule below for ``auto``.

    The rule: a target that is not numeric (text, categories, booleans) is a class label; a
    numeric one whose present values are all whole numbers and take at most
    :data:`MAX_CLASSES` distinct values is a class label too (``0/1``, digits ``0…9``);
    every other numeric target (a fraction anywhere, or many distinct whole numbers) is a
    quantity to regress. ``schema.task`` overrides the rule, e.g. for a count with few
    values that should be regressed.

    Args:
        y: the target column (a pandas Series or anything ``pd.Series`` accepts).
        declared: ``schema.task``: ``auto``, ``classification`` or ``regression``.

    >>> import pandas as pd
    >>> infer_task(pd.Series(["M", "B", "M"]))
    TaskDecision(task='classification', reason='text values')
    >>> infer_task(pd.Series([0, 1, 1, 0])).task
    'classification'
    >>> infer_task(pd.Series([151.0, 75.0, 141.0] + list(range(200, 230))))
    TaskDecision(task='regression', reason='33 distinct numeric values')
    >>> infer_task(pd.Series([0.5, 1.0, 1.0]))
    TaskDecision(task='regression', reason='fractional values such as 0.5')
    >>> infer_task(pd.Series([0, 1, 2]), "regression")
    TaskDecision(task='regression', reason='schema.task')
    """
    import numpy as np
    import pandas as pd

    if declared in ("classification", "regression"):
        return TaskDecision(declared, "schema.task")  # type: ignore[arg-type]
    series = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y))
    if pd.api.types.is_bool_dtype(series):
        return TaskDecision("classification", "boolean values")
    if not pd.api.types.is_numeric_dtype(series):
        return TaskDecision("classification", "text values")
    values = series.dropna().to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    fractional = values[values != np.round(values)]
    if fractional.size:
        return TaskDecision("regression", f"fractional values such as {fractional[0]:g}")
    distinct = int(np.unique(values).size)
    if distinct <= MAX_CLASSES:
        return TaskDecision("classification", f"{distinct} integer values")
    return TaskDecision("regression", f"{distinct} distinct numeric values")


def metric_task(metric: str) -> Task | None:
    """The task a metric belongs to (``None`` for an unknown name).

    >>> metric_task("rmse"), metric_task("f1"), metric_task("nope")
    ('regression', 'classification', None)
    """
    if metric in REGRESSION_METRICS:
        return "regression"
    if metric in CLASSIFICATION_METRICS:
        return "classification"
    return None


def default_metric(task: str) -> str:
    """The metric a search or a promotion compares by default: F1, or RMSE.

    >>> default_metric("regression")
    'rmse'
    """
    return "rmse" if task == "regression" else "f1"


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is a better model (``spec.models.LOWER_IS_BETTER``)."""
    return metric in LOWER_IS_BETTER


def declared_task(spec: Any) -> Task | None:
    """The task the spec itself fixes: ``schema.task`` unless ``auto``, else what its
    written metrics imply (all of one task), else ``None`` (decided from the target)."""
    declared = spec.schema_.task
    if declared != "auto":
        return declared
    if "metrics" in spec.evaluate.model_fields_set:
        tasks = {metric_task(m) for m in spec.evaluate.metrics}
        if len(tasks) == 1:
            return tasks.pop()
    return None


def spec_metrics(spec: Any, task: str | None) -> list[str]:
    """The metrics evaluate computes for ``task``: ``evaluate.metrics`` as written, else the
    task's defaults (both tasks' when the task is not known yet)."""
    if "metrics" in spec.evaluate.model_fields_set:
        return list(spec.evaluate.metrics)
    if task is None:
        return [*DEFAULT_METRICS["classification"], *DEFAULT_METRICS["regression"]]
    return list(DEFAULT_METRICS[task])


def task_problems(spec: Any, task: str, *, why: str = "") -> list[tuple[str, str]]:
    """What in the spec does not fit ``task``: (dotted key, message) for each problem.

    Checks ``evaluate.metrics``, the gate's metrics, ``schema.positive_label`` and a tuning
    metric. The estimator is checked by :func:`conveyor.modeling.resolve_estimator`.

    >>> from conveyor.spec.models import Spec
    >>> spec = Spec.model_validate({"name": "d", "data": {"source": "sklearn",
    ...     "name": "iris"}, "schema": {"target": "target"}, "model": {"estimator": "ridge"},
    ...     "gate": {"test_rmse": {"max": 60}}})
    >>> task_problems(spec, "classification")
    [('gate.test_rmse', 'rmse is a regression metric, but the task is classification')]
    """
    because = f" ({why})" if why else ""
    problems: list[tuple[str, str]] = []
    if "metrics" in spec.evaluate.model_fields_set:
        for i, metric in enumerate(spec.evaluate.metrics):
            other = metric_task(metric)
            if other is not None and other != task:
                problems.append((f"evaluate.metrics.{i}", f"{metric} is a {other} metric, but "
                                 f"the task is {task}{because}"))
    for key in spec.gate.bounds():
        metric = key.partition("_")[2]
        other = metric_task(metric)
        if other is not None and other != task:
            problems.append((f"gate.{key}", f"{metric} is a {other} metric, but the task is "
                             f"{task}{because}"))
    if task == "regression" and spec.schema_.positive_label is not None:
        problems.append(("schema.positive_label", "a regression target has no positive label"
                         f"{because}; remove schema.positive_label or set "
                         "schema.task: classification"))
    tune = spec.model.tune
    if tune is not None and "metric" in tune.model_fields_set:
        other = metric_task(tune.metric)
        if other is not None and other != task:
            problems.append(("model.tune.metric", f"{tune.metric} is a {other} metric, but "
                             f"the task is {task}{because}"))
    return problems


def check_task(loaded: Any, task: str, reason: str) -> None:
    """Raise the first thing in the spec that does not fit the decided ``task``.

    Called by the steps that learn the task from the data (validate, train, evaluate), so a
    regressor for a classification target, or a gate on ``test_rmse`` for one, fails with
    a spec error naming its key and why the task is what it is.

    Raises:
        SpecError: naming the file, line and key (``model.estimator``, ``gate.test_rmse``).
    """
    from conveyor.errors import SpecError
    from conveyor.modeling.estimators import resolve_estimator

    why = f"inferred from the target: {reason}" if reason != "schema.task" else "schema.task"
    for key, message in task_problems(loaded.spec, task, why=why):
        raise loaded.error(key, message)
    try:
        resolve_estimator(loaded.spec.model.estimator, task=task)
    except SpecError as exc:
        raise loaded.error(exc.key or "model.estimator", f"{exc.reason} ({why})") from None


def describe_task(spec: Any) -> str:
    """The task as ``conveyor validate`` shows it: declared, implied, or left to the data.

    >>> from conveyor.spec.models import Spec
    >>> spec = Spec.model_validate({"name": "d", "data": {"source": "sklearn",
    ...     "name": "diabetes"}, "schema": {"target": "target"},
    ...     "model": {"estimator": "linear_regression"}})
    >>> describe_task(spec)
    'regression (implied by model.estimator)'
    """
    from conveyor.modeling.estimators import implied_task

    if spec.schema_.task != "auto":
        return f"{spec.schema_.task} (schema.task)"
    task = declared_task(spec)
    if task is not None:
        return f"{task} (implied by evaluate.metrics)"
    task = implied_task(spec.model.estimator)
    if task is not None:
        return f"{task} (implied by model.estimator)"
    return "auto (classification or regression, inferred from the target when the data is read)"
