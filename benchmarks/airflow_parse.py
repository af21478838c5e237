"""Parse time of the Conveyor DAGs-folder loader: 20 specs, measured by ``airflow dags report``.

A fresh Airflow home on SQLite whose DAGs folder holds Conveyor's two loader files, and a
pipelines folder with 20 copies of the breast-cancer spec (names ``p00``..``p19``). Each
repeat is one ``airflow dags report -o json`` in a new process (a dag-processor parses every
file in a fresh process too); the figures are Airflow's own per-file durations, and the
median over repeats.

    .venv/bin/python benchmarks/airflow_parse.py --repeat 5

Target (issue 3): the loader parses 20 specs in < 1 s.
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPEC = REPO / "examples" / "breast_cancer" / "pipeline.yaml"
DAGS = REPO / "src" / "conveyor" / "airflow" / "dags"


def _seconds(duration: object) -> float:
    """``dags report`` durations are timedelta strings ('0:00:00.143213') or seconds."""
    if isinstance(duration, (int, float)):
        return float(duration)
    hours, minutes, seconds = str(duration).split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--specs", type=int, default=20)
    args = parser.parse_args()
    wdbc = REPO.parent / "shared" / "data" / "wdbc" / "wdbc.data"
    text = SPEC.read_text().replace("${WDBC_PATH:-../../../shared/data/wdbc/wdbc.data}",
                                    str(wdbc))
    with tempfile.TemporaryDirectory(prefix="conveyor-parse-") as tmp:
        home = Path(tmp)
        (home / "dags").mkdir()
        for loader in DAGS.glob("*.py"):
            shutil.copy(loader, home / "dags" / loader.name)
        pipelines = home / "pipelines"
        pipelines.mkdir()
        for index in range(args.specs):
            (pipelines / f"p{index:02d}.yaml").write_text(
                text.replace("name: breast_cancer", f"name: p{index:02d}", 1))
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("AIRFLOW", "CONVEYOR_", "MLFLOW_"))}
        env = {**base, "AIRFLOW_HOME": str(home),
               "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "CONVEYOR_PIPELINES": str(pipelines),
               "CONVEYOR_HOME": str(home / "conveyor")}
        airflow = str(BIN / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, cwd=home, check=True,
                       capture_output=True)
        runs: dict[str, list[float]] = {}
        counts: dict[str, tuple[int, int]] = {}
        for _ in range(args.repeat):
            done = subprocess.run([airflow, "dags", "report", "-o", "json"], env=env, cwd=home,
                                  capture_output=True, text=True, check=True)
            table = next(line for line in done.stdout.splitlines() if line.startswith("[{"))
            for row in json.loads(table):
                name = Path(row["file"]).name
                runs.setdefault(name, []).append(_seconds(row["duration"]))
                counts[name] = (int(row["dag_num"]), int(row["task_num"]))
    report = {name: {"runs_s": [round(s, 3) for s in seconds],
                     "median_s": round(statistics.median(seconds), 3),
                     "dags": counts[name][0], "tasks": counts[name][1]}
              for name, seconds in sorted(runs.items())}
    total = sum(r["median_s"] for r in report.values())
    print(json.dumps({"specs": args.specs, "files": report,
                      "total_median_s": round(total, 3), "target_s": 1.0}, indent=2))


if __name__ == "__main__":
    main()
