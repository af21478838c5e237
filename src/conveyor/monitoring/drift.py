"""Drift statistics: a window of inputs and predictions against the reference profile.

Per feature: PSI on the reference's bins (numeric: the training deciles; categorical: the
training categories and one bucket for the rest), the two-sample KS test
(:func:`scipy.stats.ks_2samp`) for numeric features against the profile's sample, the share
of missing values and of values outside the training range (or unseen categories). The
predictions: PSI over the class shares (or the numeric checks for a regressor).

A statistic that cannot be trusted is *not computable*, with the reason, never a crash: a
feature absent from the window, a window with fewer than ``min_rows`` values of it (empty
included), a feature constant or empty in the training data. The missing and out-of-range
shares are still judged for such a feature (a column that went all-missing has drifted).

A feature has drifted when PSI >= ``psi`` *and* that PSI is more than sampling noise, the KS
p-value < ``ks_pvalue``, its missing share is above ``max_missing_share`` (and above the
training's), or its out-of-range share is above ``max_out_of_range_share``.

PSI is biased upwards on small windows: with no drift at all, ``PSI * (1/n + 1/m)^-1`` follows
a chi-square law with ``bins - 1`` degrees of freedom (n window values, m reference values),
so 114 rows of the training population over ten bins give PSI about 0.1 on average and above
0.2 on one feature in thirty. ``psi_pvalue`` is that law's tail probability, and a PSI counts
only when it is below :data:`PSI_SIGNIFICANCE` (a real shift, say a feature scaled by 3,
gives PSI in the units and p-values of 1e-30 and less).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from conveyor.monitoring.profile import bin_shares

__all__ = ["PSI_FLOOR", "PSI_SIGNIFICANCE", "Thresholds", "compare", "feature_drift", "ks_test",
           "live_metrics", "prediction_drift", "psi", "psi_pvalue"]

#: Shares are floored here before PSI's logarithm (an empty bin would make it infinite).
PSI_FLOOR = 1e-4
#: A PSI above the threshold counts as drift only when sampling noise explains it this rarely.
PSI_SIGNIFICANCE = 1e-4
OTHER = "(other)"


@dataclass(frozen=True)
class Thresholds:
    """When a statistic means drift (the spec's ``monitor:`` section; these are its defaults)."""

    psi: float = 0.2
    ks_pvalue: float = 0.001
    max_missing_share: float = 0.2
    max_out_of_range_share: float = 0.1
    min_rows: int = 30

    @classmethod
    def of(cls, section: Any) -> Thresholds:
        """The thresholds of a spec's ``monitor`` section (or defaults for ``None``)."""
        if section is None:
            return cls()
        return cls(**{name: getattr(section, name) for name in asdict(cls())})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def psi(expected: Sequence[float], actual: Sequence[float], *, floor: float = PSI_FLOOR) -> float:
    """Population stability index of two share vectors over the same bins.

    ``sum((a - e) * ln(a / e))``, each share floored at ``floor``.

    >>> round(psi([0.5, 0.5], [0.25, 0.75]), 6)
    0.274653
    """
    e = np.maximum(np.asarray(expected, dtype=float), floor)
    a = np.maximum(np.asarray(actual, dtype=float), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def ks_test(reference: Sequence[float], window: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (scipy)."""
    import warnings

    from scipy.stats import ks_2samp

    with warnings.catch_warnings():  # "exact calculation unsuccessful": it falls back itself
        warnings.simplefilter("ignore", RuntimeWarning)
        result = ks_2samp(np.asarray(reference, dtype=float), np.asarray(window, dtype=float))
    return float(result.statistic), float(result.pvalue)


def psi_pvalue(value: float, bins: int, window: int, reference: int) -> float | None:
    """How often sampling noise alone gives a PSI of ``value`` or more (chi-square tail).

    >>> round(psi_pvalue(0.222, 10, 114, 455), 3)  # noise on a small window
    0.017
    >>> psi_pvalue(2.0, 10, 114, 455) < 1e-30          # a real shift
    True
    """
    from scipy.stats import chi2

    if bins < 2 or window <= 0 or reference <= 0:
        return None
    return float(chi2.sf(value / (1 / window + 1 / reference), bins - 1))


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _judge(out: dict[str, Any], reference_missing: float, th: Thresholds) -> dict[str, Any]:
    why = []
    noise = out.get("psi_pvalue")
    if out.get("psi") is not None and out["psi"] >= th.psi and (
            noise is None or noise < PSI_SIGNIFICANCE):
        why.append(f"psi {out['psi']:.3f} >= {th.psi}")
    if out.get("ks_pvalue") is not None and out["ks_pvalue"] < th.ks_pvalue:
        why.append(f"KS p-value {out['ks_pvalue']:.2g} < {th.ks_pvalue}")
    missing = out.get("missing_share")
    if missing is not None and missing > th.max_missing_share and missing > reference_missing:
        why.append(f"missing {missing:.1%} > {th.max_missing_share:.0%}")
    outside = out.get("out_of_range_share")
    if outside is not None and outside > th.max_out_of_range_share:
        why.append(f"out of range {outside:.1%} > {th.max_out_of_range_share:.0%}")
    out["drifted"] = bool(why)
    out["why"] = why
    return out


def _numeric(name: str, ref: Mapping[str, Any], values: Any, th: Thresholds) -> dict[str, Any]:
    import pandas as pd

    raw = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    finite = raw[np.isfinite(raw)]
    rows = int(raw.size)
    out: dict[str, Any] = {
        "name": name, "kind": "numeric", "rows": rows, "values": int(finite.size),
        "missing_share": float(1 - finite.size / rows) if rows else None,
        "reference_missing_share": ref.get("missing_share", 0.0),
        "out_of_range_share": None, "psi": None, "psi_pvalue": None, "ks_statistic": None,
        "ks_pvalue": None, "computable": True, "reason": None,
        "reference_shares": ref.get("shares"), "window_shares": None,
    }
    low, high = ref.get("min"), ref.get("max")
    if finite.size and low is not None and high is not None:
        out["out_of_range_share"] = float(np.mean((finite < low) | (finite > high)))
    reason = None
    if rows == 0:
        reason = "empty: the window has no rows"
    elif low is None or not ref.get("sample"):
        reason = "no values in the training data"
    elif finite.size < th.min_rows:
        reason = (f"tiny: {finite.size} value(s) in the window, fewer than min_rows "
                  f"({th.min_rows})" if finite.size else f"empty: all {rows} value(s) missing")
    elif low == high:
        reason = f"constant in the training data (always {low:g})"
    if reason is not None:
        out.update(computable=False, reason=reason)
        return _judge(out, ref.get("missing_share", 0.0), th)
    edges = ref["edges"]
    window_shares = bin_shares(finite, edges)
    out["window_shares"] = window_shares
    out["psi"] = _number(psi(ref["shares"], window_shares))
    if out["psi"] is not None:
        out["psi_pvalue"] = psi_pvalue(out["psi"], len(ref["shares"]), int(finite.size),
                                       _reference_count(ref))
    out["ks_statistic"], out["ks_pvalue"] = ks_test(ref["sample"], finite)
    return _judge(out, ref.get("missing_share", 0.0), th)


def _categorical(name: str, ref: Mapping[str, Any], values: Any,
                 th: Thresholds) -> dict[str, Any]:
    rows = len(values)
    present = values.dropna().astype(str)
    known = dict(ref.get("frequencies") or {})
    out: dict[str, Any] = {
        "name": name, "kind": "categorical", "rows": rows, "values": len(present),
        "missing_share": float(1 - len(present) / rows) if rows else None,
        "reference_missing_share": ref.get("missing_share", 0.0),
        "out_of_range_share": None, "psi": None, "psi_pvalue": None, "ks_statistic": None,
        "ks_pvalue": None, "computable": True, "reason": None, "reference_shares": None,
        "window_shares": None,
    }
    if len(present) and known:
        out["out_of_range_share"] = float(np.mean(~present.isin(list(known))))
    reason = None
    if rows == 0:
        reason = "empty: the window has no rows"
    elif not known:
        reason = "no values in the training data"
    elif len(present) < th.min_rows:
        reason = (f"tiny: {len(present)} value(s) in the window, fewer than min_rows "
                  f"({th.min_rows})" if len(present) else f"empty: all {rows} value(s) missing")
    elif len(known) == 1 and not ref.get("other_share"):
        reason = f"constant in the training data (always {next(iter(known))!r})"
    if reason is not None:
        out.update(computable=False, reason=reason)
        return _judge(out, ref.get("missing_share", 0.0), th)
    counts = present.value_counts(normalize=True)
    labels = [*known, OTHER]
    expected = [*known.values(), float(ref.get("other_share") or 0.0)]
    actual = [float(counts.get(k, 0.0)) for k in known]
    actual.append(max(0.0, 1.0 - sum(actual)))
    out["reference_shares"] = dict(zip(labels, expected, strict=True))
    out["window_shares"] = dict(zip(labels, actual, strict=True))
    out["psi"] = _number(psi(expected, actual))
    if out["psi"] is not None:
        out["psi_pvalue"] = psi_pvalue(out["psi"], len(expected), len(present),
                                       _reference_count(ref))
    return _judge(out, ref.get("missing_share", 0.0), th)


def _reference_count(ref: Mapping[str, Any]) -> int:
    """The training values behind a feature's reference shares."""
    rows = int(ref.get("rows") or 0)  # 0: unknown (an older profile): no noise test
    return round(rows * (1 - float(ref.get("missing_share") or 0.0)))


def feature_drift(name: str, reference: Mapping[str, Any], values: Any | None,
                  thresholds: Thresholds) -> dict[str, Any]:
    """The drift statistics of one feature (``values``: the window's column, or ``None``
    when the window lacks it)."""
    if values is None:
        out = {"name": name, "kind": reference.get("kind"), "rows": 0, "values": 0,
               "computable": False, "reason": "absent from the window", "psi": None,
               "ks_statistic": None, "ks_pvalue": None, "missing_share": None,
               "out_of_range_share": None, "drifted": False, "why": []}
        return out
    if reference.get("kind") == "numeric":
        return _numeric(name, reference, values, thresholds)
    return _categorical(name, reference, values, thresholds)


def prediction_drift(reference: Mapping[str, Any], predictions: Any | None,
                     thresholds: Thresholds) -> dict[str, Any]:
    """Drift of the predictions: PSI over the class shares (a regressor: numeric checks)."""
    if reference.get("kind") != "classes":
        return feature_drift("_prediction", reference, predictions, thresholds)
    shares = dict(reference.get("shares") or {})
    frequencies = {k: v for k, v in shares.items()}
    return _categorical("_prediction", {"kind": "categorical", "frequencies": frequencies,
                                        "other_share": 0.0, "missing_share": 0.0},
                        predictions, thresholds) if predictions is not None else \
        feature_drift("_prediction", {"kind": "categorical"}, None, thresholds)


def compare(profile: Mapping[str, Any], window: Any, thresholds: Thresholds, *,
            prediction_column: str = "_prediction", predictions: Any = None) -> dict[str, Any]:
    """Compare a window (DataFrame of features and predictions) with a reference profile.

    ``predictions`` replaces the window's ``prediction_column`` (the rows the profiled
    version predicted, when the window also holds an earlier version's samples).

    Returns:
        ``features`` (one result per profiled feature), ``prediction``, ``drifted``,
        ``features_drifted`` and ``not_computable`` (name -> reason).
    """
    import pandas as pd

    features = {}
    for name, ref in (profile.get("features") or {}).items():
        column = window[name] if name in window.columns else (
            pd.Series([], dtype=object) if len(window) == 0 else None)
        features[name] = feature_drift(name, ref, column, thresholds)
    if predictions is None and prediction_column in window.columns:
        predictions = window[prediction_column]
    prediction = prediction_drift(profile.get("prediction") or {}, predictions, thresholds)
    drifted = [name for name, result in features.items() if result["drifted"]]
    return {
        "rows": len(window),
        "features": features,
        "prediction": prediction,
        "features_drifted": drifted,
        "drifted": bool(drifted) or prediction["drifted"],
        "not_computable": {name: r["reason"] for name, r in features.items()
                           if not r["computable"]},
    }


def live_metrics(predicted: Iterable[Any], actual: Iterable[Any], *,
                 positive: Any = None, regression: bool = False) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of the window's predictions against labels that
    arrived later (labels compared as text, so ``1`` and ``"1"`` agree); for a regressor
    (``regression``), RMSE, MAE, R² and MAPE of the predicted values."""
    from conveyor.modeling.metrics import LABEL_METRICS, label_metrics, value_metrics

    if regression:
        y_pred = np.asarray(list(predicted), dtype=float)
        y_true = np.asarray(list(actual), dtype=float)
        if not y_true.size:
            return {}
        return {f"live_{k}": v for k, v in value_metrics(
            y_true, y_pred, ("rmse", "mae", "r2", "mape")).items()}

    y_pred = [str(v) for v in predicted]
    y_true = [str(v) for v in actual]
    if not y_true:
        return {}
    classes = set(y_true) | set(y_pred)
    chosen = str(positive) if positive is not None and len(classes) <= 2 else None
    return {f"live_{k}": v for k, v in label_metrics(
        y_true, y_pred, LABEL_METRICS, positive=chosen).items()}
