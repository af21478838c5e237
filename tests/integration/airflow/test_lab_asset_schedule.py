"""The iris lab under a live scheduler: a train run's asset event starts the promotion DAG.

``test_iris_lab_dags.py`` runs each DAG with ``airflow dags test`` and checks that the asset
event is recorded; here nothing runs a DAG by hand. Real ``airflow standalone`` (api-server,
scheduler with the LocalExecutor, dag-processor, triggerer) on 127.0.0.1 and SQLite: the
scheduler starts ``iris_lab_train`` on its schedule (the DAG is unpaused at creation, and
with ``catchup=False`` Airflow runs the latest interval at once), the run trains the inbox,
and the scheduler itself must create an ``asset_triggered`` run of ``iris_lab_promote`` from
the ``registered`` task's event, which moves ``production`` in MLflow.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
import yaml
from airflow_harness import REPO, Standalone, make_home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

LAB = REPO / "examples" / "iris_lab"
CONFIGS = ("rf_small.json", "svc.json")  # one classifier config each
TRAIN, PROMOTE = "iris_lab_train", "iris_lab_promote"


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    root = tmp_path_factory.mktemp("lab_standalone")
    inbox, pipelines = root / "inbox", root / "pipelines"
    inbox.mkdir()
    pipelines.mkdir()
    for name in CONFIGS:
        shutil.copy(LAB / "configs" / name, inbox / name)
    spec = yaml.safe_load((LAB / "lab.yaml").read_text())
    spec["watch"].update(folder=str(inbox), min_age_seconds=0)
    spec["schedule"] = "0 0 1 1 *"  # yearly: one run for the latest interval, then none
    (pipelines / "lab.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    home = make_home(root, pipelines=pipelines, extra_env={
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # asset runs need it unpaused
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "CONVEYOR_LAB_POKE_SECONDS": "1", "CONVEYOR_LAB_SENSOR_TIMEOUT": "5",
    })
    server = Standalone(home=home, port=int(home.env["AIRFLOW__API__PORT"]))
    try:
        server.start()
        server.wait_for_dag(TRAIN)
        server.wait_for_dag(PROMOTE)
        yield server
    finally:
        server.stop()


def _asset_triggered_run(standalone: Standalone, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = standalone.home.query(
            "SELECT run_id FROM dag_run WHERE dag_id = ? AND run_type = 'asset_triggered'",
            PROMOTE)
        if rows:
            return str(rows[0]["run_id"])
        time.sleep(1)
    pytest.fail(f"the scheduler created no asset-triggered {PROMOTE} run in {timeout:.0f}s:\n"
                + standalone.log_tail())


def _first_train_run(standalone: Standalone, timeout: float = 120) -> str:
    """The scheduler's own run of the train DAG; a manual trigger if none comes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = standalone.home.query(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id LIMIT 1", TRAIN)
        if rows:
            return str(rows[0]["run_id"])
        time.sleep(1)
    standalone.home.run("dags", "trigger", TRAIN, "--run-id", "manual-fallback")
    return "manual-fallback"


def test_a_train_run_triggers_the_promotion_through_its_asset(standalone: Standalone) -> None:
    home = standalone.home
    train_run = _first_train_run(standalone)
    assert standalone.wait_for_run(TRAIN, train_run) == "success", standalone.log_tail()
    tasks = home.query(
        "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
        TRAIN, train_run)
    assert sorted((row["task_id"], row["state"]) for row in tasks) == sorted(
        [("wait_for_files", "success"), ("claim", "success"), ("registered", "success")]
        + [("train", "success")] * len(CONFIGS)), tasks

    promote_run = _asset_triggered_run(standalone)
    assert standalone.wait_for_run(PROMOTE, promote_run) == "success", standalone.log_tail()
    # The run was created by the event the train run's ``registered`` task emitted.
    consumed = home.query(
        "SELECT e.source_dag_id, e.source_run_id FROM asset_event e "
        "JOIN dagrun_asset_event d ON d.event_id = e.id "
        "JOIN dag_run r ON r.id = d.dag_run_id WHERE r.dag_id = ? AND r.run_id = ?",
        PROMOTE, promote_run)
    assert [(row["source_dag_id"], row["source_run_id"]) for row in consumed] == [
        (TRAIN, train_run)]

    from mlflow import MlflowClient

    uri = home.env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name = 'iris_classifier'")
    assert len(versions) == len(CONFIGS)
    production = client.get_model_version_by_alias("iris_classifier", "production")
    decision = home.xcom(PROMOTE, promote_run, "promote")
    assert isinstance(decision, dict) and decision["action"] == "promoted", decision
    assert str(production.version) == decision["chosen"]
