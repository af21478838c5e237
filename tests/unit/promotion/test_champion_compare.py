"""The gate's champion comparison, pure: ties, direction, min_delta (no MLflow)."""

from __future__ import annotations

import pytest

from conveyor.promotion.decision import (
    CandidateScore,
    beats,
    compare_with_champion,
    decide,
    lower_is_better,
)


def champion(metric: str, value: float | None, *, status: str = "scored") -> CandidateScore:
    scores = {metric: value} if value is not None else {}
    return CandidateScore(version="3", role="production", status=status, scores=scores,
                          reason="artifacts do not match" if status == "refused" else "")


def test_a_tie_keeps_the_champion() -> None:
    row = compare_with_champion("test_f1", 0.95, champion("test_f1", 0.95), min_delta=0.0)
    assert row == {"metric": "test_f1", "candidate": 0.95, "champion": 0.95, "delta": 0.0,
                   "min_delta": 0.0, "lower_is_better": False, "passed": False}
    assert beats(0.95, 0.95 - 1e-12, metric="f1", min_delta=0.0) == (False, pytest.approx(0),
                                                                      "ties")


def test_the_candidate_must_beat_by_min_delta() -> None:
    short = compare_with_champion("test_f1", 0.954, champion("test_f1", 0.95),
                                  min_delta=0.005)
    assert short["passed"] is False and short["delta"] == pytest.approx(0.004)
    assert beats(0.954, 0.95, metric="f1", min_delta=0.005)[2] == "short"
    exact = compare_with_champion("test_f1", 0.955, champion("test_f1", 0.95), min_delta=0.005)
    assert exact["passed"] is True  # a delta equal to min_delta is enough
    worse = compare_with_champion("test_f1", 0.90, champion("test_f1", 0.95), min_delta=0.0)
    assert (worse["passed"], worse["delta"]) == (False, pytest.approx(-0.05))


@pytest.mark.parametrize("metric", ["test_log_loss", "test_rmse", "test_mae", "test_mape"])
def test_lower_is_better_metrics_beat_by_being_smaller(metric: str) -> None:
    assert lower_is_better(metric)
    better = compare_with_champion(metric, 0.10, champion(metric, 0.12), min_delta=0.01)
    assert (better["passed"], better["lower_is_better"]) == (True, True)
    assert better["delta"] == pytest.approx(0.02)  # the improvement, positive when better
    larger = compare_with_champion(metric, 0.14, champion(metric, 0.12), min_delta=0.0)
    assert (larger["passed"], larger["delta"]) == (False, pytest.approx(-0.02))
    tie = compare_with_champion(metric, 0.12, champion(metric, 0.12), min_delta=0.0)
    assert tie["passed"] is False


def test_higher_is_better_for_every_other_metric() -> None:
    for metric in ("test_f1", "test_roc_auc", "test_r2", "accuracy", "test_pr_auc"):
        assert not lower_is_better(metric), metric


def test_a_champion_that_could_not_be_scored_fails_the_row() -> None:
    row = compare_with_champion("test_f1", 0.99, champion("test_f1", None, status="refused"),
                                min_delta=0.0)
    assert (row["passed"], row["champion"], row["delta"]) == (False, None, None)


def test_a_metric_the_candidate_lacks_fails_the_row() -> None:
    row = compare_with_champion("test_f1", None, champion("test_f1", 0.5), min_delta=0.0)
    assert row["passed"] is False


def test_promotion_decides_lower_is_better_metrics_the_same_way() -> None:
    current = CandidateScore("1", "production", "scored", {"test_rmse": 0.30})
    good = CandidateScore("2", "candidate", "scored", {"test_rmse": 0.25})
    bad = CandidateScore("3", "candidate", "scored", {"test_rmse": 0.40})
    action, best, reason = decide([current, good, bad], current, metric="test_rmse",
                                  min_delta=0.01)
    assert (action, best.version if best else None) == ("promote", "2"), reason
    action, _, reason = decide([current, bad], current, metric="test_rmse", min_delta=0.0)
    assert action == "keep" and "does not beat production v1" in reason
