"""The documented S3 export (docs/storage.md) on a real S3-protocol server, and its failures.

The recipe: the local store and MLflow on the embedded default, the export in a bucket through
``CONVEYOR_EXPORT_URI=s3://models/breast_cancer``. An export is whole or absent and written
last: a run that fails leaves no export folder, no staging object and no ``latest.json``
naming it, and no registry version (ADR 0010, ADR 0015).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = "examples/breast_cancer/pipeline.yaml"
REGISTERED = "breast_cancer_classifier"
BUCKET = "models"
PREFIX = "breast_cancer/"


@pytest.fixture(autouse=True)
def fresh_s3fs() -> None:
    """s3fs caches filesystems by their arguments, not by the environment they read."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture()
def models_bucket(s3_env: str, breast_cancer_spec: Path) -> Any:
    """The recipe's bucket ``models``, emptied of ``breast_cancer/``; yields a boto3 client."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_env)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    for key in objects(client):
        client.delete_object(Bucket=BUCKET, Key=key)
    return client


def objects(client: Any) -> dict[str, bytes]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {key: client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


def conveyor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``conveyor ...`` as a user types it, from the repository's root."""
    return subprocess.run([str(Path(sys.executable).parent / "conveyor"), *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300, check=False)


def in_process(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def versions(home: Path) -> list[Any]:
    from mlflow import MlflowClient

    db = f"sqlite:///{home}/mlflow.db"
    found = MlflowClient(tracking_uri=db, registry_uri=db).search_model_versions(
        f"name = '{REGISTERED}'")
    return sorted(found, key=lambda v: int(v.version))


def test_documented_s3_export_recipe(models_bucket: Any, conveyor_home: Path) -> None:
    run_id = "20261130T000000-recipe"  # chosen here: nothing is read back from stdout
    done = conveyor("run", SPEC, "--run-id", run_id,
                    CONVEYOR_EXPORT_URI=f"s3://{BUCKET}/breast_cancer")
    assert done.returncode == 0, done.stderr
    assert "failed" not in done.stderr
    assert re.search(rf"^run\s+{re.escape(run_id)}\s+\(", done.stdout, re.M), done.stdout
    stored = objects(models_bucket)
    assert not [k for k in stored if "_staging" in k], sorted(stored)  # staging cleaned up
    export = f"{PREFIX}{run_id}"
    assert {k.removeprefix(f"{export}/") for k in stored if k.startswith(export)} >= {
        "model/MLmodel", "model/model.skops", "model/_conveyor_dir.json", "metrics.json",
        "manifest.json"}
    latest = json.loads(stored[f"{PREFIX}latest.json"])
    assert latest["run_id"] == run_id
    assert latest["manifest"] == f"s3://{BUCKET}/{export}/manifest.json"
    assert latest["sha256"] == hashlib.sha256(stored[f"{export}/manifest.json"]).hexdigest()
    manifest = json.loads(stored[f"{export}/manifest.json"])
    index = json.loads(stored[f"{export}/model/_conveyor_dir.json"])
    assert manifest["artifacts"]["model"]["sha256"] == index["sha256"]
    for rel, sha in index["files"].items():
        assert hashlib.sha256(stored[f"{export}/model/{rel}"]).hexdigest() == sha, rel
    # the version the export names exists: nothing was withdrawn
    assert [str(v.version) for v in versions(conveyor_home)] == ["1"]
    assert manifest["registered"] == f"models:/{REGISTERED}/1"
    run_manifest = json.loads((conveyor_home / "artifacts" / "breast_cancer" / run_id
                               / "manifest.json").read_text())
    assert run_manifest["status"] == "ok"
    assert run_manifest["artifacts"]["export/manifest"]["uri"] == latest["manifest"]


def test_a_run_failing_after_its_export_leaves_no_export_and_no_latest(
    models_bucket: Any, conveyor_home: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_EXPORT_URI", f"s3://{BUCKET}/breast_cancer")
    first_id = "20261130T000000-first"
    first = conveyor("run", SPEC, "--run-id", first_id)
    assert first.returncode == 0, first.stderr
    before = objects(models_bucket)
    # A real fault after export: the run's manifest cannot be written (a folder is in the way).
    failing = "20261130T000000-faulty"
    blocker = conveyor_home / "artifacts" / "breast_cancer" / failing / "manifest.json"
    blocker.mkdir(parents=True)
    (blocker / "keep").write_text("not a manifest")
    done = conveyor("run", SPEC, "model.params.C=0.5", "--run-id", failing)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "manifest.json" in done.stderr and "Traceback" not in done.stderr
    # export ran (so the failure really came after it) ...
    assert re.search(r"✓ export\s", done.stdout), done.stdout
    # ... and left nothing: no folder, no staging, latest.json byte for byte as before
    assert objects(models_bucket) == before
    assert json.loads(before[f"{PREFIX}latest.json"])["run_id"] == first_id
    # the version the failed run registered (a new model: C=0.5) was withdrawn
    assert [str(v.version) for v in versions(conveyor_home)] == ["1"]


def test_a_failure_inside_export_leaves_nothing_at_the_target(
    models_bucket: Any, conveyor_home: Path, breast_cancer_spec: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conveyor.store import Store

    put_bytes = Store.put_bytes
    refused: list[str] = []

    def refuse_export_manifest(self: Store, uri: str, data: bytes) -> Any:
        # the last write of the export: everything else is already staged and moved
        if uri.startswith(f"s3://{BUCKET}/") and uri.endswith("/manifest.json"):
            refused.append(uri)
            raise OSError("injected: the bucket refused the write")
        return put_bytes(self, uri, data)

    monkeypatch.setattr(Store, "put_bytes", refuse_export_manifest)
    code, out, err = in_process("run", str(breast_cancer_spec),
                                f"export.uri=s3://{BUCKET}/breast_cancer")
    assert code == 1, out + err
    assert len(refused) == 1 and "injected" in err  # the failure path ran
    assert objects(models_bucket) == {}  # no model, no metrics, no staging, no latest.json
    assert versions(conveyor_home) == []  # the registered version was withdrawn
