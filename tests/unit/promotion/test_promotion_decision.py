"""The promotion decision is pure: scores in, a decision out (no MLflow, no Store)."""

from __future__ import annotations

import pytest

from conveyor.errors import BadInputError
from conveyor.ids import ID_PATTERN
from conveyor.promotion.decision import CandidateScore, make_decision


def scored(version: int, f1: float, *, role: str = "candidate",
           accuracy: float | None = None) -> CandidateScore:
    acc = f1 if accuracy is None else accuracy
    return CandidateScore(version=str(version), role=role, status="scored",
                          scores={"accuracy": acc, "f1": f1, "precision": f1, "recall": f1})


def refused(version: int, reason: str = "artifacts do not match the digest",
            role: str = "candidate") -> CandidateScore:
    return CandidateScore(version=str(version), role=role, status="refused", reason=reason)


def test_best_candidate_wins_when_there_is_no_production() -> None:
    decision = make_decision("m", [scored(1, 0.80), scored(2, 0.93), scored(3, 0.90)], None)
    assert (decision.action, decision.chosen) == ("promote", "2")
    assert decision.reason == "no production version yet; v2 has the best f1 (0.9300)"
    assert decision.production_before is None
    assert ID_PATTERN.match(decision.decision_id)
    assert decision.decided_at.endswith("+00:00")


def test_best_candidate_beats_production_by_min_delta() -> None:
    decision = make_decision("m", [scored(1, 0.90, role="production"), scored(2, 0.95)], "1",
                             min_delta=0.02)
    assert (decision.action, decision.chosen) == ("promote", "2")
    assert "beats production v1 (0.9000) by 0.0500 >= min_delta 0.02" in decision.reason


def test_the_metric_chooses_the_winner() -> None:
    candidates = [scored(1, 0.90, accuracy=0.99), scored(2, 0.95, accuracy=0.91)]
    assert make_decision("m", candidates, None, metric="accuracy").chosen == "1"
    assert make_decision("m", candidates, None, metric="f1").chosen == "2"


def test_a_tie_between_candidates_goes_to_the_newest_version() -> None:
    decision = make_decision("m", [scored(4, 0.9333), scored(3, 0.9333), scored(2, 0.91)],
                             None)
    assert decision.chosen == "4"


def test_a_tie_with_production_keeps_production() -> None:
    decision = make_decision("m", [scored(1, 0.9333, role="production"), scored(2, 0.9333)],
                             "1")
    assert (decision.action, decision.chosen) == ("keep", None)
    assert "ties production v1 (0.9333); production stays" in decision.reason
    assert decision.production_after == "1"


def test_production_is_kept_when_it_is_better() -> None:
    decision = make_decision("m", [scored(1, 0.95, role="production"), scored(2, 0.90),
                                   scored(3, 0.94)], "1")
    assert decision.action == "keep"
    assert "best candidate v3 (f1 0.9400) does not beat production v1 (0.9500)" \
        in decision.reason


def test_a_gain_below_min_delta_keeps_production() -> None:
    decision = make_decision("m", [scored(1, 0.90, role="production"), scored(2, 0.91)], "1",
                             min_delta=0.05)
    assert decision.action == "keep"
    assert "by 0.0100, less than min_delta 0.05; production stays" in decision.reason


def test_minimums_refuse_candidates_below_a_floor() -> None:
    decision = make_decision("m", [scored(1, 0.95, accuracy=0.80), scored(2, 0.90)], None,
                             minimums={"accuracy": 0.85})
    assert decision.chosen == "2"
    low = decision.candidate("1")
    assert low is not None and low.status == "below_minimum"
    assert low.reason == "accuracy 0.8000 < 0.85"


def test_minimums_that_nobody_meets_keep_everything() -> None:
    decision = make_decision("m", [scored(1, 0.70), scored(2, 0.75)], None,
                             minimums={"f1": 0.9})
    assert (decision.action, decision.chosen) == ("keep", None)
    assert decision.reason == ("no candidate passed the checks; there is no production "
                               "version yet")
    assert {c.status for c in decision.candidates} == {"below_minimum"}


def test_refused_candidates_are_never_chosen() -> None:
    decision = make_decision("m", [refused(5), scored(2, 0.80), refused(6, "cannot load")],
                             None)
    assert decision.chosen == "2"
    assert decision.candidate("5").status == "refused"  # type: ignore[union-attr]


def test_only_refused_candidates_keep_production() -> None:
    decision = make_decision("m", [scored(1, 0.9, role="production"), refused(2)], "1")
    assert decision.action == "keep"
    assert decision.reason == "no candidate passed the checks; production stays v1"


def test_no_candidates_at_all() -> None:
    decision = make_decision("m", [scored(1, 0.9, role="production")], "1")
    assert decision.reason == "no candidate version; production stays v1"
    assert make_decision("m", [], None).reason == ("no candidate version; there is no "
                                                   "production version yet")


def test_a_refused_production_is_replaced_by_any_eligible_candidate() -> None:
    decision = make_decision("m", [refused(1, "altered", role="production"), scored(2, 0.5)],
                             "1", min_delta=0.3)
    assert (decision.action, decision.chosen) == ("promote", "2")
    assert decision.reason.startswith("production v1 was refused (altered)")


def test_a_production_version_that_was_not_scored_counts_as_refused() -> None:
    decision = make_decision("m", [scored(3, 0.8)], "1")
    assert decision.candidates[0].version == "1"
    assert decision.candidates[0].reason == "the version is missing or not READY"
    assert decision.chosen == "3"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"metric": "auc"}, "unknown metric 'auc'; use one of accuracy, f1, precision, recall"),
    ({"minimums": {"f2": 0.5}}, "unknown metric 'f2'"),
    ({"minimums": {"f1": float("nan")}}, "minimum for f1 must be a number"),
    ({"min_delta": -0.1}, "min_delta must be a number >= 0, got -0.1"),
])
def test_bad_rules_are_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(BadInputError, match=message.replace("(", r"\(")):
        make_decision("m", [scored(1, 0.9)], None, **kwargs)


def test_the_same_scores_give_the_same_decision() -> None:
    def run() -> tuple[str, str | None, str]:
        d = make_decision("m", [scored(1, 0.9, role="production"), scored(2, 0.93),
                                scored(3, 0.93)], "1", min_delta=0.01)
        return d.action, d.chosen, d.reason

    assert run() == run() == ("promote", "3", "v3 (f1 0.9300) beats production v1 (0.9000) "
                              "by 0.0300 >= min_delta 0.01")
