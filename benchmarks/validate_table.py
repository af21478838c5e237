"""Time ``validate_table`` on a generated 200k-row frame (issue 12: validation must not get
much slower). Not a test: prints the median of N rounds and writes nothing.

    .venv/bin/python benchmarks/validate_table.py [--rows 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from conveyor.sources.lines import LineMap
from conveyor.spec.models import Spec
from conveyor.validation.table import validate_table


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """id, a binary text target, 28 float features (1 % missing), a 90 %-numeric text column
    (typos turned to missing under ``types: warn``) and a 5-level category."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"id": np.arange(rows), "diagnosis": rng.choice(["M", "B"], rows)}
    for i in range(28):
        values = rng.normal(10, 3, rows)
        values[rng.random(rows) < 0.01] = np.nan
        data[f"f{i}"] = values
    text = rng.normal(5, 1, rows).round(3).astype(str).astype(object)
    text[rng.random(rows) < 0.02] = "n.a."
    data["typed"] = text
    data["colour"] = rng.choice(["red", "green", "blue", "grey", "black"], rows)
    return pd.DataFrame(data)


def spec(extra: dict[str, object] | None = None) -> Spec:
    return Spec.model_validate({
        "name": "bench", "data": {"source": "file", "uri": "bench.csv"},
        "schema": {"target": "diagnosis", "positive_label": "M", "id": "id"},
        "validate": {"types": "warn", **(extra or {})},
        "model": {"estimator": "logistic_regression"},
    })


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rules", action="store_true",
                        help="also declare per-column rules (validate.columns)")
    args = parser.parse_args()
    table = frame(args.rows)
    extra = None
    if args.rules:
        extra = {"columns": {"f0": {"min": -100, "max": 100},
                             "colour": {"allowed": ["red", "green", "blue", "grey", "black"]},
                             "diagnosis": {"allowed": ["M", "B"]}}}
    the_spec = spec(extra)
    lines = LineMap.from_lines(range(2, args.rows + 2))
    validate_table(table, the_spec, source="bench.csv", lines=lines)  # warm imports
    seconds = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        validate_table(table, the_spec, source="bench.csv", lines=lines)
        seconds.append(time.perf_counter() - started)
    print(f"validate_table, {args.rows:,} rows x {table.shape[1]} columns: median "
          f"{statistics.median(seconds):.3f} s over {args.rounds} rounds "
          f"(min {min(seconds):.3f}, max {max(seconds):.3f})")


if __name__ == "__main__":
    main()
