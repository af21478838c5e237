"""Plan a promotion: read the registry, score the versions, decide; change nothing."""

from __future__ import annotations

from conveyor.promotion.decision import PromotionDecision, check_rules, make_decision
from conveyor.promotion.holdout import Holdout, holdout_from_tags
from conveyor.promotion.scoring import score_version
from conveyor.tracking import Tracker, search_versions
from conveyor.tracking.aliases import production_state

__all__ = ["plan_promotion"]


def plan_promotion(
    tracker: Tracker, model: str, *, holdout: Holdout | None = None, metric: str = "f1",
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
        metric: the metric the gate compares (macro-averaged): accuracy, f1, precision, recall.
        min_delta: how much the best candidate must beat production by.
        minimums: absolute floors per metric; a candidate below one is not eligible.
        include_all: consider every version, not only those new since the last promotion.

    Raises:
        BadInputError: unknown model or metric, or no hold-out set.
        TrackingError: the registry failed.
    """
    minimums = dict(minimums or {})
    check_rules(metric, minimums, min_delta)
    state = production_state(tracker, model)
    seen = 0 if include_all else state.seen
    chosen = [v for v in search_versions(tracker, model, ready_only=True)
              if str(v.version) == state.production or int(v.version) > seen]
    if holdout is None and chosen:
        holdout = holdout_from_tags(chosen)
    scored = [score_version(tracker, model, version, holdout,
                            "production" if str(version.version) == state.production
                            else "candidate")
              for version in sorted(chosen, key=lambda v: int(v.version))
              if holdout is not None]
    return make_decision(
        model, scored, state.production, metric=metric, min_delta=min_delta,
        minimums=minimums, generation=state.generation,
        holdout_uri=holdout.uri if holdout else "",
        holdout_sha256=holdout.sha256 if holdout else "",
        holdout_target=holdout.target if holdout else "target")
