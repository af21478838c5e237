"""The breast-cancer spec as a real Airflow 3.3 DAG run (``airflow dags test``, SQLite).

No part is replaced: Airflow parses the DAGs folder with Conveyor's loader, runs every task
through the Task SDK, the steps write to the Store (a local folder) and track in MLflow
(SQLite). The assertions read Airflow's metadata DB, MLflow and the Store afterwards.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from airflow_harness import ERRORS_FILE, REPO, AirflowHome

from conveyor.airflow.run_ids import conveyor_run_id
from conveyor.store import ArtifactRef, Store

pytestmark = pytest.mark.timeout(900)

EXAMPLES = REPO / "examples"
SPEC = EXAMPLES / "breast_cancer" / "pipeline.yaml"
STEPS = ["ingest", "validate", "split", "train", "evaluate", "gate", "register", "export"]


def _example_specs() -> dict[str, Path]:
    """The DAG ids every example spec (not profile overlays) should give, and its file."""
    found = {}
    for path in sorted(EXAMPLES.glob("*/*.yaml")):
        if path.name.count(".") > 1:  # pipeline.<profile>.yaml
            continue
        data = yaml.safe_load(path.read_text())
        if "watch" in data:  # a lab spec: a train DAG and a promote DAG
            found.update({f"{data['name']}_train": path, f"{data['name']}_promote": path})
        elif "collect" in data:  # a collection spec: its <name>_collect DAG (issue 12)
            found[f"{data['name']}_collect"] = path
        else:
            found[data["name"]] = path
    return found


@pytest.fixture(scope="module")
def examples_env(airflow_home: AirflowHome, tmp_path_factory: pytest.TempPathFactory,
                 wdbc_path: Path) -> dict[str, str]:
    """The examples folder as the pipelines folder; exports go to a temporary folder."""
    exports = tmp_path_factory.mktemp("exports")
    env = {"CONVEYOR_PIPELINES": str(EXAMPLES), "WDBC_PATH": str(wdbc_path),
           "CONVEYOR_EXPORT_URI": exports.as_uri()}
    airflow_home.reserialize(extra_env=env)
    return env


def test_every_example_spec_is_a_dag_without_import_errors(
    airflow_home: AirflowHome, examples_env: dict[str, str]
) -> None:
    assert airflow_home.import_errors() == {}
    expected = set(_example_specs())
    assert expected, "no example specs found"
    assert expected <= airflow_home.dag_ids()


def test_breast_cancer_dag_run_succeeds_with_one_mlflow_run_and_a_manifest(
    airflow_home: AirflowHome, examples_env: dict[str, str], tmp_path: Path
) -> None:
    result = airflow_home.dags_test(
        "breast_cancer", conf={"model.params.C": 0.5}, extra_env=examples_env)

    assert result.returncode == 0, result.tail()
    assert result.run_id is not None
    assert result.states == dict.fromkeys(STEPS, "success"), result.tail()
    assert all(row["try_number"] == 1 for row in result.tasks.values())

    # XCom holds the step record: references and hashes, not data.
    for step in STEPS:
        record = airflow_home.xcom("breast_cancer", result.run_id, step)
        assert record["step"] == step
        assert len(json.dumps(record)) < 16_384
        for ref in record["outputs"].values():
            assert set(ref) >= {"uri", "sha256"}

    # One MLflow run for the whole DAG run, finished, with the trigger's override.
    from mlflow import MlflowClient

    run_id = conveyor_run_id("breast_cancer", result.run_id)
    client = MlflowClient(tracking_uri=airflow_home.env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("breast_cancer")
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.`conveyor.run_id` = '{run_id}'")
    assert len(runs) == 1
    mlflow_run = runs[0]
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.params["model.params.C"] == "0.5"
    assert mlflow_run.data.tags["conveyor.status"] == "ok"
    assert {f"conveyor.step.{s}" for s in STEPS} <= set(mlflow_run.data.tags)
    assert "test_f1" in mlflow_run.data.metrics

    # The manifest was written, lists every artifact, and every hash matches the bytes.
    manifest_uri = mlflow_run.data.tags["conveyor.manifest"]
    manifest_path = Path(urlparse(manifest_uri).path)
    assert manifest_path.is_file()
    manifest = json.loads(manifest_path.read_text())
    assert manifest["run_id"] == run_id
    assert manifest["mlflow_run_id"] == mlflow_run.info.run_id
    assert set(manifest["steps"]) == set(STEPS)
    assert manifest["artifacts"]
    store = Store(manifest_uri.rsplit("/", 3)[0])
    for name, ref in manifest["artifacts"].items():
        path = Path(urlparse(ref["uri"]).path)
        if path.is_dir():  # a saved model: the Store verifies every file and the folder hash
            store.get_dir(ArtifactRef.from_dict(ref), tmp_path / name)
        else:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == ref["sha256"], name
    export = airflow_home.xcom("breast_cancer", result.run_id, "export")
    assert export["manifest"]["uri"] == manifest_uri


def test_broken_spec_is_an_import_error_naming_file_and_key_and_others_still_load(
    airflow_home: AirflowHome, tmp_path: Path, wdbc_path: Path
) -> None:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    good = pipelines / "good.yaml"
    text = SPEC.read_text().replace("name: breast_cancer", "name: bc_good", 1)
    good.write_text(text.replace("${WDBC_PATH:-../../../shared/data/wdbc/wdbc.data}",
                                 str(wdbc_path)))
    broken = pipelines / "broken.yaml"
    broken.write_text(good.read_text().replace("name: bc_good", "name: bc_broken", 1)
                      .replace("  params: {C:", "  parms: {C:", 1))
    shutil.copy(SPEC.with_name("pipeline.sklearn.yaml"), pipelines / "good.sklearn.yaml")

    airflow_home.reserialize(extra_env={"CONVEYOR_PIPELINES": str(pipelines)})

    errors = airflow_home.import_errors()
    # The error sits on the errors file, which holds no DAG, so it makes no DAG stale.
    assert list(errors) == [ERRORS_FILE.name]
    message = errors[ERRORS_FILE.name]
    assert str(broken) in message
    assert "model.parms" in message
    assert "did you mean 'params'" in message
    assert "good.yaml" not in message
    dags = airflow_home.dag_ids()
    assert "bc_good" in dags
    assert "bc_broken" not in dags


def test_bad_data_fails_the_task_at_once_and_marks_the_mlflow_run_failed(
    airflow_home: AirflowHome, examples_env: dict[str, str], tmp_path: Path, wdbc_path: Path
) -> None:
    """Single-class data is bad input: no retry (despite retries=3), a clear message."""
    benign = tmp_path / "benign.data"
    benign.write_text("".join(line for line in wdbc_path.read_text().splitlines(True)
                              if ",B," in line))
    result = airflow_home.dags_test(
        "breast_cancer", extra_env={**examples_env, "WDBC_PATH": str(benign)})

    assert result.returncode != 0
    assert result.states["ingest"] == "success"
    assert result.states["validate"] == "failed", result.tail()
    assert result.tasks["validate"]["try_number"] == 1  # AirflowFailException: no retry
    assert {result.states[s] for s in STEPS[2:]} == {"upstream_failed"}
    assert "has a single class 'B'" in result.output
    assert "AirflowFailException" in result.output

    from mlflow import MlflowClient

    run_id = conveyor_run_id("breast_cancer", result.run_id)
    client = MlflowClient(tracking_uri=airflow_home.env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("breast_cancer")
    (mlflow_run,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`conveyor.run_id` = '{run_id}'")
    assert mlflow_run.info.status == "FAILED"  # the failure callback ran
    assert mlflow_run.data.tags["conveyor.status"] == "failed"
    assert "single class" in mlflow_run.data.tags["conveyor.error"]


def _registered_versions(tracking_uri: str, name: str) -> list[object]:
    from mlflow import MlflowClient

    return list(MlflowClient(tracking_uri=tracking_uri).search_model_versions(f"name='{name}'"))


def test_gate_rejection_fails_the_gate_task_once_and_finishes_the_run_as_rejected(
    airflow_home: AirflowHome, examples_env: dict[str, str]
) -> None:
    """A rejected model is red at a glance and reads as ``rejected`` everywhere else.

    docs/decisions/0017: the gate task fails without retries, register and export never
    start, the DAG run fails; the manifest and the MLflow run say ``rejected`` as after
    ``conveyor run``, and nothing is registered or exported.
    """
    tracking = airflow_home.env["MLFLOW_TRACKING_URI"]
    exports = Path(urlparse(examples_env["CONVEYOR_EXPORT_URI"]).path)
    exported_before = sorted(exports.rglob("*"))
    versions_before = _registered_versions(tracking, "breast_cancer_classifier")

    result = airflow_home.dags_test(
        "breast_cancer", conf={"model.params.C": 0.0001}, extra_env=examples_env)

    assert result.returncode != 0, result.tail()
    assert result.run_id is not None
    assert result.states == {**dict.fromkeys(STEPS[:5], "success"), "gate": "failed",
                             "register": "upstream_failed", "export": "upstream_failed"}, \
        result.tail()
    assert result.tasks["gate"]["try_number"] == 1  # a rejection is not retried
    (dag_run,) = airflow_home.query(
        "SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", "breast_cancer",
        result.run_id)
    assert dag_run["state"] == "failed"
    assert "GateRejectedError: gate rejected the model: test_" in result.output

    from mlflow import MlflowClient

    run_id = conveyor_run_id("breast_cancer", result.run_id)
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("breast_cancer")
    (mlflow_run,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`conveyor.run_id` = '{run_id}'")
    # As after `conveyor run`: finished, rejected; the failure callback left it alone.
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.tags["conveyor.status"] == "rejected"
    assert mlflow_run.data.tags["conveyor.gate"] == "rejected"
    assert "conveyor.error" not in mlflow_run.data.tags
    assert mlflow_run.data.tags["conveyor.step.register"] == "skipped"
    assert mlflow_run.data.tags["conveyor.step.export"] == "skipped"

    manifest = json.loads(Path(urlparse(mlflow_run.data.tags["conveyor.manifest"]).path)
                          .read_text())
    assert manifest["status"] == "rejected"
    assert set(manifest["steps"]) == set(STEPS)
    assert manifest["steps"]["register"]["status"] == "skipped"
    assert manifest["steps"]["export"]["status"] == "skipped"
    assert "needs >=" in manifest["steps"]["gate"]["info"]["reason"]
    # the gate task rendered the run's report before failing, as under `conveyor run`
    report = Path(urlparse(manifest["artifacts"]["gate/report"]["uri"]).path).read_text()
    assert '<span class="verdict rejected">REJECTED</span>' in report
    assert "gate/report.html" in [a.path for a in client.list_artifacts(
        mlflow_run.info.run_id, "gate")]

    # Nothing was registered or exported.
    versions_after = _registered_versions(tracking, "breast_cancer_classifier")
    assert len(versions_after) == len(versions_before)
    assert sorted(exports.rglob("*")) == exported_before


def test_conveyor_is_listed_as_an_airflow_provider(airflow_home: AirflowHome) -> None:
    from importlib.metadata import entry_points

    if not any(ep.value.startswith("conveyor.") for ep in
               entry_points(group="apache_airflow_provider")):
        pytest.skip("the apache_airflow_provider entry point is not in pyproject.toml yet")
    done = airflow_home.run("providers", "list", "--output", "json")
    providers = {p["package_name"]: p for p in json.loads(done.stdout[done.stdout.index("["):])}
    assert "conveyor-ml" in providers
    done = airflow_home.run("providers", "hooks", "--output", "json")
    hooks = json.loads(done.stdout[done.stdout.index("["):])
    assert any(h.get("connection_type") == "conveyor" for h in hooks), hooks


def test_a_candidate_worse_than_the_champion_fails_the_gate_task(
    airflow_home: AirflowHome, examples_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The champion gate under Airflow (docs/promotion.md, ADR 0042): as after `conveyor run`
    (exit 3), the gate task fails, nothing is registered and production stays."""
    from mlflow import MlflowClient

    import conveyor

    tracking = airflow_home.env["MLFLOW_TRACKING_URI"]
    for name in ("CONVEYOR_HOME", "MLFLOW_TRACKING_URI"):
        monkeypatch.setenv(name, airflow_home.env[name])
    for name, value in examples_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    champion = ["gate.champion.metric=test_f1", "gate.champion.min_delta=0.005"]
    # the champion: this spec's default model, made production by a local run with promote
    first = conveyor.run(SPEC, [*champion, "gate.promote=true"])
    assert first.status == "ok", first.reason
    client = MlflowClient(tracking_uri=tracking)
    production = client.get_registered_model("breast_cancer_classifier").aliases["production"]
    versions_before = len(_registered_versions(tracking, "breast_cancer_classifier"))

    # C=0.02 passes the spec's bounds (accuracy 0.956, F1 0.937) but not the champion (0.951)
    result = airflow_home.dags_test("breast_cancer", extra_env=examples_env, conf={
        "model.params.C": 0.02, "gate.champion.metric": "test_f1",
        "gate.champion.min_delta": 0.005})

    assert result.returncode != 0, result.tail()
    assert result.states == {**dict.fromkeys(STEPS[:5], "success"), "gate": "failed",
                             "register": "upstream_failed", "export": "upstream_failed"}, \
        result.tail()
    assert f"is worse than champion v{production}" in result.output
    run_id = conveyor_run_id("breast_cancer", result.run_id)
    experiment = client.get_experiment_by_name("breast_cancer")
    (mlflow_run,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`conveyor.run_id` = '{run_id}'")
    tags = mlflow_run.data.tags
    assert (tags["conveyor.status"], tags["conveyor.gate"], tags["conveyor.champion_version"],
            tags["conveyor.champion_check"]) == ("rejected", "rejected", str(production),
                                                 "kept")
    assert len(_registered_versions(tracking, "breast_cancer_classifier")) == versions_before
    aliases = client.get_registered_model("breast_cancer_classifier").aliases
    assert aliases["production"] == production
