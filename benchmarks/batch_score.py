"""Batch scoring of 1,000,000 rows, Parquet to Parquet, end to end (issue 10, "Speed").

Each contender is a whole process timed from spawn to exit (imports, model loading, reading,
scoring, writing): wall seconds, rows/s, and peak resident memory (``ru_maxrss`` of the
process, from ``os.wait4``). The input is generated in a child process: Linux counts the
memory a child was forked with in its ``ru_maxrss``, so a big benchmark process would
inflate every figure.

1. ``conveyor score`` local engine, ``--chunk-rows 100000``, the model named by the registry
   (``models:/breast_cancer_classifier/1``: MLflow is imported to resolve it) and by its
   export folder (``exports/breast_cancer/latest``: no MLflow import); 25,000 and 1,000,000
   row chunks on the export to show that memory follows the chunk;
2. a plain ``mlflow.pyfunc`` script doing the same I/O, from the same two places:
   ``pandas.read_parquet`` of the file, ``pyfunc.predict`` (labels only: less work than ours,
   which adds class probabilities), ``to_parquet`` of id + prediction;
3. ``conveyor score --engine dask --workers 2`` from the export (the default LocalCluster:
   two in-process workers of one thread each, ADR 0034).

The same registered model (the breast-cancer example, trained once in a scratch home) and the
same input (30 features resampled from the WDBC rows with 5% multiplicative noise, row groups
of 100,000 rows). Medians of ``--rounds`` (default 3), rounds interleaved.

    .venv/bin/python benchmarks/batch_score.py [--rows 1000000] [--rounds 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPEC = REPO / "examples" / "breast_cancer" / "pipeline.yaml"
MODEL = "models:/breast_cancer_classifier/1"

PYFUNC = '''
import sys, mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
frame = pd.read_parquet(sys.argv[3])
features = [c for c in frame.columns if c != "id"]
out = pd.DataFrame({"id": frame["id"], "prediction": model.predict(frame[features])})
out.to_parquet(sys.argv[4], index=False)
'''


def make_input(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    from conveyor.sources.bundled import _wdbc_name

    bunch = load_breast_cancer()
    data = bunch.data
    rng = np.random.default_rng(0)
    picked = data[rng.integers(0, len(data), rows)] * rng.normal(1.0, 0.05, (rows, 30))
    frame = pd.DataFrame(picked, columns=[_wdbc_name(n) for n in bunch.feature_names])
    frame.insert(0, "id", np.arange(rows, dtype="int64"))
    frame.to_parquet(path, index=False, row_group_size=100_000)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one process and the children it waited for."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    if sys.argv[1:2] == ["--make-input"]:
        make_input(Path(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="scratch folder to keep (default: a temp one)")
    args = parser.parse_args()
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="conveyor-bench-score-"))
    scratch.mkdir(parents=True, exist_ok=True)
    home = scratch / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    env.update(CONVEYOR_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true")
    if not (home / "mlflow.db").exists():
        subprocess.run([str(BIN / "conveyor"), "run", str(SPEC), "--profile", "sklearn",
                        "--quiet"], env=env, check=True, stdout=subprocess.DEVNULL)
    source = scratch / f"input-{args.rows}.parquet"
    if not source.exists():  # in a child: see the module's docstring on ru_maxrss
        subprocess.run([sys.executable, __file__, "--make-input", str(source),
                        str(args.rows)], check=True)
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    out = scratch / "out"
    export = str(next((home / "exports" / "breast_cancer").glob("*/model")))
    latest = str(home / "exports" / "breast_cancer" / "latest")

    def conveyor(model: str, *more: str) -> list[str]:
        return [str(BIN / "conveyor"), "score", model, "--input", str(source), "--quiet", *more]

    contenders = {
        "conveyor local, registry": conveyor(MODEL, "--chunk-rows", "100000"),
        "conveyor local, export": conveyor(latest, "--chunk-rows", "100000"),
        "conveyor local, export, 25k": conveyor(latest, "--chunk-rows", "25000"),
        "conveyor local, export, 1M": conveyor(latest, "--chunk-rows", "1000000"),
        "pyfunc script, registry": [sys.executable, "-c", PYFUNC, tracking, MODEL, str(source)],
        "pyfunc script, export": [sys.executable, "-c", PYFUNC, tracking, export, str(source)],
        "conveyor dask, export": conveyor(latest, "--engine", "dask", "--workers", "2"),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    peaks: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(args.rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            if out.exists():
                shutil.rmtree(out) if out.is_dir() else out.unlink()
            cmd = contenders[name]
            cmd = [*cmd, str(out)] if "pyfunc" in name else [*cmd, "--output", str(out)]
            seconds, peak = timed(cmd, env)
            times[name].append(seconds)
            peaks[name].append(peak)
            print(f"round {round_ + 1} {name:<30} {seconds:6.2f}s {peak:7.0f} MiB",
                  flush=True)
    results = {}
    for name in names:
        median = statistics.median(times[name])
        results[name] = {"seconds": times[name], "median_seconds": median,
                         "rows_per_second": args.rows / median,
                         "peak_rss_mib": statistics.median(peaks[name])}
    def ratio(a: str, b: str) -> float:
        return results[a]["median_seconds"] / results[b]["median_seconds"]

    registry = ratio("pyfunc script, registry", "conveyor local, registry")
    folder = ratio("pyfunc script, export", "conveyor local, export")
    dask = ratio("conveyor dask, export", "conveyor local, export")
    print(f"\nconveyor local vs pyfunc, registry URI: {registry:.2f}x rows/s (target >= 1.5)")
    print(f"conveyor local vs pyfunc, export folder: {folder:.2f}x rows/s (target >= 1.5)")
    print(f"dask / local time, export folder: {dask:.2f} (target <= 1.5)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = REPO / "benchmarks" / "results" / f"batch_score-{stamp}.json"
    path.write_text(json.dumps({"rows": args.rows, "rounds": args.rounds,
                                "results": results, "cpus": os.cpu_count(),
                                "load_after": os.getloadavg()[0]}, indent=2))
    print(f"written {path}")
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
