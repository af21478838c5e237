"""Peak memory of ingesting a large CSV: ``conveyor run SPEC --until STEP`` in a subprocess.

The question (issue 12): how much memory does reading a 56 MB, 200,000-row CSV into the
Store cost? The answer is the peak resident set of the whole ``conveyor`` process
(``ru_maxrss`` of the child), imports included, with a fresh home each time.

    .venv/bin/python benchmarks/ingest_memory.py                       # this checkout
    .venv/bin/python benchmarks/ingest_memory.py --src ../main/src     # another checkout's code
    .venv/bin/python benchmarks/ingest_memory.py --until validate      # ingest and validate
    .venv/bin/python benchmarks/ingest_memory.py --steps               # each step on its own

``--steps`` runs ``--until ingest``, then ``--step validate`` and ``--step split`` of the same
run, each in its own process, and reports each process's peak (``ru_maxrss`` from
``os.wait4``), its CPU seconds (user + sys) and wall seconds (ADR 0051).

``--src`` puts that folder first on ``PYTHONPATH`` so the same interpreter and libraries run
another version of the code (the "before" figure). Writes
``benchmarks/results/ingest_memory-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FEATURES = 30


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` rows: an id, a label M/B and 30 numbers of ~9 characters (~280 B a row)."""
    rng = np.random.default_rng(seed)
    with path.open("w") as out:
        out.write(",".join(["id", "diagnosis", *(f"f{i}" for i in range(FEATURES))]) + "\n")
        step = 20_000
        for start in range(0, rows, step):
            n = min(step, rows - start)
            values = rng.normal(100, 30, size=(n, FEATURES))
            labels = np.where(values[:, 0] + rng.normal(0, 30, n) > 100, "M", "B")
            for i in range(n):
                out.write(f"{start + i},{labels[i]},"
                          + ",".join(f"{v:.5f}" for v in values[i]) + "\n")


SPEC = """\
name: bigcsv
data: {{source: file, uri: {uri}}}
schema: {{target: diagnosis, positive_label: M, id: id}}
model: {{estimator: logistic_regression, params: {{max_iter: 200}}}}
gate: {{}}
"""


def measure(spec: Path, home: Path, until: str, src: str | None) -> dict[str, float]:
    env = dict(os.environ, CONVEYOR_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true")
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve())
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "run", str(spec), "--until", until, "-q"],
        env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"conveyor run failed ({done.returncode}): {done.stderr[-2000:]}")
    if peak_kib <= before:  # ru_maxrss of children is the largest child so far
        print("warning: this child's peak is not above an earlier child's", file=sys.stderr)
    return {"peak_rss_mb": peak_kib / 1024, "seconds": seconds}


def run_step(spec: Path, home: Path, args: list[str], src: str | None,
             chunk_rows: int | None) -> dict[str, float]:
    """One ``conveyor run`` process: its peak RSS, CPU and wall seconds (``os.wait4``)."""
    env = dict(os.environ, CONVEYOR_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true")
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve())
    overrides = [f"data.chunk_rows={chunk_rows}"] if chunk_rows else []
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "run", str(spec), *overrides, *args, "-q"],
        env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    error = child.stderr.read().decode() if child.stderr else ""
    if status != 0:
        raise SystemExit(f"conveyor run {' '.join(args)} failed ({status}): {error[-2000:]}")
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "seconds": round(seconds, 2)}


def measure_steps(spec: Path, home: Path, src: str | None,
                  chunk_rows: int | None) -> dict[str, dict[str, float]]:
    run_id = "bench-steps"
    out = {"ingest": run_step(spec, home, ["--run-id", run_id, "--until", "ingest"], src,
                              chunk_rows)}
    for step in ("validate", "split"):
        out[step] = run_step(spec, home, ["--run-id", run_id, "--step", step], src, chunk_rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--until", default="ingest")
    parser.add_argument("--src", help="a src/ folder whose conveyor to run instead")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--steps", action="store_true",
                        help="ingest, validate and split each in its own process")
    parser.add_argument("--chunk-rows", type=int, help="data.chunk_rows for the run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as scratch:
        folder = Path(scratch)
        data = folder / "big.csv"
        make_csv(data, args.rows)
        spec = folder / "pipeline.yaml"
        spec.write_text(SPEC.format(uri=data))
        if args.steps:
            result = {"steps": measure_steps(spec, folder / "home", args.src, args.chunk_rows),
                      "load_average": list(os.getloadavg())}
        else:
            result = measure(spec, folder / "home", args.until, args.src)
        size_mb = data.stat().st_size / 1e6
    record = {"rows": args.rows, "csv_mb": round(size_mb, 1),
              "until": "ingest, validate, split apart" if args.steps else args.until,
              "chunk_rows": args.chunk_rows,
              "code": args.src or "this checkout", **result,
              "python": platform.python_version(), "machine": platform.machine(),
              "when": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())}
    print(json.dumps(record, indent=2))
    if not args.no_save:
        out = ROOT / "benchmarks" / "results" / f"ingest_memory-{record['when']}.json"
        out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
