"""The watcher end to end on real MLflow: files in, versions out, failures set aside."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import drop
from conveyor.errors import BadInputError
from conveyor.lab import Lab, claim_new, pending_files, process_inbox, train_claim
from conveyor.lab.watcher import ledger_for
from conveyor.tracking import Tracker, mlflow_scope

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "iris_lab" / "configs"
GOOD = ("classificator: sklearn.tree.DecisionTreeClassifier\n"
        "kwargs: {max_depth: 3, random_state: 0}\n")


def test_new_files_train_once_and_failures_go_to_rejected(lab: Lab, inbox: Path,
                                                          tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "svc.json", inbox / "svc.json")
    shutil.copy(EXAMPLES / "mlp.yml", inbox / "mlp.yml")
    shutil.copy(EXAMPLES / "linear_models.yaml", inbox / "linear_models.yaml")
    for path in inbox.iterdir():
        drop(inbox, path.name, path.read_bytes())
    drop(inbox, "svc-again.json", (EXAMPLES / "svc.json").read_bytes())  # byte-identical
    drop(inbox, "typo.yaml", "classificator: sklearn.ensemble.GradientBoostingClassifier\n"
                             "kwargs:\n  learning_rage: 0.1\n")
    drop(inbox, "broken.yml", "classificator: [unclosed\n")
    drop(inbox, "fit-fails.yaml", "model: logistic_regression\n"
                                  "params: {solver: liblinear, penalty: elasticnet}\n")
    drop(inbox, ".hidden.yaml", GOOD)
    drop(inbox, "half.yaml", GOOD, age=0)
    secret = tmp_path / "outside.yaml"
    secret.write_text(GOOD)
    (inbox / "link.yaml").symlink_to(secret)

    assert sorted(pending_files(lab)) == ["broken.yml", "fit-fails.yaml", "linear_models.yaml",
                                          "mlp.yml", "svc-again.json", "svc.json", "typo.yaml"]
    report = process_inbox(lab, owner="test")

    # the good files trained, the identical copy once: 1 + 1 + 2 configs = 4 versions
    assert sorted(report.versions, key=int) == ["1", "2", "3", "4"]
    assert {r.file for r in report.trained} == {"svc-again.json", "mlp.yml",
                                                "linear_models.yaml"}
    assert report.batch.known == {"svc.json": "duplicate"}
    assert {s.name: s.reason for s in report.batch.skipped} == {
        ".hidden.yaml": "hidden or temporary file",
        "half.yaml": "modified less than 1s ago (may be half-written)",
        "link.yaml": "symlink",
    }
    # each failure failed alone, with its reason, moved aside with a report
    assert set(report.rejected) == {"typo.yaml", "broken.yml", "fit-fails.yaml"}
    assert "did you mean 'learning_rate'?" in report.rejected["typo.yaml"]
    assert "invalid YAML" in report.rejected["broken.yml"]
    assert "failed to fit" in report.rejected["fit-fails.yaml"]
    for name in ("typo.yaml", "broken.yml", "fit-fails.yaml"):
        assert not (inbox / name).exists()
        assert (inbox / "rejected" / name).exists()
        body = json.loads((inbox / "rejected" / f"{name}.error.json").read_text())
        assert body["file"] == name and len(body["sha256"]) == 64 and body["error"]
    assert json.loads((inbox / "rejected" / "fit-fails.yaml.error.json").read_text())[
        "error_type"] == "FitError"

    # MLflow: one run per config, tagged with the file and its hash, metrics, a signature
    tracker = Tracker(None, "iris_lab")
    runs = tracker.client.search_runs([tracker.experiment_id], max_results=50)
    assert len(runs) == 4
    svc_run = next(r for r in runs if r.data.tags["conveyor.config.file"] == "svc-again.json")
    assert len(svc_run.data.tags["conveyor.config.sha256"]) == 64
    assert set(svc_run.data.metrics) >= {"test_accuracy", "test_f1", "test_precision",
                                          "test_recall"}
    assert svc_run.data.metrics["test_f1"] > 0.85
    version = tracker.client.get_model_version("iris_classifier", "1")
    assert version.tags["conveyor.artifacts_sha256"] and version.tags["conveyor.holdout.uri"]
    import mlflow.models

    with mlflow_scope(tracker.uri):  # a models:/ URI is read from MLflow's global registry
        info = mlflow.models.get_model_info("models:/iris_classifier/1")
    assert info.signature is not None and info.signature.inputs.input_names()[0] == "sepal_length"

    # the next pass: the half-written file has settled and trains; the same bytes dropped
    # again under a third name train nothing
    drop(inbox, "half.yaml", GOOD, age=60)
    drop(inbox, "svc-third.json", (EXAMPLES / "svc.json").read_bytes())
    again = process_inbox(lab)
    assert [c.file for c in again.batch.claims] == ["half.yaml"] and again.versions == ["5"]
    assert again.batch.known["svc-third.json"] == "trained"
    assert process_inbox(lab).batch.claims == []
    # the same bad bytes under a new name are rejected from the ledger, without training
    drop(inbox, "typo-again.yaml", (inbox / "rejected" / "typo.yaml").read_bytes())
    third = process_inbox(lab)
    assert third.batch.rejected == ["typo-again.yaml"]
    assert (inbox / "rejected" / "typo-again.yaml.error.json").exists()
    assert len(tracker.client.search_model_versions("name = 'iris_classifier'")) == 5


def test_a_retried_training_task_registers_nothing_new(lab: Lab, inbox: Path) -> None:
    drop(inbox, "tree.yaml", GOOD)
    batch = claim_new(lab, owner="airflow-run-1")
    assert [c.file for c in batch.claims] == ["tree.yaml"]
    claim = batch.claims[0].to_dict()  # what XCom carries
    assert json.loads(json.dumps(claim)) == claim
    first = train_claim(lab, claim)
    second = train_claim(lab, claim)  # Airflow retried the mapped task
    assert first.versions == second.versions == ["1"]
    assert first.configs[0].created and not second.configs[0].created
    assert ledger_for(lab).outcome(batch.claims[0].sha256)["status"] == "trained"
    assert claim_new(lab, owner="airflow-run-2").claims == []


def test_a_bad_file_fails_its_own_task_with_a_clear_error(lab: Lab, inbox: Path) -> None:
    drop(inbox, "evil.yaml", "classificator: os.system\nkwargs: {command: 'echo hacked'}\n")
    (claim,) = claim_new(lab).claims
    with pytest.raises(BadInputError, match="outside the allow-list") as caught:
        train_claim(lab, claim)
    assert caught.value.file == "evil.yaml"
    assert (inbox / "rejected" / "evil.yaml.error.json").exists()
    assert ledger_for(lab).outcome(claim.sha256)["status"] == "rejected"


def test_an_s3_inbox_claims_with_conditional_writes(lab_home: Path, s3_bucket: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="inbox/tree.yaml", Body=GOOD.encode())
    s3.put_object(Bucket=s3_bucket, Key="inbox/tree-copy.yaml", Body=GOOD.encode())
    s3.put_object(Bucket=s3_bucket, Key="inbox/.tree.yaml.part", Body=b"x")
    s3.put_object(Bucket=s3_bucket, Key="inbox/deeper/x.yaml", Body=GOOD.encode())
    from conveyor.lab.spec import LabSpec

    spec = LabSpec.model_validate({
        "name": "iris_lab", "watch": {"folder": f"s3://{s3_bucket}/inbox", "min_age_seconds": 0},
        "store": {"root": f"s3://{s3_bucket}/store"},
    })
    lab = Lab.from_spec(spec)
    first = claim_new(lab, owner="a")
    assert [c.file for c in first.claims] == ["tree-copy.yaml"]
    assert first.known == {"tree.yaml": "duplicate"}
    assert [s.name for s in first.skipped] == [".tree.yaml.part"]
    assert claim_new(lab, owner="b").claims == []  # the conditional PUT refused the second
    result = train_claim(lab, first.claims[0])
    assert result.versions == ["1"]
    s3.put_object(Bucket=s3_bucket, Key="inbox/bad.yaml", Body=b"model: nope\n")
    (bad,) = claim_new(lab).claims
    with pytest.raises(BadInputError):
        train_claim(lab, bad)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="inbox/")["Contents"]}
    assert {"inbox/rejected/bad.yaml", "inbox/rejected/bad.yaml.error.json"} <= keys
    assert "inbox/bad.yaml" not in keys
