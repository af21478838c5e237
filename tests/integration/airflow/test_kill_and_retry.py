"""A task process killed with SIGKILL mid-step: Airflow retries it, the run completes.

Real ``airflow standalone`` (api-server, scheduler with the LocalExecutor, dag-processor,
triggerer) on 127.0.0.1 and SQLite. The test triggers the breast-cancer DAG, waits until
the ``train`` task's own process is running, kills that process with SIGKILL, and checks
that Airflow retried the task and that the DAG run finished with one registered model
version and a complete manifest. It then clears ``register`` (and what follows) and checks
that re-running it registers no second version.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from airflow_harness import AirflowHome, Standalone

from conveyor.airflow.run_ids import conveyor_run_id

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

# The session's ``standalone`` (conftest.py) serves the breast-cancer DAG; other modules
# start runs of it too: this one reads back only its own run (RUN_ID).
DAG_ID = "breast_cancer"
RUN_ID = "kill-and-retry"
# A logical date lets ``airflow tasks clear`` (which selects runs by date) find the run.
LOGICAL_DATE = "2026-01-01T00:00:00+00:00"
STEPS = ["ingest", "validate", "split", "train", "evaluate", "gate", "register", "export"]


def _running_pid(home: AirflowHome, task_id: str, timeout: float = 300) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = home.query(
            "SELECT state, pid FROM task_instance WHERE dag_id = ? AND run_id = ? "
            "AND task_id = ?", DAG_ID, RUN_ID, task_id)
        if rows and rows[0]["state"] == "running" and rows[0]["pid"]:
            return int(rows[0]["pid"])
        if rows and rows[0]["state"] in ("success", "failed"):
            pytest.fail(f"{task_id} ended ({rows[0]['state']}) before it could be killed")
        time.sleep(0.05)
    pytest.fail(f"{task_id} never ran")


def _versions_of_the_runs_model(home: AirflowHome, mlflow_run: object) -> list[object]:
    """The registered versions holding the model this MLflow run trained (ADR 0016: one).

    Found by the model's digest, not by which run registered it: on the session's shared
    standalone another module may have registered the very same model (same data and seed,
    same digest) first, and then this run's ``register`` finds that version instead.
    """
    from mlflow import MlflowClient

    uri = home.env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    number = mlflow_run.data.tags["conveyor.registered_version"]  # type: ignore[attr-defined]
    digest = client.get_model_version("breast_cancer_classifier", number).tags[
        "conveyor.model_sha256"]
    return [v for v in client.search_model_versions("name = 'breast_cancer_classifier'")
            if v.tags.get("conveyor.model_sha256") == digest]


def test_sigkilled_task_is_retried_and_the_run_completes_once(standalone: Standalone) -> None:
    home = standalone.home
    home.run("dags", "trigger", DAG_ID, "--run-id", RUN_ID, "--logical-date", LOGICAL_DATE)

    pid = _running_pid(home, "train")
    time.sleep(0.3)  # inside the step: the task process has started training
    os.kill(pid, signal.SIGKILL)

    assert standalone.wait_for_run(DAG_ID, RUN_ID) == "success", standalone.log_tail()
    tasks = home.task_instances(DAG_ID, RUN_ID)
    assert {t: row["state"] for t, row in tasks.items()} == dict.fromkeys(STEPS, "success")
    assert tasks["train"]["try_number"] == 2  # the killed try, then the retry
    assert tasks["ingest"]["try_number"] == 1

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=home.env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name(DAG_ID)
    run_id = conveyor_run_id(DAG_ID, RUN_ID)
    (mlflow_run,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`conveyor.run_id` = '{run_id}'")
    assert mlflow_run.info.status == "FINISHED"
    assert len(_versions_of_the_runs_model(home, mlflow_run)) == 1

    manifest_path = Path(urlparse(mlflow_run.data.tags["conveyor.manifest"]).path)
    manifest = json.loads(manifest_path.read_text())
    assert set(manifest["steps"]) == set(STEPS)
    assert manifest["status"] == "ok"



def test_clearing_register_reruns_it_without_a_second_version(standalone: Standalone) -> None:
    """Runs after the test above, on its DAG run: every step may run twice."""
    home = standalone.home
    if not home.task_instances(DAG_ID, RUN_ID):
        pytest.skip("needs the DAG run of the kill-and-retry test")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=home.env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name(DAG_ID)
    run_id = conveyor_run_id(DAG_ID, RUN_ID)
    (mlflow_run,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`conveyor.run_id` = '{run_id}'")

    # Through the REST API, as the UI's "Clear" does (the CLI's ``tasks clear`` selects runs
    # by date range and left this run alone here).
    cleared = standalone.api("POST", f"/api/v2/dags/{DAG_ID}/clearTaskInstances", {
        "dry_run": False, "dag_run_id": RUN_ID, "task_ids": ["register"],
        "include_downstream": True, "only_failed": False})
    assert {ti["task_id"] for ti in cleared["task_instances"]} == {"register", "export"}
    deadline = time.monotonic() + 240
    tasks = home.task_instances(DAG_ID, RUN_ID)
    while time.monotonic() < deadline:
        tasks = home.task_instances(DAG_ID, RUN_ID)
        if tasks["register"]["try_number"] == 2 and tasks["export"]["state"] == "success":
            break
        time.sleep(1)
    assert tasks["register"]["try_number"] == 2, tasks
    assert standalone.wait_for_run(DAG_ID, RUN_ID) == "success"
    assert {row["state"] for row in home.task_instances(DAG_ID, RUN_ID).values()} == {
        "success"}
    assert len(_versions_of_the_runs_model(home, mlflow_run)) == 1
