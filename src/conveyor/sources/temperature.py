"""The ``temperature`` generator: daily readings of a weather station, with sensor faults.

One data set is one station: a seasonal cycle (coldest in mid-January), day-to-day weather
(an AR(1) process whose spread is ``noise``), readings to 0.01 °C, and anomalies injected at
``anomaly_rate`` (the expected share of anomalous days) in these shapes:

- ``spike``: one reading off by about ``spike_size`` °C, up or down;
- ``drift``: the sensor drifts away over ``drift_days`` days, up to ``drift_size`` °C;
- ``stuck``: the sensor repeats its last reading for ``stuck_days`` days (a flatline);
- ``dropout``: the sensor reports 0.00 °C for one to three days (a reset).

Everything follows from ``seed``. The features a classifier needs are computed from the
readings alone (never from the labels): seasonality as sine and cosine of the day of the
year, the change from the day before, the distance to a 7-day median and a 31-day mean, a
5-day spread, and the length of the run of identical readings.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SHAPES", "temperature_datasets", "temperature_frame", "write_temperature"]

SHAPES = ("spike", "drift", "stuck", "dropout")
_MARGIN = 7  # no anomaly in a station's first week: the rolling features need a history


def temperature_frame(*, days: int = 730, start: str = "2024-01-01", seed: int = 0,
                      station: str | None = None, mean: float | None = None,
                      amplitude: float | None = None, noise: float = 1.5,
                      anomaly_rate: float = 0.05, shapes: Sequence[str] = SHAPES,
                      spike_size: float = 8.0, drift_size: float = 8.0, drift_days: int = 6,
                      stuck_days: int = 5) -> pd.DataFrame:
    """One station's daily readings, features and labels.

    Args:
        days: readings, one a day from ``start``.
        start: the first day (ISO date).
        seed: everything random follows from it.
        station: the station's name (default ``s<seed>``).
        mean: the yearly mean in °C (default: drawn between 4 and 18).
        amplitude: half the summer-winter difference (default: drawn between 5 and 12).
        noise: the spread of day-to-day weather, in °C.
        anomaly_rate: the expected share of anomalous days, in [0, 0.5].
        shapes: the anomaly shapes to draw from (:data:`SHAPES`).
        spike_size: how far a spike is off, in °C.
        drift_size: how far a drift ends, in °C.
        drift_days: how long a drift lasts.
        stuck_days: how long a sensor stays stuck.

    Returns:
        Columns ``date``, ``station``, ``temperature``, the features, ``anomaly_shape``
        (``none`` or the shape) and ``is_anomaly`` (0 or 1).

    Raises:
        ValueError: a parameter is out of its range (naming it).
    """
    _check(days=days, noise=noise, anomaly_rate=anomaly_rate, shapes=shapes,
           drift_days=drift_days, stuck_days=stuck_days)
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    mean = float(rng.uniform(4, 18)) if mean is None else mean
    amplitude = float(rng.uniform(5, 12)) if amplitude is None else amplitude
    day_of_year = dates.dayofyear.to_numpy()
    season = mean - amplitude * np.cos(2 * math.pi * (day_of_year - 15) / 365.25)
    weather = np.zeros(days)
    shocks = rng.normal(0.0, noise * math.sqrt(1 - 0.7**2), days)
    for t in range(days):
        weather[t] = (0.7 * weather[t - 1] if t else 0.0) + shocks[t]
    reading = np.round(season + weather, 2)
    label = np.zeros(days, dtype=np.int64)
    shape_of = np.array(["none"] * days, dtype=object)
    _inject(reading, label, shape_of, rng, anomaly_rate=anomaly_rate, shapes=shapes,
            spike_size=spike_size, drift_size=drift_size, drift_days=drift_days,
            stuck_days=stuck_days)
    frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"),
                          "station": station or f"s{seed}",
                          "temperature": np.round(reading, 2)})
    frame = pd.concat([frame, _features(frame["temperature"], day_of_year)], axis=1)
    frame["anomaly_shape"] = shape_of
    frame["is_anomaly"] = label
    return frame


def _check(*, days: int, noise: float, anomaly_rate: float, shapes: Sequence[str],
           drift_days: int, stuck_days: int) -> None:
    if days < 2 * _MARGIN:
        raise ValueError(f"days must be at least {2 * _MARGIN}, got {days}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if not 0 <= anomaly_rate <= 0.5:
        raise ValueError(f"anomaly_rate must be in [0, 0.5], got {anomaly_rate}")
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown or not shapes:
        raise ValueError(f"shapes must be some of {', '.join(SHAPES)}, got "
                         f"{', '.join(shapes) or 'none'}")
    if drift_days < 2 or stuck_days < 2:
        raise ValueError("drift_days and stuck_days must be at least 2")


def _inject(reading: np.ndarray, label: np.ndarray, shape_of: np.ndarray,
            rng: np.random.Generator, *, anomaly_rate: float, shapes: Sequence[str],
            spike_size: float, drift_size: float, drift_days: int, stuck_days: int) -> None:
    days = len(reading)
    wanted = round(anomaly_rate * days)
    for _ in range(20 * max(wanted, 1)):  # bounded: a crowded series stops short
        if label.sum() >= wanted:
            return
        shape = str(rng.choice(list(shapes)))
        length = {"spike": 1, "drift": drift_days, "stuck": stuck_days,
                  "dropout": int(rng.integers(1, 4))}[shape]
        start = int(rng.integers(_MARGIN, days - length))
        window = slice(start - 1, start + length + 1)  # a normal day on either side
        if label[window].any():
            continue
        where = slice(start, start + length)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if shape == "spike":
            reading[where] += sign * spike_size * rng.uniform(0.8, 1.3)
        elif shape == "drift":
            reading[where] += sign * np.linspace(drift_size / length, drift_size, length)
        elif shape == "stuck":
            reading[where] = reading[start - 1]
        else:
            reading[where] = 0.0
        reading[where] = np.round(reading[where], 2)
        label[where] = 1
        shape_of[where] = shape


def _features(temperature: pd.Series, day_of_year: np.ndarray) -> pd.DataFrame:
    angle = 2 * math.pi * day_of_year / 365.25
    change = temperature.diff().fillna(0.0)
    same = change.eq(0).astype(int)
    # the run of identical readings each day belongs to (a stuck sensor makes long ones)
    run_id = (same == 0).cumsum()
    flat_run = temperature.groupby(run_id).transform("size")
    return pd.DataFrame({
        "day_sin": np.round(np.sin(angle), 4),
        "day_cos": np.round(np.cos(angle), 4),
        "change_1d": np.round(change, 2),
        "residual_7d": np.round(
            temperature - temperature.rolling(7, center=True, min_periods=1).median(), 2),
        "residual_31d": np.round(
            temperature - temperature.rolling(31, center=True, min_periods=1).mean(), 2),
        "spread_5d": np.round(
            temperature.rolling(5, center=True, min_periods=2).std().fillna(0.0), 3),
        "flat_run": flat_run.astype(int),
        "is_zero": temperature.eq(0).astype(int),
    })


def temperature_datasets(datasets: int, *, seed: int = 0, **params: Any
                         ) -> list[pd.DataFrame]:
    """``datasets`` stations, seeded ``seed``, ``seed + 1``, ...; ``params`` as for
    :func:`temperature_frame`."""
    return [temperature_frame(seed=seed + i, station=f"s{seed + i}", **params)
            for i in range(datasets)]


def write_temperature(out: str | os.PathLike[str], *, datasets: int,
                      test_datasets: int | None = None, seed: int = 0, **params: Any
                      ) -> dict[str, list[Path]]:
    """Write ``datasets`` stations into ``out/train/`` and ``test_datasets`` others into
    ``out/test/`` (CSV, one file a station; seeds never shared between the two).

    Files are written whole or not at all, and replace those of the same name.

    Returns:
        ``{"train": [paths], "test": [paths]}``.
    """
    from conveyor.store import write_atomic

    test_datasets = datasets if test_datasets is None else test_datasets
    if datasets < 1 or test_datasets < 1:
        raise ValueError("datasets and test_datasets must be at least 1")
    written: dict[str, list[Path]] = {"train": [], "test": []}
    # test stations draw from seeds far from the training ones: no station is in both
    for folder, count, first in (("train", datasets, seed),
                                 ("test", test_datasets, seed + 100_000)):
        for i in range(count):
            frame = temperature_frame(seed=first + i, station=f"s{first + i}", **params)
            path = Path(out) / folder / f"station_{i:03d}.csv"
            write_atomic(path, frame.to_csv(index=False).encode())
            written[folder].append(path)
    return written
