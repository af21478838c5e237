"""The iris lab as two real Airflow 3.3 DAGs: a watched folder trained with dynamic task
mapping, an asset event, and the promotion DAG scheduled on that asset.

Nothing is replaced: Airflow parses the DAGs folder with Conveyor's loader (the lab spec
becomes ``iris_lab_train`` and ``iris_lab_promote``), ``airflow dags test`` runs every task
through the Task SDK, training logs to MLflow (SQLite) and the assertions read Airflow's
metadata DB, the inbox folder and the MLflow registry afterwards.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from airflow_harness import REPO, AirflowHome

pytestmark = pytest.mark.timeout(900)

LAB = REPO / "examples" / "iris_lab"
GOOD = ("random_forest.yaml", "rf_small.json", "svc.json")
BAD = "gb_typo.yaml"
DUPLICATE = "svc_again.json"
ASSET_URI = "conveyor://iris_lab/registered"


@pytest.fixture(scope="module")
def lab_env(airflow_home: AirflowHome, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, object]:
    """A pipelines folder holding a copy of the lab spec; its inbox holds 3 good configs,
    1 bad one and 1 byte-identical duplicate; MLflow and the Store are this module's own."""
    root = tmp_path_factory.mktemp("iris_lab")
    inbox, pipelines, home = root / "inbox", root / "pipelines", root / "conveyor"
    for folder in (inbox, pipelines, home):
        folder.mkdir()
    for name in GOOD:
        shutil.copy(LAB / "configs" / name, inbox / name)
    shutil.copy(LAB / "configs" / "svc.json", inbox / DUPLICATE)
    (inbox / BAD).write_text("classificator: sklearn.ensemble.GradientBoostingClassifier\n"
                             "kwargs: {n_estimators: 10, learning_rage: 0.1}\n")
    spec = yaml.safe_load((LAB / "lab.yaml").read_text())
    spec["watch"]["folder"] = str(inbox)
    spec["watch"]["min_age_seconds"] = 0
    (pipelines / "lab.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    env = {"CONVEYOR_PIPELINES": str(pipelines), "CONVEYOR_HOME": str(home),
           "MLFLOW_TRACKING_URI": tracking,
           # An empty inbox skips the run after 3 s instead of 5 minutes.
           "CONVEYOR_LAB_POKE_SECONDS": "1", "CONVEYOR_LAB_SENSOR_TIMEOUT": "3"}
    airflow_home.reserialize(extra_env=env)
    return {"env": env, "inbox": inbox, "tracking": tracking}


def test_lab_spec_becomes_two_dags_without_import_errors(
    airflow_home: AirflowHome, lab_env: dict[str, object]
) -> None:
    assert airflow_home.import_errors() == {}
    assert {"iris_lab_train", "iris_lab_promote"} <= airflow_home.dag_ids()


def test_train_then_promote(airflow_home: AirflowHome, lab_env: dict[str, object]) -> None:
    env = lab_env["env"]
    inbox = lab_env["inbox"]
    assert isinstance(env, dict) and isinstance(inbox, Path)

    run = airflow_home.dags_test("iris_lab_train", extra_env=env)
    assert run.run_id, run.tail()
    mapped = airflow_home.query(
        "SELECT map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ? "
        "AND task_id = 'train' ORDER BY map_index", "iris_lab_train", run.run_id)
    states = sorted(str(row["state"]) for row in mapped)
    assert states == ["failed", "success", "success", "success"], run.tail()
    assert run.states["wait_for_files"] == "success", run.tail()
    assert run.states["claim"] == "success", run.tail()
    assert run.states["registered"] == "success", run.tail()
    failed = [r for r in mapped if r["state"] == "failed"]
    tries = airflow_home.query(
        "SELECT try_number FROM task_instance WHERE dag_id = ? AND run_id = ? "
        "AND task_id = 'train' AND map_index = ?", "iris_lab_train", run.run_id,
        failed[0]["map_index"])
    assert tries[0]["try_number"] == 1, "bad input must not be retried"

    # The bad file is in rejected/ with its error report; good files and the duplicate stay.
    assert not (inbox / BAD).exists()
    assert (inbox / "rejected" / BAD).is_file()
    report = json.loads((inbox / "rejected" / f"{BAD}.error.json").read_text())
    assert "learning_rage" in report["error"] and "learning_rate" in report["error"]

    registered = airflow_home.xcom("iris_lab_train", run.run_id, "registered")
    assert isinstance(registered, dict) and len(registered["versions"]) == 3

    events = airflow_home.query(
        "SELECT e.id FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.uri = ?",
        ASSET_URI)
    assert len(events) == 1

    import mlflow
    from mlflow import MlflowClient

    from conveyor.tracking import mlflow_scope

    uri = str(lab_env["tracking"])
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # nothing process-wide
    versions = client.search_model_versions("name = 'iris_classifier'")
    assert len(versions) == 3

    promote = airflow_home.dags_test("iris_lab_promote", extra_env=env)
    assert promote.states == {"promote": "success"}, promote.tail()
    decision = airflow_home.xcom("iris_lab_promote", str(promote.run_id), "promote")
    assert isinstance(decision, dict) and decision["action"] == "promoted", decision
    production = client.get_model_version_by_alias("iris_classifier", "production")
    assert str(production.version) == decision["chosen"]
    scores = decision["scores"]
    assert len(scores) == 3 and scores[decision["chosen"]] == max(scores.values()), decision

    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.data.rename(columns=lambda c: c.removesuffix(" (cm)").replace(" ", "_"))
    with mlflow_scope(uri):  # a models:/ URI is read through MLflow's global registry
        model = mlflow.pyfunc.load_model("models:/iris_classifier@production")
    rows = frame.iloc[::10]  # every class
    predictions = [str(p) for p in model.predict(rows)]
    truth = [str(t) for t in iris.target.iloc[::10]]
    names = [str(iris.target_names[t]) for t in iris.target.iloc[::10]]
    assert predictions in (truth, names) or sum(
        p in (t, n) for p, t, n in zip(predictions, truth, names, strict=True)) >= 13, predictions
    print("timings:", {k: round(v, 1) for k, v in airflow_home.timings.items()},
          "train run", round(run.seconds, 1), "promote run", round(promote.seconds, 1))


def test_nothing_new_skips_the_run_and_emits_no_asset_event(
    airflow_home: AirflowHome, lab_env: dict[str, object]
) -> None:
    """After the first run every file has an outcome (the duplicate included): nothing pends."""
    env = lab_env["env"]
    assert isinstance(env, dict)
    before = airflow_home.query("SELECT COUNT(*) AS n FROM asset_event")[0]["n"]
    run = airflow_home.dags_test("iris_lab_train", extra_env=env)
    assert run.run_id, run.tail()
    assert run.states["wait_for_files"] == "skipped", run.tail()
    assert run.states["registered"] in ("skipped", None), run.tail()
    assert airflow_home.query("SELECT COUNT(*) AS n FROM asset_event")[0]["n"] == before
    print("empty-inbox run", round(run.seconds, 1))


def test_an_unreadable_inbox_fails_the_run_instead_of_skipping_it(
    airflow_home: AirflowHome, tmp_path: Path
) -> None:
    """A missing inbox is bad input: ``claim`` fails at once with the sensor's message (the
    sensor cannot fail it itself: ``soft_fail`` turns its failures into skips), and
    ``registered``, the only leaf, fails the DAG run: a skipped leaf would show a run that
    read nothing as a green one."""
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    spec = yaml.safe_load((LAB / "lab.yaml").read_text())
    spec["name"] = "blind_lab"
    spec["watch"]["folder"] = str(tmp_path / "no-such-inbox")
    (pipelines / "lab.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {"CONVEYOR_PIPELINES": str(pipelines), "CONVEYOR_HOME": str(tmp_path / "conveyor"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'conveyor' / 'mlflow.db'}",
           "CONVEYOR_LAB_POKE_SECONDS": "1", "CONVEYOR_LAB_SENSOR_TIMEOUT": "3"}
    airflow_home.reserialize(extra_env=env)

    run = airflow_home.dags_test("blind_lab_train", extra_env=env)

    assert run.run_id, run.tail()
    assert run.states == {"wait_for_files": "success", "claim": "failed",
                          "train": "upstream_failed", "registered": "failed"}, run.tail()
    assert run.tasks["claim"]["try_number"] == 1, "bad input must not be retried"
    state = airflow_home.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?",
                               "blind_lab_train", run.run_id)[0]["state"]
    assert state == "failed"
    assert "the inbox was not read: claim failed" in run.output
    assert "no-such-inbox does not exist" in run.output
