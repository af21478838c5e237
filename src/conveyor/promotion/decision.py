"""The promotion decision, pure: scores in, a decision out; no registry, no I/O.

The same candidates, production and rules always give the same decision, which is what
tests/unit/promotion checks without MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from conveyor.errors import BadInputError
from conveyor.ids import new_id, now_iso
from conveyor.spec.models import LOWER_IS_BETTER

__all__ = [
    "METRICS",
    "CandidateScore",
    "PromotionDecision",
    "apply_minimums",
    "beats",
    "check_rules",
    "compare_with_champion",
    "decide",
    "lower_is_better",
    "make_decision",
]

#: the metrics a promotion may compare: a classifier's (macro-averaged over the classes) and
#: a regressor's (ADR 0038; rmse, mae and mape are better when lower: ``LOWER_IS_BETTER``)
METRICS = ("accuracy", "f1", "precision", "recall", "rmse", "mae", "r2", "mape")
_REGRESSION = frozenset({"rmse", "mae", "r2", "mape"})


def _better(metric: str) -> float:
    """``+1`` when a larger ``metric`` is better, ``-1`` when a smaller one is."""
    return -1.0 if lower_is_better(metric) else 1.0
_EPS = 1e-9


@dataclass
class CandidateScore:
    """One version's result in a promotion.

    Attributes:
        version: the registry version.
        role: ``production`` (the current one) or ``candidate``.
        status: ``scored``, ``below_minimum`` or ``refused``.
        scores: metric -> value on the hold-out set (empty when refused).
        reason: why it was refused or fell below a minimum.
        config: the config name it was trained from (tag), if known.
        predictions: its predictions on the hold-out set (not recorded).
    """

    version: str
    role: str
    status: str
    scores: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    config: str = ""
    predictions: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("predictions")
        return data


@dataclass
class PromotionDecision:
    """What a promotion compared, decided and did.

    ``action`` is ``promote`` or ``keep`` in a plan; after
    :func:`conveyor.promotion.commit_promotion` it is ``promoted``, ``kept`` or ``aborted``
    (production moved while this promotion was scoring: nothing was changed; run it again).
    """

    model: str
    metric: str
    min_delta: float
    minimums: dict[str, float]
    action: str
    reason: str
    production_before: str | None
    chosen: str | None
    candidates: list[CandidateScore]
    holdout_uri: str = ""
    holdout_sha256: str = ""
    holdout_target: str = "target"
    decision_id: str = ""
    decided_at: str = ""
    dry_run: bool = False
    production_after: str | None = None
    previous_production: str | None = None
    record_uri: str | None = None
    generation: int = 0

    def candidate(self, version: str | None) -> CandidateScore | None:
        return next((c for c in self.candidates if c.version == version), None)

    @property
    def production(self) -> CandidateScore | None:
        """The current production version's score, if there is one."""
        return next((c for c in self.candidates if c.role == "production"), None)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "candidates"}
        data["candidates"] = [c.to_dict() for c in self.candidates]
        return data


def check_rules(metric: str, minimums: Mapping[str, float], min_delta: float) -> None:
    """Refuse an unknown metric, a minimum that is not a number or a negative ``min_delta``.

    Raises:
        BadInputError: naming the rule and the allowed values.
    """
    for name in (metric, *minimums):
        if name not in METRICS:
            raise BadInputError(f"unknown metric {name!r}; use one of {', '.join(METRICS)}")
        if (name in _REGRESSION) != (metric in _REGRESSION):
            raise BadInputError(f"minimum {name} and metric {metric} are of different tasks "
                                "(classification, regression); use metrics of one task")
    for name, value in minimums.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise BadInputError(f"minimum for {name} must be a number, got {value!r}")
    if min_delta < 0 or not math.isfinite(min_delta):
        raise BadInputError(f"min_delta must be a number >= 0, got {min_delta!r}")


def apply_minimums(candidate: CandidateScore, minimums: Mapping[str, float]) -> CandidateScore:
    """Mark a scored candidate ``below_minimum`` when a score is worse than its bound: under
    its floor, or for a lower-is-better metric (rmse) over its ceiling."""
    if candidate.status == "scored":
        low = [f"{name} {candidate.scores[name]:.4f} {'>' if _better(name) < 0 else '<'} "
               f"{floor:g}" for name, floor in minimums.items()
               if _better(name) * (candidate.scores[name] - floor) < -_EPS]
        if low:
            candidate.status, candidate.reason = "below_minimum", "; ".join(low)
    return candidate


def lower_is_better(metric: str) -> bool:
    """Whether a smaller ``metric`` is a better model (``log_loss``, ``test_rmse``, ...).

    >>> lower_is_better("test_log_loss"), lower_is_better("f1")
    (True, False)
    """
    split, _, name = metric.partition("_")
    return metric in LOWER_IS_BETTER or (split in ("test", "train", "cv")
                                         and name in LOWER_IS_BETTER)


def beats(value: float, current: float, *, metric: str,
          min_delta: float) -> tuple[bool, float, str]:
    """Whether ``value`` beats ``current`` on ``metric`` by at least ``min_delta``: the one
    comparison rule of a promotion and of the gate's champion check.

    A tie (within 1e-9) never beats: it keeps the incumbent. The direction comes from
    :data:`~conveyor.spec.models.LOWER_IS_BETTER`.

    Returns:
        (beats, delta, kind): ``delta`` is the improvement, positive when ``value`` is the
        better one (``current - value`` for a lower-is-better metric); ``kind`` is ``beats``,
        ``ties``, ``does not beat`` or ``short`` (better, by less than ``min_delta``).

    >>> beats(0.95, 0.94, metric="f1", min_delta=0.005)[::2]
    (True, 'beats')
    >>> beats(0.10, 0.12, metric="test_rmse", min_delta=0.0)[::2]
    (True, 'beats')
    >>> beats(0.9, 0.9, metric="f1", min_delta=0.0)[::2]
    (False, 'ties')
    """
    delta = current - value if lower_is_better(metric) else value - current
    if delta <= _EPS:
        return False, delta, "ties" if abs(delta) <= _EPS else "does not beat"
    if delta < min_delta - _EPS:
        return False, delta, "short"
    return True, delta, "beats"


def compare_with_champion(metric: str, candidate: float | None,
                          champion: CandidateScore, *, min_delta: float) -> dict[str, Any]:
    """One row of a gate verdict's ``comparison`` (docs/decisions/0042-...): the candidate's
    ``metric`` against the champion's, on the same rows.

    A champion that could not be scored (``refused``) or a metric either side lacks fails the
    row: the gate does not vouch for what it could not compare.

    >>> champ = CandidateScore("3", "production", "scored", {"test_f1": 0.94})
    >>> row = compare_with_champion("test_f1", 0.95, champ, min_delta=0.005)
    >>> row["passed"], round(row["delta"], 4)
    (True, 0.01)
    """
    row: dict[str, Any] = {"metric": metric, "candidate": candidate,
                           "champion": champion.scores.get(metric), "delta": None,
                           "min_delta": min_delta, "lower_is_better": lower_is_better(metric),
                           "passed": False}
    if candidate is None or row["champion"] is None:
        return row
    passed, delta, _ = beats(candidate, row["champion"], metric=metric, min_delta=min_delta)
    row.update(delta=delta, passed=passed)
    return row


def decide(candidates: Sequence[CandidateScore], production: CandidateScore | None, *,
           metric: str, min_delta: float) -> tuple[str, CandidateScore | None, str]:
    """The gate: (action, chosen, reason).

    The best scored candidate (highest ``metric``, lowest for a metric in
    ``LOWER_IS_BETTER``; on a tie, the newest version) is promoted when there is no
    production version, production was refused, or it beats production by more than nothing
    and at least ``min_delta``; otherwise production stays.
    """
    sign = -1 if lower_is_better(metric) else 1
    eligible = sorted((c for c in candidates if c.role == "candidate" and c.status == "scored"),
                      key=lambda c: (sign * c.scores[metric], int(c.version)), reverse=True)
    if not eligible:
        why = "no candidate version" if not candidates or all(
            c.role == "production" for c in candidates) else "no candidate passed the checks"
        if production is None:
            return "keep", None, f"{why}; there is no production version yet"
        return "keep", None, f"{why}; production stays v{production.version}"
    best = eligible[0]
    value = best.scores[metric]
    if production is None:
        return "promote", best, (f"no production version yet; v{best.version} has the best "
                                 f"{metric} ({value:.4f})")
    if production.status == "refused":
        return "promote", best, (f"production v{production.version} was refused "
                                 f"({production.reason}); v{best.version} has the best "
                                 f"{metric} ({value:.4f})")
    current = production.scores[metric]
    passed, delta, kind = beats(value, current, metric=metric, min_delta=min_delta)
    if kind in ("ties", "does not beat"):
        return "keep", None, (f"best candidate v{best.version} ({metric} {value:.4f}) {kind} "
                              f"production v{production.version} ({current:.4f}); "
                              "production stays")
    if not passed:
        return "keep", None, (f"best candidate v{best.version} ({metric} {value:.4f}) beats "
                              f"production v{production.version} ({current:.4f}) by "
                              f"{delta:.4f}, less than min_delta {min_delta:g}; production stays")
    return "promote", best, (f"v{best.version} ({metric} {value:.4f}) beats production "
                             f"v{production.version} ({current:.4f}) by {delta:.4f} "
                             f">= min_delta {min_delta:g}")


def make_decision(
    model: str, scored: Sequence[CandidateScore], production: str | None, *,
    metric: str = "f1", min_delta: float = 0.0, minimums: Mapping[str, float] | None = None,
    generation: int = 0, holdout_uri: str = "", holdout_sha256: str = "",
    holdout_target: str = "target",
) -> PromotionDecision:
    """Decide a promotion from the versions' scores.

    Args:
        model: the registered model.
        scored: every version considered, scored (or refused) on the hold-out set; the one
            whose version is ``production`` has role ``production``.
        production: the version ``production`` points at, if any. Missing from ``scored``,
            it is recorded as refused ("missing or not READY") and any eligible candidate
            replaces it.
        metric: the metric compared.
        min_delta: how much the best candidate must beat production by.
        minimums: absolute floors per metric; a candidate below one is not eligible.
        generation: the production alias's generation the scores were taken at.
        holdout_uri: the hold-out set, recorded in the decision.
        holdout_sha256: its hash.
        holdout_target: its label column.

    Returns:
        A plan: ``action`` ``promote`` (with ``chosen``) or ``keep``.

    Raises:
        BadInputError: an unknown metric, a bad minimum or a negative ``min_delta``.
    """
    minimums = dict(minimums or {})
    check_rules(metric, minimums, min_delta)
    candidates = [apply_minimums(c, minimums) for c in scored]
    current = next((c for c in candidates if c.role == "production"), None)
    if production is not None and current is None:
        current = CandidateScore(version=production, role="production", status="refused",
                                 reason="the version is missing or not READY")
        candidates.insert(0, current)
    action, best, reason = decide(candidates, current, metric=metric, min_delta=min_delta)
    return PromotionDecision(
        model=model, metric=metric, min_delta=min_delta, minimums=minimums, action=action,
        reason=reason, production_before=production, chosen=best.version if best else None,
        candidates=candidates, holdout_uri=holdout_uri, holdout_sha256=holdout_sha256,
        holdout_target=holdout_target, decision_id=new_id(), decided_at=now_iso(),
        production_after=production, previous_production=None, generation=generation)
