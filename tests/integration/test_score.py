"""``conveyor score`` from the user's side: the CLI as a subprocess on a home trained once.

The expected predictions come from the exported model folder loaded by MLflow itself
(``mlflow.sklearn.load_model``), never from Conveyor's scoring code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "breast_cancer" / "pipeline.yaml"
MODEL = "models:/breast_cancer_classifier/1"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, seed_mlflow: Any) -> dict[str, Any]:
    """A home with breast_cancer_classifier v1 (the example on the bundled data), the test
    split without its label as CSV and Parquet, and the model's own predictions for it."""
    import mlflow.sklearn

    folder = tmp_path_factory.mktemp("score")
    home = folder / "home"
    seed_mlflow(home)
    env = _env(home)
    subprocess.run([sys.executable, "-m", "conveyor.cli", "run", str(SPEC), "--profile",
                    "sklearn", "--quiet"], env=env, check=True, capture_output=True)
    test = pd.read_parquet(next((home / "artifacts").rglob("split/test.parquet")))
    rows = test.drop(columns=["diagnosis", "id"], errors="ignore")
    rows.insert(0, "id", np.arange(9000, 9000 + len(rows)))
    rows.to_csv(folder / "rows.csv", index=False)
    rows.to_parquet(folder / "rows.parquet", index=False)
    export = next((home / "exports" / "breast_cancer").glob("*/model"))
    model = mlflow.sklearn.load_model(str(export))
    features = [c for c in rows.columns if c != "id"]
    return {"home": home, "env": env, "folder": folder, "rows": rows, "export": export,
            "labels": model.predict(rows[features]),
            "proba": model.predict_proba(rows[features]), "classes": list(model.classes_)}


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    return {**env, "CONVEYOR_HOME": str(home), **extra}


def score(trained: dict[str, Any], *args: str, env: dict[str, str] | None = None,
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conveyor.cli", "score", *args],
                          env=env or trained["env"], capture_output=True, text=True,
                          timeout=300)


def assert_scored(trained: dict[str, Any], out: pd.DataFrame) -> None:
    assert list(out.columns) == ["id", "prediction", *(f"proba_{c}" for c in
                                                       trained["classes"])]
    assert out["id"].tolist() == trained["rows"]["id"].tolist()
    assert out["prediction"].tolist() == list(trained["labels"])
    proba = out[[f"proba_{c}" for c in trained["classes"]]].to_numpy()
    np.testing.assert_allclose(proba, trained["proba"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["rows.csv", "rows.parquet"])
def test_csv_and_parquet_in_parquet_out_equal_the_models_predictions(
        trained: dict[str, Any], tmp_path: Path, name: str) -> None:
    out = tmp_path / "o" / "scored.parquet"
    done = score(trained, MODEL, "--input", str(trained["folder"] / name), "--output",
                 str(out), "--chunk-rows", "17")
    assert done.returncode == 0, done.stderr
    assert_scored(trained, pd.read_parquet(out))
    import pyarrow.parquet as pq

    assert pq.ParquetFile(out).metadata.num_row_groups == -(-len(trained["rows"]) // 17)
    assert f"scored {len(trained['rows']):,} rows in" in done.stderr
    assert f"output {out.as_uri()}" in done.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["scored.parquet"]  # no temp left


def test_an_export_folder_and_a_glob_work_too(trained: dict[str, Any], tmp_path: Path) -> None:
    parts = tmp_path / "in"
    parts.mkdir()
    rows = trained["rows"]
    rows.iloc[:50].to_parquet(parts / "a.parquet", index=False)
    rows.iloc[50:].to_parquet(parts / "b.parquet", index=False)
    out = tmp_path / "out" / "scored.parquet"
    latest = trained["home"] / "exports" / "breast_cancer" / "latest"
    done = score(trained, str(latest), "--input", f"{parts}/*.parquet", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert_scored(trained, pd.read_parquet(out))


def test_s3_in_and_out_through_the_s3_protocol(trained: dict[str, Any], s3_bucket: str,
                                               s3_env: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_env)
    client.put_object(Bucket=s3_bucket, Key="in/rows.parquet",
                      Body=(trained["folder"] / "rows.parquet").read_bytes())
    env = _env(trained["home"], **{k: v for k, v in os.environ.items()
                                   if k.startswith("AWS_")})
    done = score(trained, MODEL, "--input", f"s3://{s3_bucket}/in/rows.parquet", "--output",
                 f"s3://{s3_bucket}/out/scored.parquet", "--chunk-rows", "40", env=env)
    assert done.returncode == 0, done.stderr
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == ["in/rows.parquet", "out/scored.parquet"]
    import io

    body = client.get_object(Bucket=s3_bucket, Key="out/scored.parquet")["Body"].read()
    assert_scored(trained, pd.read_parquet(io.BytesIO(body)))
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in done.stderr + done.stdout


def test_the_dask_engine_on_a_two_worker_local_cluster_gives_the_local_output(
        trained: dict[str, Any], tmp_path: Path) -> None:
    local, distributed = tmp_path / "local.parquet", tmp_path / "dask"
    source = str(trained["folder"] / "rows.csv")
    assert score(trained, MODEL, "--input", source, "--output", str(local)).returncode == 0
    done = score(trained, MODEL, "--input", source, "--output", str(distributed),
                 "--engine", "dask", "--workers", "2", "--chunk-rows", "30")
    assert done.returncode == 0, done.stderr
    parts = sorted(p.name for p in distributed.glob("*.parquet"))
    assert len(parts) > 1, parts  # partitions really were spread
    assert (distributed / "_conveyor_score.json").is_file()
    got = pd.read_parquet(distributed)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), pd.read_parquet(local))
    assert_scored(trained, got.reset_index(drop=True))
    assert "engine dask" in done.stderr


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_a_missing_column_is_one_line_naming_the_column_and_the_file(
        trained: dict[str, Any], tmp_path: Path) -> None:
    bad = tmp_path / "no_radius.csv"
    trained["rows"].drop(columns="radius_mean").to_csv(bad, index=False)
    out = tmp_path / "out.parquet"
    line = _one_error_line(score(trained, MODEL, "--input", str(bad), "--output", str(out)))
    assert "'radius_mean' is missing" in line and bad.name in line
    assert not out.exists()


def test_an_unreadable_file_and_an_existing_output_are_bad_input(
        trained: dict[str, Any], tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes((trained["folder"] / "rows.parquet").read_bytes()[:300])  # truncated
    out = tmp_path / "out.parquet"
    line = _one_error_line(score(trained, MODEL, "--input", str(broken), "--output", str(out)))
    assert "broken.parquet" in line and "not a readable parquet file" in line
    assert not out.exists()

    out.write_bytes(b"keep me")
    line = _one_error_line(score(trained, MODEL, "--input", str(trained["folder"] /
                                                                "rows.csv"), "--output",
                                 str(out)))
    assert "exists" in line and "--overwrite" in line
    assert out.read_bytes() == b"keep me"
    done = score(trained, MODEL, "--input", str(trained["folder"] / "rows.csv"), "--output",
                 str(out), "--overwrite")
    assert done.returncode == 0, done.stderr
    assert_scored(trained, pd.read_parquet(out))


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_failure_mid_way_leaves_no_output(trained: dict[str, Any], tmp_path: Path,
                                            engine: str) -> None:
    rows = trained["rows"].astype({"texture_mean": object})
    rows.loc[rows.index[100], "texture_mean"] = "N/A?"  # after several chunks were written
    bad = tmp_path / "late_error.csv"
    rows.to_csv(bad, index=False)
    out = tmp_path / "out" / ("scored.parquet" if engine == "local" else "scored")
    line = _one_error_line(score(trained, MODEL, "--input", str(bad), "--output", str(out),
                                 "--chunk-rows", "20", "--engine", engine))
    assert "'texture_mean'" in line and "not a number" in line and bad.name in line
    if engine == "local":
        assert "row 101: 'N/A?' is not a number" in line
    assert not out.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no temporary file or folder either


def _spec_with_score(folder: Path, rows: Path) -> Path:
    """The breast-cancer example (bundled data profile) plus a ``score:`` section."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SPEC.with_name("pipeline.sklearn.yaml"), folder)
    spec = Path(shutil.copy(SPEC, folder))
    spec.write_text(spec.read_text() + f"\nscore:\n  input: {rows}\n"
                    "  output: scored/{run_id}.parquet\n  chunk_rows: 25\n")
    return spec


def test_the_score_step_scores_with_the_runs_model_after_export(
        trained: dict[str, Any], tmp_path: Path, conveyor_home: Path) -> None:
    import mlflow.sklearn

    spec = _spec_with_score(tmp_path / "project", trained["folder"] / "rows.csv")
    done = subprocess.run([sys.executable, "-m", "conveyor.cli", "run", str(spec), "--profile",
                           "sklearn", "--run-id", "scored-run"], env=_env(conveyor_home),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "project" / "scored" / "scored-run.parquet"
    assert "score" in done.stdout and f"{len(trained['rows'])} rows → {out.as_uri()}" in \
        done.stdout
    steps = [line.split()[1] for line in done.stdout.splitlines() if line.strip()[:1] == "✓"]
    assert steps[-3:] == ["register", "export", "score"]
    model = mlflow.sklearn.load_model(str(conveyor_home / "exports" / "breast_cancer" /
                                          "scored-run" / "model"))
    got = pd.read_parquet(out)
    features = [c for c in trained["rows"].columns if c != "id"]
    assert got["prediction"].tolist() == list(model.predict(trained["rows"][features]))
    assert got["id"].tolist() == trained["rows"]["id"].tolist()


def test_the_score_step_is_a_task_of_the_generated_dag_after_export(
        trained: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("airflow.sdk")
    from conveyor.airflow.factory import build_dag

    dag = build_dag(_spec_with_score(tmp_path / "project", trained["folder"] / "rows.csv"),
                    profile="sklearn")
    assert "score" in dag.task_dict
    assert {"train", "gate", "register", "export"} <= dag.task_dict["score"].upstream_task_ids
    assert [t.task_id for t in dag.tasks if t.finish] == ["score"]


def test_the_dask_engine_reads_and_writes_s3(trained: dict[str, Any], s3_bucket: str,
                                             s3_env: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_env)
    rows = trained["rows"]
    for name, part in (("a", rows.iloc[:60]), ("b", rows.iloc[60:])):
        path = trained["folder"] / f"part-{name}.parquet"
        part.to_parquet(path, index=False)
        client.put_object(Bucket=s3_bucket, Key=f"in/{name}.parquet", Body=path.read_bytes())
    env = _env(trained["home"], **{k: v for k, v in os.environ.items()
                                   if k.startswith("AWS_")})
    done = score(trained, MODEL, "--input", f"s3://{s3_bucket}/in/*.parquet", "--output",
                 f"s3://{s3_bucket}/out/scored", "--engine", "dask", "--workers", "2",
                 env=env)
    assert done.returncode == 0, done.stderr
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket,
                                                           Prefix="out/")["Contents"])
    assert keys == ["out/scored/_conveyor_score.json", "out/scored/part.0.parquet",
                    "out/scored/part.1.parquet"], keys  # the temporary folder is gone
    import io

    got = pd.concat(pd.read_parquet(io.BytesIO(client.get_object(
        Bucket=s3_bucket, Key=key)["Body"].read())) for key in keys[1:])
    assert_scored(trained, got.reset_index(drop=True))


def test_the_dask_engine_uses_a_running_scheduler_and_leaves_it_running(
        trained: dict[str, Any], tmp_path: Path) -> None:
    import logging

    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.CRITICAL) as cluster:
        out = tmp_path / "scored"
        done = score(trained, MODEL, "--input", str(trained["folder"] / "rows.parquet"),
                     "--output", str(out), "--engine", "dask", "--scheduler",
                     cluster.scheduler_address)
        assert done.returncode == 0, done.stderr
        assert_scored(trained, pd.read_parquet(out).reset_index(drop=True))
        with Client(cluster.scheduler_address, timeout="10s") as client:
            assert len(client.scheduler_info()["workers"]) == 1  # ours, still there


def test_the_default_dask_cluster_runs_in_process_and_starts_no_process(
        trained: dict[str, Any], tmp_path: Path) -> None:
    import psutil

    from conveyor.api import score as api_score

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}  # e.g. an earlier test's helpers
    children: list[list[str]] = []

    def on_progress(rows: int, total: int | None, seconds: float) -> None:
        # called once the partitions are written, while the cluster is still up
        children.append([" ".join(p.cmdline()) for p in me.children(recursive=True)
                         if p.pid not in before])

    out = tmp_path / "scored"
    result = api_score(MODEL, str(trained["folder"] / "rows.parquet"), str(out),
                       engine="dask", workers=2, on_progress=on_progress,
                       home=trained["home"])
    assert result.engine == "dask" and result.rows == len(trained["rows"])
    assert children == [[]]  # the progress callback ran, and no worker process existed
    assert_scored(trained, pd.read_parquet(out).reset_index(drop=True))
