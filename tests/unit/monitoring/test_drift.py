"""Drift statistics against hand-computed values, and every "not computable" case."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conveyor.monitoring.drift import (
    Thresholds,
    compare,
    feature_drift,
    ks_test,
    live_metrics,
    prediction_drift,
    psi,
)
from conveyor.monitoring.profile import bin_shares, build_profile, numeric_profile

TH = Thresholds(min_rows=3)


def test_psi_matches_the_hand_computed_value() -> None:
    # (0.25-0.5)*ln(0.25/0.5) + (0.75-0.5)*ln(0.75/0.5)
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected, abs=1e-12)
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_psi_floors_an_empty_bin_instead_of_infinity() -> None:
    value = psi([0.5, 0.5], [1.0, 0.0])
    # (1-0.5)*ln(1/0.5) + (1e-4-0.5)*ln(1e-4/0.5)
    assert value == pytest.approx(0.5 * math.log(2) + (1e-4 - 0.5) * math.log(1e-4 / 0.5))
    assert math.isfinite(value)


def test_ks_matches_the_hand_computed_statistic() -> None:
    # empirical CDFs of {1,2,3,4} and {3,4,5,6} differ most (by 1/2) at x=2 and x=4
    statistic, pvalue = ks_test([1, 2, 3, 4], [3, 4, 5, 6])
    assert statistic == pytest.approx(0.5)
    assert 0.5 < pvalue <= 1.0  # four points each: far from significant
    statistic, pvalue = ks_test(np.arange(100.0), np.arange(100.0) + 1000)
    assert statistic == 1.0 and pvalue < 1e-50


def test_bins_are_right_closed_and_profile_shares_sum_to_one() -> None:
    assert bin_shares(np.array([1.0, 2.0, 2.5, 3.0, 9.0]), [2.0, 3.0]) == [0.4, 0.4, 0.2]
    ref = numeric_profile(pd.Series(np.arange(1000.0)))
    assert len(ref["edges"]) == 9 and sum(ref["shares"]) == pytest.approx(1.0)
    assert ref["shares"] == pytest.approx([0.1] * 10, abs=0.002)
    assert ref["min"] == 0.0 and ref["max"] == 999.0 and len(ref["sample"]) == 500


def test_numeric_feature_psi_is_computed_on_the_reference_bins() -> None:
    ref = numeric_profile(pd.Series(np.arange(1000.0)))
    window = pd.Series(np.arange(500.0))  # the lower half: bins 1-5 hold 20 % each
    result = feature_drift("x", ref, window, Thresholds())
    expected = psi(ref["shares"], bin_shares(window.to_numpy(), ref["edges"]))
    assert result["psi"] == pytest.approx(expected)
    # by hand: five bins at 0.2 against 0.1, five at 0 (floored) against 0.1
    by_hand = 5 * (0.1 * math.log(2)) + 5 * ((1e-4 - 0.1) * math.log(1e-4 / 0.1))
    assert result["psi"] == pytest.approx(by_hand, rel=0.02)
    assert result["drifted"] and result["computable"]
    assert result["out_of_range_share"] == 0.0


def test_the_same_data_does_not_drift() -> None:
    frame = pd.DataFrame({"x": np.linspace(0, 1, 200), "c": ["a", "b"] * 100})
    profile = build_profile(frame, ["x", "c"], ["p", "q"] * 100, classes=["p", "q"])
    window = frame.assign(_prediction=["p", "q"] * 100)
    stats = compare(profile, window, Thresholds())
    assert not stats["drifted"] and stats["features_drifted"] == []
    assert stats["features"]["x"]["psi"] == pytest.approx(0.0)
    assert stats["features"]["x"]["ks_pvalue"] == pytest.approx(1.0)
    assert stats["prediction"]["psi"] == pytest.approx(0.0)


def test_categorical_psi_counts_unseen_values_as_other_and_out_of_range() -> None:
    ref = {"kind": "categorical", "missing_share": 0.0, "frequencies": {"a": 0.5, "b": 0.5},
           "other_share": 0.0}
    window = pd.Series(["a"] * 2 + ["b"] * 1 + ["z"] * 1)
    result = feature_drift("c", ref, window, TH)
    assert result["window_shares"] == {"a": 0.5, "b": 0.25, "(other)": 0.25}
    assert result["psi"] == pytest.approx(psi([0.5, 0.5, 0.0], [0.5, 0.25, 0.25]))
    assert result["out_of_range_share"] == 0.25 and result["drifted"]


def test_prediction_drift_over_class_shares() -> None:
    ref = {"kind": "classes", "classes": ["B", "M"], "shares": {"B": 0.6, "M": 0.4}}
    result = prediction_drift(ref, pd.Series(["M"] * 8 + ["B"] * 2), TH)
    assert result["psi"] == pytest.approx(psi([0.6, 0.4, 0.0], [0.2, 0.8, 0.0]))
    assert result["drifted"]


# ------------------------------------------------------------------ not computable


def _numeric_ref(values: list[float]) -> dict:
    return numeric_profile(pd.Series(values, dtype=float))


def test_a_feature_absent_from_the_window_is_not_computable() -> None:
    result = feature_drift("x", _numeric_ref([1, 2, 3]), None, TH)
    assert result == {**result, "computable": False, "reason": "absent from the window",
                      "drifted": False}


def test_an_empty_window_column_is_not_computable_but_its_missing_share_counts() -> None:
    result = feature_drift("x", _numeric_ref([1.0, 2, 3, 4]), pd.Series([np.nan] * 5), TH)
    assert not result["computable"] and result["reason"].startswith("empty: all 5")
    assert result["psi"] is None and result["ks_pvalue"] is None
    assert result["missing_share"] == 1.0 and result["drifted"]  # all missing is drift
    empty = feature_drift("x", _numeric_ref([1.0, 2]), pd.Series([], dtype=float), TH)
    assert not empty["computable"] and empty["reason"] == "empty: the window has no rows"
    assert not empty["drifted"]


def test_a_tiny_window_is_not_computable() -> None:
    result = feature_drift("x", _numeric_ref([1.0, 2, 3, 4]), pd.Series([1.0, 2.0]), TH)
    assert not result["computable"] and result["reason"].startswith("tiny: 2 value(s)")
    assert result["psi"] is None and not result["drifted"]
    cat = feature_drift("c", {"kind": "categorical", "frequencies": {"a": 1.0, "b": 0.0}},
                        pd.Series(["a"]), TH)
    assert not cat["computable"] and cat["reason"].startswith("tiny: 1 value(s)")


def test_a_feature_constant_in_training_is_not_computable_but_range_still_counts() -> None:
    ref = _numeric_ref([5.0] * 50)
    assert ref["edges"] == [5.0]
    same = feature_drift("x", ref, pd.Series([5.0] * 10), TH)
    assert not same["computable"] and same["reason"] == "constant in the training data " \
        "(always 5)" and not same["drifted"]
    moved = feature_drift("x", ref, pd.Series([5.0] * 5 + [6.0] * 5), TH)
    assert moved["out_of_range_share"] == 0.5 and moved["drifted"]
    cat = feature_drift("c", {"kind": "categorical", "frequencies": {"a": 1.0},
                              "other_share": 0.0}, pd.Series(["a"] * 10), TH)
    assert not cat["computable"] and cat["reason"].startswith("constant in the training")


def test_a_feature_empty_in_training_is_not_computable() -> None:
    ref = _numeric_ref([np.nan] * 5)
    assert ref["min"] is None and ref["missing_share"] == 1.0
    result = feature_drift("x", ref, pd.Series([1.0, 2.0, 3.0]), TH)
    assert not result["computable"] and result["reason"] == "no values in the training data"


def test_a_window_of_text_in_a_numeric_column_is_missing_not_a_crash() -> None:
    result = feature_drift("x", _numeric_ref([1.0, 2, 3, 4]),
                           pd.Series(["N/A", "1,234", None, "x"]), TH)
    assert result["missing_share"] == 1.0 and not result["computable"]


def test_compare_on_an_empty_window_is_not_computable_everywhere() -> None:
    frame = pd.DataFrame({"x": np.linspace(0, 1, 50)})
    profile = build_profile(frame, ["x"], ["a", "b"] * 25, classes=["a", "b"])
    stats = compare(profile, pd.DataFrame(), Thresholds())
    assert stats["rows"] == 0 and not stats["drifted"]
    assert stats["not_computable"] == {"x": "empty: the window has no rows"}
    absent = compare(profile, pd.DataFrame({"y": [1.0] * 40}), Thresholds())
    assert absent["not_computable"] == {"x": "absent from the window"}


def test_live_metrics_come_from_label_metrics() -> None:
    metrics = live_metrics(["M", "B", "M", "B"], ["M", "B", "B", "B"], positive="M")
    assert metrics == {"live_accuracy": 0.75, "live_precision": 0.5, "live_recall": 1.0,
                       "live_f1": pytest.approx(2 / 3)}
    assert live_metrics([], []) == {}
    assert live_metrics([1, 0], ["1", "0"], positive=1)["live_accuracy"] == 1.0


def test_compare_judges_given_predictions_instead_of_the_column() -> None:
    frame = pd.DataFrame({"x": np.linspace(0, 1, 100)})
    profile = build_profile(frame, ["x"], ["a", "b"] * 50, classes=["a", "b"])
    window = frame.assign(_prediction=["a"] * 100)  # an earlier version said "a" only
    assert compare(profile, window, Thresholds())["prediction"]["drifted"]
    own = compare(profile, window, Thresholds(), predictions=pd.Series(["a", "b"] * 20))
    assert not own["prediction"]["drifted"] and own["prediction"]["values"] == 40


def test_small_windows_of_the_training_population_do_not_drift_by_psi_noise() -> None:
    """114 rows drawn from the training population (the breast-cancer test split's size):
    PSI alone would flag some of thirty features by chance; its noise test does not."""
    rng = np.random.default_rng(7)
    train = pd.DataFrame({f"f{i}": rng.lognormal(size=455) for i in range(30)})
    reference = {c: numeric_profile(train[c]) for c in train}
    flagged_by_psi, drifted = 0, []
    for draw in range(5):
        window = pd.DataFrame({c: rng.lognormal(size=114) for c in train})
        for name in train:
            result = feature_drift(name, reference[name], window[name], Thresholds())
            flagged_by_psi += result["psi"] >= Thresholds().psi
            drifted += [f"{draw}:{name}"] if result["drifted"] else []
    assert flagged_by_psi >= 5  # the bias exists: raw PSI crosses 0.2 on pure noise
    assert len(drifted) <= 1, drifted  # 150 tests at a 1e-4 level (chi-square approximation)
    shifted = pd.Series(rng.lognormal(size=114) * 3)
    result = feature_drift("f0", reference["f0"], shifted, Thresholds())
    assert result["drifted"] and result["psi_pvalue"] < 1e-6
    assert any(why.startswith("psi") for why in result["why"])
