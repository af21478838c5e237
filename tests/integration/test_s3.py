"""The pipeline against a real S3-protocol server (moto's server mode on 127.0.0.1) via s3fs.

The artifact store and the export both live in the bucket; MLflow stays on the embedded
SQLite default. Objects are read back with boto3, never through Conveyor's own Store.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conveyor.cli import main
from conveyor.spec import load_spec

pytestmark = pytest.mark.integration

SPEC = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"
REGISTERED = "breast_cancer_classifier"


@pytest.fixture(autouse=True)
def fresh_s3fs() -> None:
    """s3fs caches filesystems by their arguments, not by the environment they read."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint)


def all_objects(client: Any, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def key_of(uri: str, bucket: str) -> str:
    prefix = f"s3://{bucket}/"
    assert uri.startswith(prefix), uri
    return uri.removeprefix(prefix)


def mlflow_client(home: Path) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db")


def test_pipeline_on_s3(s3_bucket: str, s3_env: str, breast_cancer_spec: Path,
                        conveyor_home: Path, wdbc_path: Path, tmp_path: Path) -> None:
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    run_id = "s3-run"  # chosen here: nothing is read back from stdout
    code, out, err = cli("run", str(breast_cancer_spec), f"store.root=s3://{s3_bucket}/artifacts",
                         f"export.uri=s3://{s3_bucket}/exports", "--run-id", run_id)
    assert code == 0, err
    assert re.search(rf"^run\s+{run_id}\s+\(", out, re.M), out
    assert f"s3://{s3_bucket}/artifacts/breast_cancer/{run_id}/manifest.json" in out
    assert not (conveyor_home / "artifacts").exists()  # the store is the bucket

    objects = all_objects(s3_client(s3_env), s3_bucket)
    manifest_key = f"artifacts/breast_cancer/{run_id}/manifest.json"
    manifest = json.loads(objects[manifest_key])
    assert manifest["status"] == "ok"
    assert manifest["metrics"]["test_accuracy"] >= 0.95
    assert len(manifest["artifacts"]) >= 9
    for name, ref in manifest["artifacts"].items():
        key = key_of(ref["uri"], s3_bucket)
        if name == "train/model":
            index = json.loads(objects[f"{key}/_conveyor_dir.json"])
            assert index["sha256"] == ref["sha256"]
            for rel, sha in index["files"].items():
                assert hashlib.sha256(objects[f"{key}/{rel}"]).hexdigest() == sha, rel
        else:
            assert hashlib.sha256(objects[key]).hexdigest() == ref["sha256"], name
            assert len(objects[key]) == ref["size"], name

    export = f"exports/{run_id}"
    for rel in ("model/MLmodel", "model/_conveyor_dir.json", "metrics.json", "manifest.json"):
        assert f"{export}/{rel}" in objects, rel
    latest = json.loads(objects["exports/latest.json"])
    assert latest["run_id"] == run_id
    assert latest["sha256"] == hashlib.sha256(objects[f"{export}/manifest.json"]).hexdigest()
    exported = json.loads(objects[f"{export}/manifest.json"])
    assert exported["registered"] == f"models:/{REGISTERED}/1"
    metrics_ref = exported["artifacts"]["metrics.json"]
    assert hashlib.sha256(objects[f"{export}/metrics.json"]).hexdigest() == metrics_ref["sha256"]
    assert json.loads(objects[f"{export}/metrics.json"])["test_f1"] == pytest.approx(
        manifest["metrics"]["test_f1"])

    # the exported model loads from a plain download and predicts on WDBC rows
    import mlflow.sklearn

    folder = tmp_path / "downloaded"
    for key, body in objects.items():
        if key.startswith(f"{export}/model/"):
            target = folder / key.removeprefix(f"{export}/model/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    model = mlflow.sklearn.load_model(str(folder))
    columns = load_spec(breast_cancer_spec).spec.data.columns
    rows = pd.read_csv(wdbc_path, header=None, names=columns)
    predicted = model.predict(rows.drop(columns=["id", "diagnosis"]))
    assert set(predicted) == {"M", "B"}
    assert (predicted == rows["diagnosis"]).mean() >= 0.95

    # the secret never shows: terminal, MLflow params and tags, objects, local files
    assert secret not in out and secret not in err
    client = mlflow_client(conveyor_home)
    experiment = client.get_experiment_by_name("breast_cancer")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.params["store.root"] == f"s3://{s3_bucket}/artifacts"
    for mapping in (runs[0].data.params, runs[0].data.tags):
        for key, value in mapping.items():
            assert secret not in key and secret not in value, key
    encoded = secret.encode()
    assert not [key for key, body in objects.items() if encoded in body]
    leaked = [p for p in conveyor_home.rglob("*") if p.is_file() and encoded in p.read_bytes()]
    assert leaked == []


def test_unreachable_store_fails_fast_and_clearly(
    dead_s3: str, breast_cancer_spec: Path, conveyor_home: Path,
) -> None:
    endpoint = dead_s3
    code, out, err = cli("run", str(breast_cancer_spec), "store.root=s3://nowhere/artifacts")
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("failed: "), err
    assert endpoint.removeprefix("http://") in lines[0]
    assert "s3://nowhere/artifacts/breast_cancer/" in lines[0]  # names what it tried to reach
    assert "Traceback" not in err
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in out + err
    # nothing was started: the store is touched before the MLflow run is created
    if (conveyor_home / "mlflow.db").exists():
        client = mlflow_client(conveyor_home)
        experiment = client.get_experiment_by_name("breast_cancer")
        if experiment is not None:
            assert all(r.info.status != "RUNNING"
                       for r in client.search_runs([experiment.experiment_id]))


def test_export_failure_registers_nothing(
    dead_s3: str, breast_cancer_spec: Path, conveyor_home: Path,
) -> None:
    code, _, err = cli("run", str(breast_cancer_spec), "export.uri=s3://nowhere/exports")
    assert code == 1, err
    assert "Traceback" not in err
    assert list((conveyor_home / "artifacts").rglob("manifest.json")) == []
    client = mlflow_client(conveyor_home)
    runs = client.search_runs([client.get_experiment_by_name("breast_cancer").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert client.search_model_versions(f"name = '{REGISTERED}'") == []


def test_create_bytes_on_s3_is_a_conditional_put(s3_bucket: str, s3_env: str) -> None:
    from conveyor.store import Store

    store = Store(f"s3://{s3_bucket}/conveyor")
    uri = f"s3://{s3_bucket}/conveyor/claims/a.json"
    first = store.create_bytes(uri, b'{"owner": "a"}')
    assert first is not None and first.size == 14
    assert store.create_bytes(uri, b'{"owner": "b"}') is None
    assert all_objects(s3_client(s3_env), s3_bucket)["conveyor/claims/a.json"] == \
        b'{"owner": "a"}'


def test_gc_on_s3_follows_cache_references(s3_bucket: str, s3_env: str,
                                           breast_cancer_spec: Path,
                                           conveyor_home: Path) -> None:
    """Three runs on the bucket; ``gc --keep 1`` keeps the newest and the run it reuses."""
    import conveyor

    store = [f"store.root=s3://{s3_bucket}/artifacts", f"export.uri=s3://{s3_bucket}/exports"]
    run_ids = []
    for overrides in ([], ["model.params.C=0.5"], []):
        result = conveyor.run(breast_cancer_spec, [*store, *overrides], home=conveyor_home)
        assert result.status == "ok", result
        assert result.manifest_uri == (f"s3://{s3_bucket}/artifacts/breast_cancer/"
                                       f"{result.run_id}/manifest.json")
        run_ids.append(result.run_id)
    first, other, newest = run_ids

    def run_folders() -> set[str]:
        keys = all_objects(s3_client(s3_env), s3_bucket)
        return {k.split("/")[2] for k in keys if k.startswith("artifacts/breast_cancer/")
                and not k.split("/")[2].startswith("_")}

    assert run_folders() == {first, other, newest}
    code, out, err = cli("gc", str(breast_cancer_spec), *store, "--keep", "1",
                         "--min-age-hours", "0", "--yes")
    assert code == 0, err
    assert "deleted 1 run(s)" in out, out
    assert run_folders() == {first, newest}  # newest reuses first's validate, split, train
    objects = all_objects(s3_client(s3_env), s3_bucket)
    owners = {json.loads(body)["cached_from"] for key, body in objects.items()
              if key.startswith("artifacts/breast_cancer/_cache/") and "/checked/" not in key}
    assert other not in owners and first in owners
