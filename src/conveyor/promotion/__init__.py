"""Promotion and rollback of a registered model's ``production`` alias.

A promotion has two halves. :func:`plan_promotion` changes nothing: it scores every candidate
version (new since the last promotion, plus the current production version) on one hold-out
set and decides (:func:`~conveyor.promotion.decision.make_decision`, pure). A version whose
artifacts are missing, altered or unloadable is *refused*, never fatal; the best candidate
that meets the minimums and beats production by at least ``min_delta`` is chosen; a tie keeps
production. :func:`commit_promotion` checks the chosen version as a client loads it, then
compare-and-sets ``production`` under the registry lock. :func:`rollback` moves it back once.

This package sits above ``conveyor.tracking`` (loading versions, the lock, alias moves: every
MLflow call) and ``conveyor.modeling`` (the metrics), which may not import each other
(docs/decisions/0026-promotion-layer-and-scoped-mlflow.md).

Modules: ``decision`` (pure), ``holdout`` (the hold-out set), ``scoring``, ``plan``,
``commit``, ``rollback``, ``records`` (decision records in the Store), ``champion`` (the
gate's check of a pipeline run against the champion).
"""

from conveyor.promotion.champion import ChampionCheck, challenge_champion, promote_challenger
from conveyor.promotion.commit import commit_promotion, promote
from conveyor.promotion.decision import (
    METRICS,
    CandidateScore,
    PromotionDecision,
    decide,
    make_decision,
)
from conveyor.promotion.holdout import Holdout, load_holdout
from conveyor.promotion.plan import plan_promotion
from conveyor.promotion.rollback import RollbackResult, rollback
from conveyor.tracking import PREVIOUS, PRODUCTION, RegistryLock

__all__ = [
    "METRICS",
    "PREVIOUS",
    "PRODUCTION",
    "CandidateScore",
    "ChampionCheck",
    "Holdout",
    "PromotionDecision",
    "RegistryLock",
    "RollbackResult",
    "challenge_champion",
    "commit_promotion",
    "decide",
    "load_holdout",
    "make_decision",
    "plan_promotion",
    "promote",
    "promote_challenger",
    "rollback",
]
