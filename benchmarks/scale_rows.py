"""How ``conveyor run`` grows with the data: 10k, 100k and 1M rows of a generated data set.

For each size a classification CSV is generated (in a child process, see below): 20 numeric
features (normal, 5 % of the cells of four of them missing), an id column and a binary target
drawn from a logistic model of the features, seed 7. Then ``conveyor run`` of a spec shaped
like the breast-cancer example (median imputer, StandardScaler, LogisticRegression, five
metrics, gate, registration, export) runs on a fresh ``CONVEYOR_HOME`` as a whole process:
wall seconds and peak resident memory (``ru_maxrss`` from ``os.wait4``). The MLflow template
is built beforehand in a private ``CONVEYOR_CACHE_DIR`` (ADR 0043), as on any machine that ran
Conveyor once.

"In-memory size" is ``DataFrame.memory_usage(deep=True)`` of the CSV as pandas reads it. A
process that imported pandas, scikit-learn and MLflow holds ~400 MiB before it reads a byte,
so besides peak / size the report gives (peak - peak of the smallest size) / (size - size of
the smallest), the memory the data itself costs, and the peak while each step ran. Issue
11's targets: time linear in rows, peak memory <= 3x the data's size.

The inputs are generated in child processes: Linux counts the memory a child was forked with
in its ``ru_maxrss``, so generating 1M rows in this process would inflate every figure.

Usage::

    .venv/bin/python benchmarks/scale_rows.py [--rows 10000,100000,1000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEATURES = 20
SPEC = """\
name: scale_rows
data:
  source: file
  uri: {data}
  format: csv
schema:
  target: label
  positive_label: 1
  id: id
  features: infer
split: {{test_size: 0.2, stratify: true, seed: 42}}
preprocess:
  numeric: {{impute: median, scale: standard}}
model:
  estimator: logistic_regression
  params: {{C: 1.0, max_iter: 1000}}
evaluate:
  metrics: [accuracy, precision, recall, f1, roc_auc]
gate:
  test_accuracy: 0.5
registry:
  name: scale_rows_classifier
"""
_SCRUB = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CONVEYOR_EXPORT_URI", "CONVEYOR_HOME",
          "CONVEYOR_PROFILE", "CONVEYOR_CACHE_DIR")


def make_input(path: Path, rows: int) -> None:
    """Write the CSV and print its in-memory size in bytes (run in a child process)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    X = rng.normal(size=(rows, FEATURES))
    weights = rng.normal(size=FEATURES)
    label = (rng.random(rows) < 1 / (1 + np.exp(-(X @ weights) / 2))).astype(int)
    for column in range(4):
        X[rng.random(rows) < 0.05, column] = np.nan
    frame = pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(FEATURES)])
    frame.insert(0, "id", np.arange(rows))
    frame["label"] = label
    frame.to_csv(path, index=False, float_format="%.6g")
    read = pd.read_csv(path)
    print(int(read.memory_usage(deep=True).sum()))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(extra)
    return env


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float,
                                                                  dict[str, float]]:
    """(wall seconds, peak RSS in MiB, CPU seconds, peak RSS while each step ran) of one
    ``conveyor run``. Peak RSS is ``ru_maxrss`` from ``os.wait4``; the per-step figures sample
    ``/proc/PID/status`` every 0.1 s and give each sample to the step whose ``✓`` line comes
    next (the first step's figure includes start-up: imports, spec, MLflow run). CPU seconds
    (user + system) vary less than wall time on a shared machine."""
    import re
    import threading

    marks: list[tuple[float, str]] = []

    def read(stream) -> None:  # a text pipe
        for line in stream:
            found = re.match(r"\s*[✓↺·✗-]\s+(\w+)\s", line)
            if found:
                marks.append((time.perf_counter(), found.group(1)))

    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err,
                                text=True)
        reader = threading.Thread(target=read, args=(proc.stdout,), daemon=True)
        reader.start()
        samples: list[tuple[float, float]] = []
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            samples.append((time.perf_counter(), _rss_mib(proc.pid)))
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        reader.join(timeout=10)
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({status}):\n"
                             f"{err.read().decode()[-3000:]}")
    by_step: dict[str, float] = {}
    for at, mib in samples:
        step = next((name for when, name in marks if when >= at), "end")
        by_step[step] = max(by_step.get(step, 0.0), mib)
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, {
        k: round(v) for k, v in by_step.items()}


def main() -> int:
    if sys.argv[1:2] == ["--make-input"]:
        make_input(Path(sys.argv[2]), int(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--keep", type=Path, help="keep the scratch folder here")
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",")]
    conveyor = str(Path(sys.executable).parent / "conveyor")
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="conveyor-scale-"))
    scratch.mkdir(parents=True, exist_ok=True)
    cache = {"CONVEYOR_CACHE_DIR": str(scratch / "cache")}
    load_at_start = round(os.getloadavg()[0], 2)
    results: dict[int, dict] = {}
    try:
        subprocess.run([sys.executable, "-c", "from conveyor.tracking.template import "
                        "ensure_template; ensure_template()"], env=_env(**cache), check=True)
        for rows in sizes:
            data = scratch / f"rows-{rows}.csv"
            made = subprocess.run([sys.executable, __file__, "--make-input", str(data),
                                   str(rows)], capture_output=True, text=True, check=True)
            spec = scratch / f"rows-{rows}.yaml"
            spec.write_text(SPEC.format(data=data.as_uri()))
            results[rows] = {"rows": rows, "csv_mib": round(data.stat().st_size / 2**20, 1),
                             "data_mib": round(int(made.stdout.strip()) / 2**20, 1),
                             "seconds": [], "cpu_seconds": [], "peak_mib": []}
        for round_index in range(args.rounds):
            # interleaved: each round runs every size once, the order rotating
            order = sizes[round_index % len(sizes):] + sizes[:round_index % len(sizes)]
            for rows in order:
                home = scratch / f"home-{rows}-{round_index}"
                seconds, peak, cpu, steps = timed(
                    [conveyor, "run", str(scratch / f"rows-{rows}.yaml")],
                    _env(CONVEYOR_HOME=str(home), **cache), scratch)
                shutil.rmtree(home, ignore_errors=True)
                results[rows]["seconds"].append(round(seconds, 2))
                results[rows]["peak_mib"].append(round(peak))
                results[rows]["cpu_seconds"].append(round(cpu, 2))
                results[rows].setdefault("peak_mib_by_step", []).append(steps)
                print(f"round {round_index + 1}: {rows:>9,} rows  {seconds:7.2f}s  "
                      f"cpu {cpu:6.2f}s  peak {peak:6.0f} MiB  "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
                print(f"    peak MiB while each step ran: {steps}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)

    smallest = results[sizes[0]]
    base_s = statistics.median(smallest["seconds"])
    base_mib = statistics.median(smallest["peak_mib"])
    print(f"\n{'rows':>10} {'csv MiB':>8} {'data MiB':>9} {'median s':>9} {'cpu s':>7} "
          f"{'µs/extra row':>13} "
          f"{'peak MiB':>9} {'peak/data':>10} {'Δpeak/Δdata':>12}")
    for rows in sizes:
        r = results[rows]
        r["median_seconds"] = statistics.median(r["seconds"])
        r["median_cpu_seconds"] = statistics.median(r["cpu_seconds"])
        r["median_peak_mib"] = statistics.median(r["peak_mib"])
        r["peak_over_data"] = round(r["median_peak_mib"] / r["data_mib"], 2)
        grown = r["data_mib"] - smallest["data_mib"]
        r["extra_peak_over_extra_data"] = (round((r["median_peak_mib"] - base_mib) / grown, 2)
                                           if grown > 0 else None)
        # seconds beyond the smallest run, per row beyond it (the fixed cost taken out)
        extra_rows = rows - sizes[0]
        r["extra_us_per_extra_row"] = (round((r["median_seconds"] - base_s) / extra_rows * 1e6,
                                             2) if extra_rows else None)
        print(f"{rows:>10,} {r['csv_mib']:>8} {r['data_mib']:>9} {r['median_seconds']:>9.2f} "
              f"{r['median_cpu_seconds']:>7.2f} {r['extra_us_per_extra_row'] or '-'!s:>13} "
              f"{r['median_peak_mib']:>9.0f} "
              f"{r['peak_over_data']:>10} {r['extra_peak_over_extra_data'] or '-'!s:>12}")
    now = datetime.now(UTC)
    out = {"benchmark": "scale_rows", "date": now.isoformat(timespec="seconds"),
           "sizes": list(results.values()), "rounds": args.rounds,
           "load_1min_at_start": load_at_start,
           "load_1min_at_end": round(os.getloadavg()[0], 2),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "python": platform.python_version()},
           "command": "CONVEYOR_HOME=FRESH conveyor run rows-N.yaml --quiet"}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"scale_rows-{now:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"results: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
