"""The ``<name>_monitor`` DAG in a real Airflow 3.3 (``airflow dags test``): it runs the same
check as ``conveyor monitor`` on the samples in the Store and returns the verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from airflow_harness import REPO, AirflowHome

from conveyor.serving import layout

pytestmark = pytest.mark.timeout(900)

SPEC = REPO / "examples" / "breast_cancer" / "pipeline.yaml"
NAME, MODEL = "bc_watched", "bc_watched_model"


def test_the_monitor_dag_flags_shifted_samples(airflow_home: AirflowHome, wdbc_path: Path,
                                               tmp_path: Path) -> None:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    data = yaml.safe_load(SPEC.read_text())
    data.update(name=NAME, registry={"name": MODEL}, export={"uri": str(tmp_path / "exports")},
                monitor={"model": f"models:/{MODEL}/1", "window": "3h", "schedule": None})
    data["data"]["uri"] = str(wdbc_path)
    spec = pipelines / "watched.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    home = Path(airflow_home.env["CONVEYOR_HOME"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    done = subprocess.run([sys.executable, "-m", "conveyor.cli", "run", str(spec)],
                          env={**env, "CONVEYOR_HOME": str(home)}, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    frame = pd.read_csv(wdbc_path, header=None, names=data["data"]["columns"])
    samples = frame.drop(columns=["id", "diagnosis"])
    samples["area_mean"] *= 2
    now = datetime.now(UTC)
    samples[layout.PREDICTION] = "B"
    samples[layout.TIME] = pd.Timestamp(now)
    folder = Path(layout.samples_uri((home / "artifacts").as_uri(), MODEL).removeprefix(
        "file://")) / layout.sample_partition(now)
    folder.mkdir(parents=True)
    samples.to_parquet(folder / "part-0.parquet", index=False)

    extra = {"CONVEYOR_PIPELINES": str(pipelines)}
    airflow_home.reserialize(extra_env=extra)
    assert {NAME, f"{NAME}_monitor"} <= airflow_home.dag_ids()
    result = airflow_home.dags_test(f"{NAME}_monitor", extra_env=extra)
    assert result.returncode == 0, result.tail()
    assert result.states == {"check": "success"}, result.tail()
    verdict = airflow_home.xcom(f"{NAME}_monitor", result.run_id, "check")
    assert verdict["drifted"] is True and "area_mean" in verdict["features_drifted"]
    latest = json.loads((home / "artifacts" / "_monitoring" / MODEL / "latest.json").read_text())
    assert latest["report"] == verdict["report"]
