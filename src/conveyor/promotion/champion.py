"""The gate's champion check: a pipeline run's candidate against the registered model's
champion (the version ``production`` points at), scored on the run's own test rows.

The champion is loaded and scored by :func:`~conveyor.promotion.scoring.score_on_split` (the
promotion's verified loading, the evaluate step's metric function) and compared by
:func:`~conveyor.promotion.decision.beats`, the rule ``conveyor promote`` decides by. What
the gate records is the verdict's ``champion`` and ``comparison`` (the shape is "Contract B",
docs/decisions/0042-gate-against-the-champion.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import BadInputError
from conveyor.ids import new_id, now_iso
from conveyor.promotion.commit import commit_promotion
from conveyor.promotion.decision import (
    CandidateScore,
    PromotionDecision,
    compare_with_champion,
    make_decision,
)
from conveyor.promotion.holdout import Holdout
from conveyor.promotion.rollback import ROLLED_BACK_TAG
from conveyor.promotion.scoring import score_on_split
from conveyor.store import Store
from conveyor.tracking import Tracker
from conveyor.tracking.aliases import production_state
from conveyor.tracking.registry import KEY_TAG, VersionRefusedError, get_version

__all__ = ["ChampionCheck", "challenge_champion", "promote_challenger"]

log = logging.getLogger(__name__)
_PROMOTION_METRIC = "f1"


@dataclass
class ChampionCheck:
    """The outcome of a champion check.

    Attributes:
        passed: whether the candidate may be registered as far as the champion goes.
        reason: one sentence: why it passed or failed.
        champion: the verdict's ``champion`` (``None`` when there is none).
        comparison: the verdict's ``comparison`` rows (``[]`` without a champion).
        status: ``none`` (no champion), ``same`` (the candidate is the champion), ``beaten``,
            ``kept`` (the champion stays) or ``refused`` (it could not be scored).
        production: the version ``production`` pointed at when the check ran.
        generation: the ``production`` alias's generation then (for the compare-and-set of
            ``gate.promote``).
    """

    passed: bool
    reason: str
    champion: dict[str, Any] | None = None
    comparison: list[dict[str, Any]] = field(default_factory=list)
    status: str = "none"
    production: str | None = None
    generation: int = 0


def challenge_champion(
    tracker: Tracker, model: str, holdout: Holdout, candidate: dict[str, float], *,
    metric: str, min_delta: float, alias: str = "production", metrics: list[str],
    positive: Any, candidate_key: str = "",
) -> ChampionCheck:
    """Compare a candidate's test metrics with the champion's on the same rows.

    Args:
        tracker: the MLflow connection.
        model: the registered model (``registry.name``).
        holdout: the run's test rows (features and label).
        candidate: the candidate's metrics (``test_f1``, ...), from the run's evaluate step.
        metric: the metric compared (``test_f1``).
        min_delta: how much the candidate must beat the champion by.
        alias: the alias naming the champion.
        metrics: the metric names evaluate computes (the champion gets the same ones).
        positive: the positive label of binary metrics, or ``None`` for macro averages.
        candidate_key: the candidate's registration key; a champion registered under it is
            the same trained model, and the check passes (a re-run must not reject itself).

    Raises:
        TrackingError: the registry cannot be read (a transient fault: the step fails and
            may be retried; it is not a verdict).
    """
    try:
        state = production_state(tracker, model)
    except BadInputError:  # the registered model does not exist yet
        return ChampionCheck(True, f"no champion yet: {model!r} is not registered, so the "
                                   "first model passes the champion check")
    try:
        version = get_version(tracker, model, alias=alias)
    except VersionRefusedError:
        return ChampionCheck(True, f"no champion yet: {model!r} has no {alias!r} alias, so "
                                   "the first model passes the champion check",
                             production=state.production, generation=state.generation)
    number = str(version.version)
    base = {"name": model, "version": number, "alias": alias, "metrics": {}}
    facts = {"production": state.production, "generation": state.generation}
    if candidate_key and dict(version.tags or {}).get(KEY_TAG) == candidate_key:
        value = candidate.get(metric)
        champion = {**base, "metrics": {k: v for k, v in candidate.items()
                                        if k.startswith("test_")}}
        row = compare_with_champion(metric, value, CandidateScore(
            number, alias, "scored", {metric: value} if value is not None else {}),
            min_delta=0.0)
        row.update(delta=0.0, passed=True)
        return ChampionCheck(True, f"the candidate is the champion {model} v{number} (the "
                                   "same trained model): nothing to beat", champion, [row],
                             status="same", **facts)
    score = score_on_split(tracker, model, version, holdout, role=alias,
                           metrics=metrics, positive=positive)
    if score.status != "scored":
        log.warning("champion %s v%s cannot be scored: %s", model, number, score.reason)
        row = compare_with_champion(metric, candidate.get(metric), score, min_delta=min_delta)
        return ChampionCheck(
            False, f"champion {model} v{number} could not be scored on this run's test rows "
                   f"({score.reason}); the candidate was not compared, so it is rejected: fix "
                   f"or move {alias!r} (conveyor rollback / conveyor promote), or set "
                   "registry.allow_unvalidated=true to register it anyway",
            {**base}, [row], status="refused", **facts)
    row = compare_with_champion(metric, candidate.get(metric), score, min_delta=min_delta)
    champion = {**base, "metrics": dict(score.scores)}
    ours, theirs = row["candidate"], row["champion"]
    if ours is None:
        return ChampionCheck(False, f"{metric} was not computed for the candidate", champion,
                             [row], status="kept", **facts)
    if row["passed"]:
        reason = (f"{metric} {ours:.4f} beats champion v{number} ({theirs:.4f}) by "
                  f"{row['delta']:.4f} >= min_delta {min_delta:g}")
        return ChampionCheck(True, reason, champion, [row], status="beaten", **facts)
    if abs(row["delta"]) <= 1e-9:
        how = f"ties champion v{number} ({theirs:.4f})"
    elif row["delta"] < 0:
        how = f"is worse than champion v{number} ({theirs:.4f})"
    else:
        how = (f"beats champion v{number} ({theirs:.4f}) by {row['delta']:.4f}, less than "
               f"min_delta {min_delta:g}")
    return ChampionCheck(False, f"{metric} {ours:.4f} {how}: the champion stays", champion,
                         [row], status="kept", **facts)


def promote_challenger(tracker: Tracker, plan: dict[str, Any], *, store: Store | None = None,
                       owner: str | None = None) -> PromotionDecision:
    """Move ``production`` to a candidate that beat the champion (``gate.promote: true``),
    through the compare-and-set of ``conveyor promote``
    (:func:`~conveyor.promotion.commit.commit_promotion`: check batch, registry lock).

    The plan is the one the gate made: ``production`` must still be the version (and
    generation) the candidate was compared with, else nothing moves (``aborted``).

    Args:
        tracker: the MLflow connection.
        plan: what the register step recorded (``register/challenger.json``): ``name``,
            ``version``, ``metric``, ``min_delta``, ``production``, ``generation``, the
            hold-out set, the two sides' scores and the candidate's first predictions.
        store: where the decision record goes.
        owner: who promotes (lock owner, tags).
    """
    import numpy as np

    model, version, metric = plan["name"], str(plan["version"]), plan["metric"]
    state = production_state(tracker, model)
    if state.production == version:  # a retried publish: already done
        done = make_decision(model, [], version, metric=_PROMOTION_METRIC, min_delta=0.0)
        done.action, done.reason = "kept", f"production is already v{version}"
        return done
    rolled_back = dict(get_version(tracker, model, number=version).tags or {}).get(
        ROLLED_BACK_TAG)
    if rolled_back:  # a person took it out of production: a run does not undo that
        kept = make_decision(model, [], state.production, metric=_PROMOTION_METRIC,
                             min_delta=0.0)
        kept.action, kept.reason = "kept", (
            f"v{version} was rolled back from production at {rolled_back}; a run does not "
            f"promote it again (conveyor promote {model} --all can)")
        return kept
    predictions = np.asarray(plan["check_predictions"], dtype=object)
    candidate = CandidateScore(version=version, role="candidate", status="scored",
                               scores={metric: plan["candidate"]}, predictions=predictions)
    scored = [candidate]
    if plan.get("production") is not None and plan.get("champion") is not None:
        scored.insert(0, CandidateScore(version=str(plan["production"]), role="production",
                                        status="scored", scores={metric: plan["champion"]}))
    decision = PromotionDecision(
        model=model, metric=metric, min_delta=float(plan["min_delta"]), minimums={},
        action="promote", reason=plan["reason"], production_before=plan.get("production"),
        chosen=version, candidates=scored, holdout_uri=plan["holdout_uri"],
        holdout_sha256=plan["holdout_sha256"], holdout_target=plan["holdout_target"],
        decision_id=new_id(), decided_at=now_iso(), production_after=plan.get("production"),
        generation=int(plan["generation"]))
    return commit_promotion(tracker, decision, store=store, owner=owner,
                            check_rows=len(predictions))
