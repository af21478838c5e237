"""The saved schema and per-column rules from the user's side: ``conveyor schema accept``,
``conveyor run`` and :func:`conveyor.run` on a copy of the real WDBC file.

A drifted file under ``validate.drift.policy: fail`` stops the run with exit code 2, one or
two lines naming the file, column, rows and lines, nothing published and the MLflow run
FAILED; the Python API raises the same error. After ``conveyor schema accept`` the same file
runs, and a ``drop`` rule's rows are counted in the report logged to MLflow (JSON and HTML).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import conveyor
from conveyor.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"
COLUMNS: list[str] = yaml.safe_load(EXAMPLE.read_text())["data"]["columns"]


def write_spec(tmp_path: Path, data: Path, validate: dict[str, object]) -> Path:
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["data"]["uri"] = str(data)
    spec["validate"] = validate
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def mlflow_runs(home: Path) -> list[object]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db")
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments) if experiments else []


def test_drift_fails_until_accepted_then_drop_rows_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], conveyor_home: Path,
    wdbc_path: Path,
) -> None:
    data = tmp_path / "wdbc.data"
    data.write_bytes(wdbc_path.read_bytes())
    spec = write_spec(tmp_path, data, {"drift": {"policy": "fail"},
                                       "values": "drop",
                                       "columns": {"radius_mean": {"min": 0, "max": 40}}})
    code, out, err = cli(capsys, "schema", "accept", str(spec))
    saved = conveyor_home / "artifacts" / "breast_cancer" / "_schema" / "schema.json"
    assert code == 0 and f"saved schema: file://{saved}" in out, err
    assert json.loads(saved.read_text())["columns"]["radius_mean"]["kind"] == "numeric"

    # a new batch measured in another unit: texture_mean 10x larger on 60 rows
    index = COLUMNS.index("texture_mean")
    lines = data.read_text().splitlines(keepends=True)
    for row in range(100, 160):
        fields = lines[row].rstrip("\n").split(",")
        fields[index] = str(float(fields[index]) * 10)
        lines[row] = ",".join(fields) + "\n"
    data.write_text("".join(["\n", *lines]))  # and a blank first line
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2, err
    assert len(err.strip().splitlines()) <= 2 and "Traceback" not in err
    assert "wdbc.data: column 'texture_mean': 60 values (10.5%) are outside the saved range" \
        in err, err
    assert "row 101 (line 102)" in err
    assert list((conveyor_home / "artifacts").rglob("manifest.json")) == []
    (failed,) = mlflow_runs(conveyor_home)
    assert failed.info.status == "FAILED"
    assert "texture_mean" in failed.data.tags["conveyor.error"]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{conveyor_home}/mlflow.db")
    # the failed run's report goes to its MLflow run only, never to the Store
    logged = {a.path for a in client.list_artifacts(failed.info.run_id, "validate")}
    assert logged == {"validate/report.json", "validate/report.html"}
    (tmp_path / "downloads").mkdir()
    failure = json.loads(Path(client.download_artifacts(
        failed.info.run_id, "validate/report.json", str(tmp_path / "downloads"))).read_text())
    assert failure["passed"] is False and failure["problems"][0]["lines"][0] == 102
    assert not list((conveyor_home / "artifacts").rglob("validate/report.json"))
    with pytest.raises(conveyor.BadInputError, match="texture_mean': 60 values"):
        conveyor.run(spec, until="validate")

    code, out, err = cli(capsys, "schema", "accept", str(spec))
    assert code == 0 and "changed: wdbc.data: column 'texture_mean': 60 values" in out, err

    # now the batch is the norm; two impossible radii are dropped, counted and reported
    for row in (10, 20):
        fields = lines[row].rstrip("\n").split(",")
        fields[COLUMNS.index("radius_mean")] = "-1"
        lines[row] = ",".join(fields) + "\n"
    data.write_text("".join(["\n", *lines]))
    code, out, err = cli(capsys, "run", str(spec))
    assert code == 0, err
    assert "2 rows dropped" in out
    (report_path,) = (conveyor_home / "artifacts").rglob("validate/report.json")
    report = json.loads(report_path.read_text())
    assert report["dropped"] == {"rows": 2, "by_check": {"values": 2}}
    (problem,) = report["problems"]
    assert problem["rows"] == [11, 21] and problem["lines"] == [12, 22]
    run = next(r for r in mlflow_runs(conveyor_home) if r.info.status == "FINISHED")
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "validate")}
    assert {"validate/report.json", "validate/report.html", "validate/schema.json"} <= logged
    assert run.data.metrics["validate_rows_dropped"] == 2.0
