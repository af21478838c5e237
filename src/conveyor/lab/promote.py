"""Promotion for a lab: the spec's metric, minimums and hold-out set, the registry's lock.

The promotion itself (scoring, the gate, compare-and-set on the alias, rollback) lives in
:mod:`conveyor.tracking.promotion`; this module supplies what the lab spec decides.
"""

from __future__ import annotations

from conveyor.lab.spec import Lab
from conveyor.lab.train import TARGET, lab_split, publish_holdout
from conveyor.tracking import Tracker
from conveyor.tracking.promotion import (
    PromotionDecision,
    RollbackResult,
    load_holdout,
    promote,
    rollback,
)

__all__ = ["promote_lab", "rollback_lab"]


def promote_lab(lab: Lab, *, dry_run: bool = False, owner: str | None = None,
                include_all: bool = False) -> PromotionDecision:
    """Score the lab model's candidates on the lab's hold-out set and promote the best.

    Returns:
        The decision: ``promoted``, ``kept`` or ``aborted`` (``promote``/``keep`` for a dry
        run). An aborted promotion changed nothing; run it again.
    """
    holdout_ref = publish_holdout(lab, lab_split(lab))
    holdout = load_holdout(holdout_ref.uri, holdout_ref.sha256, target=TARGET,
                           storage_options=lab.spec.store.storage_options)
    rules = lab.spec.promotion
    return promote(
        Tracker(lab.tracking_uri, lab.experiment), lab.spec.model_name, holdout=holdout,
        store=lab.store(), metric=rules.metric, min_delta=rules.min_delta,
        minimums=dict(rules.minimums), dry_run=dry_run, include_all=include_all,
        check_rows=rules.check_rows, owner=owner,
    )


def rollback_lab(lab: Lab, *, owner: str | None = None) -> RollbackResult:
    """Move the lab model's ``production`` back to ``previous_production`` (idempotent)."""
    return rollback(Tracker(lab.tracking_uri, lab.experiment), lab.spec.model_name,
                    store=lab.store(), owner=owner)
