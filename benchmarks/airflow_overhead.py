"""Conveyor's overhead per Airflow task, above Airflow's own floor.

Three wall times on the same machine, each in a fresh Airflow home on SQLite:

1. ``airflow dags test breast_cancer``: the generated DAG, 8 tasks, real steps;
2. ``airflow dags test trivial_8``: a DAG with the same 8 task ids and dependencies whose
   tasks return a small dict (Airflow's floor for this graph);
3. ``conveyor run`` of the same spec: the steps' own work, in one process.

overhead per task = (1 - 2 - 3) / 8: what running each step as its own Airflow task costs
beyond the step's work and Airflow's own per-task cost (spec loading, the executor's imports
in each task process, attaching to the MLflow run, reading upstream records).

    .venv/bin/python benchmarks/airflow_overhead.py --repeat 3
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
DAGS = REPO / "src" / "conveyor" / "airflow" / "dags"
TRIVIAL = '''
from airflow.sdk import DAG, task
GRAPH = {graph!r}
with DAG("trivial_8", schedule=None) as dag:
    made = {{}}
    for name, upstream in GRAPH:
        made[name] = task(task_id=name)(lambda: {{"uri": "file:///x", "sha256": "0" * 64}})()
        for before in upstream:
            made[before] >> made[name]
'''


def _env(home: Path, pipelines: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "CONVEYOR_", "MLFLOW_"))}
    return {**base, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "CONVEYOR_PIPELINES": str(pipelines),
            "CONVEYOR_HOME": str(home / "conveyor"),
            "CONVEYOR_EXPORT_URI": (home / "exports").as_uri()}


def _timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from conveyor.steps import pipeline_steps

    graph = [(s.name, tuple(s.upstream)) for s in pipeline_steps()]
    times: dict[str, list[float]] = {"conveyor_dag": [], "trivial_dag": [], "conveyor_run": []}
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        home = Path(tmp)
        (home / "dags").mkdir()
        for loader in DAGS.glob("*.py"):
            shutil.copy(loader, home / "dags" / loader.name)
        (home / "dags" / "trivial_8.py").write_text(TRIVIAL.format(graph=graph))
        pipelines = home / "pipelines"
        pipelines.mkdir()
        shutil.copy(SPEC, pipelines / "breast_cancer.yaml")
        env = _env(home, pipelines)
        env["WDBC_PATH"] = str(REPO.parent / "shared" / "data" / "wdbc" / "wdbc.data")
        airflow = str(BIN / "airflow")
        _timed([airflow, "db", "migrate"], env, home)
        _timed([airflow, "dags", "reserialize"], env, home)
        for index in range(args.repeat):
            # A fresh CONVEYOR_HOME per measurement: no step is served from the cache.
            def fresh(kind: str, index: int = index) -> dict[str, str]:
                return {**env, "CONVEYOR_HOME": str(home / f"conveyor-{kind}-{index}")}

            times["conveyor_dag"].append(
                _timed([airflow, "dags", "test", "breast_cancer"], fresh("dag"), home))
            times["trivial_dag"].append(_timed([airflow, "dags", "test", "trivial_8"], env, home))
            times["conveyor_run"].append(_timed(
                [str(BIN / "conveyor"), "run", str(pipelines / "breast_cancer.yaml")],
                fresh("run"), home))
    median = {k: statistics.median(v) for k, v in times.items()}
    extra = median["conveyor_dag"] - median["trivial_dag"] - median["conveyor_run"]
    overhead = extra / len(graph)
    print(json.dumps({"runs": times, "median_s": median, "tasks": len(graph),
                      "overhead_per_task_s": round(overhead, 3)}, indent=2))


if __name__ == "__main__":
    main()
