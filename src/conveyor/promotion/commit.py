"""Carry out a promotion plan: check batch, then compare-and-set ``production`` under the lock.

The chosen version is loaded again through ``models:/<name>/<v>`` (the path a serving client
takes) and must predict a check batch as it did when scored. Then, holding the registry lock,
``production`` is compared with the version *and generation* the plan was based on, and moved
only if both are unchanged. The decision is written as JSON to the Store and as tags on the
versions.
"""

from __future__ import annotations

import logging

from conveyor.promotion.decision import PromotionDecision, decide
from conveyor.promotion.holdout import Holdout, load_holdout
from conveyor.promotion.plan import plan_promotion
from conveyor.promotion.records import write_record
from conveyor.promotion.scoring import check_batch
from conveyor.store import Store
from conveyor.tracking import Tracker
from conveyor.tracking.aliases import (
    mark_seen,
    move_production,
    production_state,
    registry_lock,
    set_last_decision,
    tag_version,
)

__all__ = ["commit_promotion", "promote"]

log = logging.getLogger(__name__)


def _v(version: str | None) -> str:
    return f"v{version}" if version is not None else "nothing"


def _check_chosen(tracker: Tracker, decision: PromotionDecision, holdout: Holdout,
                  rows: int) -> None:
    """Refuse a chosen version that fails its check batch and decide again, until one passes."""
    while decision.action == "promote":
        chosen = decision.candidate(decision.chosen)
        assert chosen is not None
        problem = check_batch(tracker, decision.model, chosen, holdout, rows)
        if not problem:
            return
        chosen.status, chosen.reason = "refused", problem
        action, best, reason = decide(decision.candidates, decision.production,
                                      metric=decision.metric, min_delta=decision.min_delta)
        decision.action = action
        decision.reason = f"v{chosen.version} refused ({problem}); {reason}"
        decision.chosen = best.version if best else None


def commit_promotion(
    tracker: Tracker, decision: PromotionDecision, *, holdout: Holdout | None = None,
    store: Store | None = None, owner: str | None = None, check_rows: int = 10,
    lock_ttl: float = 120.0, lock_wait: float = 60.0,
) -> PromotionDecision:
    """Carry out a plan: check batch, then compare-and-set the alias under the registry lock.

    Args:
        tracker: the MLflow connection.
        decision: a plan from :func:`plan_promotion` (changed in place and returned).
        holdout: the plan's hold-out set (read again from its URI when omitted).
        store: where the decision record goes (default: ``CONVEYOR_HOME/artifacts``).
        owner: who promotes (lock owner, tags).
        check_rows: rows of the check batch.
        lock_ttl: seconds after which a dead promoter's lock may be broken.
        lock_wait: seconds to wait for a running promotion or rollback.

    Returns:
        The decision with ``action`` ``promoted``, ``kept`` or ``aborted``.
    """
    model = decision.model
    if decision.action == "promote":
        if holdout is None:
            holdout = load_holdout(decision.holdout_uri, decision.holdout_sha256,
                                   target=decision.holdout_target)
        _check_chosen(tracker, decision, holdout, check_rows)
    evaluated = [int(c.version) for c in decision.candidates if c.role == "candidate"]
    with registry_lock(tracker, model, owner=owner, ttl=lock_ttl, wait=lock_wait):
        state = production_state(tracker, model)
        # compare the version *and* the generation: a promotion then a rollback puts the
        # same version back (A-B-A), and a plan made before them must not pass
        if state.production != decision.production_before or \
                state.generation != decision.generation:
            decision.action = "aborted"
            decision.reason = (f"production moved ({_v(decision.production_before)} at "
                               f"generation {decision.generation}, now {_v(state.production)} "
                               f"at generation {state.generation}) while this promotion was "
                               f"scoring; nothing was changed (was going to: "
                               f"{decision.reason}); run it again")
            decision.production_after = state.production
        elif decision.action == "promote" and decision.chosen is not None:
            decision.generation = move_production(tracker, model, decision.chosen, state=state)
            decision.action = "promoted"
            decision.production_after = decision.chosen
            decision.previous_production = state.production
        else:
            decision.action = "kept"
            decision.production_after = state.production
        if decision.action != "aborted":
            mark_seen(tracker, model, evaluated)
    decision.record_uri = write_record(store, "promotions", model, decision.to_dict())
    if decision.action != "aborted":
        _tag_versions(tracker, decision)
        set_last_decision(tracker, model, decision.record_uri)
    log.info("promotion of %s: %s (%s)", model, decision.action, decision.reason)
    return decision


def _tag_versions(tracker: Tracker, decision: PromotionDecision) -> None:
    for candidate in decision.candidates:
        tags = {"conveyor.promotion.decision": decision.decision_id,
                "conveyor.promotion.status": candidate.status}
        if candidate.scores:
            tags[f"conveyor.promotion.{decision.metric}"] = \
                f"{candidate.scores[decision.metric]:.6f}"
        if candidate.reason:
            tags["conveyor.promotion.note"] = candidate.reason[:4000]
        if candidate.version == decision.chosen and decision.action == "promoted":
            tags.update({"conveyor.promotion.promoted_at": decision.decided_at,
                         "conveyor.promotion.reason": decision.reason[:4000],
                         "conveyor.promotion.replaced": decision.previous_production or ""})
        tag_version(tracker, decision.model, candidate.version, tags)


def promote(
    tracker: Tracker, model: str, *, holdout: Holdout | None = None, store: Store | None = None,
    metric: str | None = None, min_delta: float = 0.0,
    minimums: dict[str, float] | None = None, dry_run: bool = False,
    include_all: bool = False, check_rows: int = 10,
    owner: str | None = None, lock_ttl: float = 120.0, lock_wait: float = 60.0,
) -> PromotionDecision:
    """Score the candidates, decide, and (unless ``dry_run``) move ``production``.

    See :func:`plan_promotion` and :func:`commit_promotion` for the arguments. A dry run
    returns the plan (``action`` ``promote`` or ``keep``) and changes nothing.
    """
    decision = plan_promotion(tracker, model, holdout=holdout, metric=metric,
                              min_delta=min_delta, minimums=minimums, include_all=include_all)
    if dry_run:
        decision.dry_run = True
        return decision
    return commit_promotion(tracker, decision, holdout=holdout, store=store, owner=owner,
                            check_rows=check_rows, lock_ttl=lock_ttl, lock_wait=lock_wait)
