"""Plan a promotion: read the registry, score the versions, decide; change nothing."""

from __future__ import annotations

from typing import Any

from conveyor.errors import BadInputError
from conveyor.promotion.decision import METRICS, PromotionDecision, check_rules, make_decision
from conveyor.promotion.holdout import Holdout, holdout_from_tags
from conveyor.promotion.scoring import score_version
from conveyor.tracking import Tracker, search_versions
from conveyor.tracking.aliases import production_state

__all__ = ["TASK_TAG", "plan_promotion", "promotion_task"]

#: the registered version's task, tagged by the register step (ADR 0038)
TASK_TAG = "conveyor.task"


def promotion_task(versions: list[Any], holdout: Holdout | None) -> str:
    """The task of a registered model: its newest version's ``conveyor.task`` tag, else
    inferred from the hold-out labels (:func:`conveyor.modeling.tasks.infer_task`)."""
    from conveyor.modeling.tasks import infer_task

    for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
        task = dict(version.tags or {}).get(TASK_TAG)
        if task in ("classification", "regression"):
            return task
    if holdout is not None:
        return infer_task(holdout.y).task
    return "classification"


def _one_of(names: Any) -> str:
    *rest, last = list(names)
    return f"{', '.join(rest)} or {last}" if rest else last


def plan_promotion(
    tracker: Tracker, model: str, *, holdout: Holdout | None = None, metric: str | None = None,
    min_delta: float = 0.0, minimums: dict[str, float] | None = None,
    include_all: bool = False,
) -> PromotionDecision:
    """Score the candidates and decide; change nothing.

    The versions considered are the current production version and every version newer than
    the last promotion evaluated (all versions with ``include_all``). Each is downloaded,
    checked against the digest recorded at registration, loaded and scored on one hold-out
    set; one that fails any of these is *refused* (with the reason), never fatal.

    Args:
        tracker: the MLflow connection.
        model: the registered model's name.
        holdout: the rows to score on; by default the hold-out set named by the newest
            candidate's tags (``conveyor.holdout.uri`` and ``.sha256``).
        metric: the metric the gate compares: accuracy, f1, precision, recall (macro-averaged)
            for a classifier, rmse, mae, r2, mape for a regressor; default f1 or rmse by the
            model's task (:func:`promotion_task`).
        min_delta: how much the best candidate must beat production by.
        minimums: absolute floors per metric; a candidate below one is not eligible.
        include_all: consider every version, not only those new since the last promotion.

    Raises:
        BadInputError: unknown model or metric, or no hold-out set.
        TrackingError: the registry failed.
    """
    from conveyor.modeling.tasks import default_metric, metric_task

    minimums = dict(minimums or {})
    if metric is not None:
        check_rules(metric, minimums, min_delta)
    state = production_state(tracker, model)
    seen = 0 if include_all else state.seen
    chosen = [v for v in search_versions(tracker, model, ready_only=True)
              if str(v.version) == state.production or int(v.version) > seen]
    if holdout is None and chosen:
        holdout = holdout_from_tags(chosen)
    if chosen or holdout is not None:
        task: str | None = promotion_task(chosen, holdout)
        for name in ([metric] if metric is not None else []) + list(minimums):
            if metric_task(name) not in (None, task):
                what = "" if name == metric else "minimum "
                raise BadInputError(
                    f"{what}{name} is a {metric_task(name)} metric, but {model} is a {task} "
                    f"model; use {_one_of(m for m in METRICS if metric_task(m) == task)}")
    else:
        task = metric_task(metric) if metric is not None else None
    metric = metric or default_metric(task or "classification")
    check_rules(metric, minimums, min_delta)
    scored = [score_version(tracker, model, version, holdout,
                            "production" if str(version.version) == state.production
                            else "candidate", task=task or "classification")
              for version in sorted(chosen, key=lambda v: int(v.version))
              if holdout is not None]
    return make_decision(
        model, scored, state.production, metric=metric, min_delta=min_delta,
        minimums=minimums, generation=state.generation,
        holdout_uri=holdout.uri if holdout else "",
        holdout_sha256=holdout.sha256 if holdout else "",
        holdout_target=holdout.target if holdout else "target")
