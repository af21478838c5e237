"""What importing the libraries alone costs: the floor under issue 11's first-run target.

Issue 11 asks a first `conveyor run` of the breast-cancer example to cost at most 2x the plain
pandas + scikit-learn script (benchmarks/plain_breast_cancer.py). A first run records more
than the script does, and each record needs a library the script never imports: MLflow (the
run, the logged model in MLflow's format, the registry), skops (the model format that loads
without unpickling), matplotlib (the PNG plots and the report's figures) and pandera (the
data checks). This measures, as whole fresh processes (interpreter start included, as the
run benchmarks count it), importing nothing but:

  (p) the plain script's imports: pandas and the scikit-learn modules it uses
  (m) (p) + mlflow and mlflow.sklearn           (what saving an MLflow model needs)
  (r) (m) + skops.io, matplotlib (Agg), pandera (everything a first run records with)

Rounds are interleaved; the medians of wall and CPU seconds (user + system, from os.wait4)
are printed and kept in benchmarks/results/import_floor-<UTC time>.json. Compare (r) with 2x
the plain script's whole run (run_breast_cancer.py's "plain" column).

Usage::

    .venv/bin/python benchmarks/import_floor.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

PLAIN = ("import pandas, sklearn.impute, sklearn.linear_model, sklearn.metrics, "
         "sklearn.model_selection, sklearn.pipeline, sklearn.preprocessing")
SETS = {
    "plain": PLAIN,
    "mlflow": PLAIN + "; import mlflow, mlflow.sklearn",
    "recorded": PLAIN + "; import mlflow, mlflow.sklearn; import matplotlib; "
                "matplotlib.use('Agg'); import matplotlib.pyplot, pandera.pandas; "
                "from conveyor.tracking.tracker import import_skops; import_skops()",
}


def _timed(code: str) -> tuple[float, float]:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"importing failed: {code}\n{proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    for code in SETS.values():  # bytecode compiled once, outside the rounds
        _timed(code)
    results: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in SETS}
    names = list(SETS)
    for index in range(args.rounds):
        for name in names[index % len(names):] + names[:index % len(names)]:
            wall, cpu = _timed(SETS[name])
            results[name]["wall"].append(round(wall, 3))
            results[name]["cpu"].append(round(cpu, 3))
        print(f"round {index + 1}/{args.rounds}: " + "  ".join(
            f"{n} {results[n]['wall'][-1]:.2f}s" for n in names), flush=True)
    medians = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
    for name in names:
        print(f"{name:>9}: wall {medians[name]['wall']:.2f}s  cpu {medians[name]['cpu']:.2f}s")
    out = Path(__file__).parent / "results" / (
        f"import_floor-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rounds": results, "medians": medians, "sets": SETS,
                               "load_average": os.getloadavg()}, indent=2))
    print(f"results: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
