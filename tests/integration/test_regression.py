"""A regressor from spec to service, from the user's side (issue 11, ADR 0038): the diabetes
example through ``conveyor run`` (real MLflow on a home of its own), the registered version
loaded by MLflow itself predicting numbers, ``conveyor promote`` choosing by RMSE (lower is
better), ``conveyor score`` writing ``prediction`` only, ``conveyor serve`` answering numbers
without probabilities, and ``conveyor.run`` from Python reporting the same metrics."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.processes import free_port, stop_group

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "diabetes" / "pipeline.yaml"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    return {**env, "CONVEYOR_HOME": str(home)}


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conveyor.cli", *args], env=_env(home),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, seed_mlflow: Any) -> dict[str, Any]:
    """Two registered versions of diabetes_regressor: Ridge (v1, by the CLI) and Lasso (v2,
    by ``conveyor.run`` from Python)."""
    import conveyor

    folder = tmp_path_factory.mktemp("regression")
    home = folder / "home"
    seed_mlflow(home)
    first = cli(home, "run", str(SPEC))
    assert first.returncode == 0, first.stderr
    second = conveyor.run(SPEC, ["model.estimator=lasso", "model.params.alpha=0.5"],
                          home=home)
    test = pd.read_parquet(next((home / "artifacts").rglob("split/test.parquet")))
    rows = test.drop(columns=["target"])
    rows.insert(0, "id", np.arange(len(rows)))
    rows.to_csv(folder / "rows.csv", index=False)
    run_id = re.search(r"^run\s+(\S+)", first.stdout, re.M)
    assert run_id, first.stdout
    return {"home": home, "folder": folder, "rows": rows, "y": test["target"].to_numpy(),
            "run": first.stdout + first.stderr,
            "evaluate": home / "artifacts" / "diabetes" / run_id[1] / "evaluate",
            "api": second}


def test_the_run_validates_a_regression_and_registers_a_regressor(
        trained: dict[str, Any]) -> None:
    import mlflow
    import mlflow.sklearn

    out = trained["run"]
    assert "10 features, regression" in out
    assert "test_rmse" in out and "registered models:/diabetes_regressor/1" in out
    home = trained["home"]
    evaluate = trained["evaluate"]
    assert {"predicted_vs_actual.png", "residuals.png", "plots.json"} <= {
        p.name for p in evaluate.iterdir()}
    report = (evaluate.parent / "gate" / "report.html").read_text()  # the gate's (ADR 0041)
    assert "rmse" in report and report.count("data:image/png;base64,") == 2
    assert "<tr><th>target</th><td>target: 25 to 346</td></tr>" in report  # not "classes —"
    assert "description: |\n  Predict disease progression one year after baseline" in report
    metrics = json.loads((evaluate / "metrics.json").read_text())
    names = ("rmse", "mae", "r2", "mape")
    assert set(metrics) == ({f"{s}_{m}" for s in ("train", "test", "cv") for m in names}
                            | {f"cv_{m}_std" for m in names})
    assert metrics["test_rmse"] <= 60 and metrics["test_r2"] >= 0.3  # the example's gate

    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        version = client.get_model_version("diabetes_regressor", "1")
        assert version.tags["conveyor.task"] == "regression"
        model = mlflow.sklearn.load_model("models:/diabetes_regressor/1")
    finally:
        mlflow.set_tracking_uri(None)
    predicted = model.predict(trained["rows"].drop(columns=["id"]))
    assert predicted.dtype.kind == "f" and not hasattr(model, "classes_")
    assert len(np.unique(predicted)) > 50  # values, not a handful of labels
    rmse = float(np.sqrt(np.mean((predicted - trained["y"]) ** 2)))
    assert rmse == pytest.approx(metrics["test_rmse"])


def test_promote_chooses_the_lower_rmse(trained: dict[str, Any]) -> None:
    done = cli(trained["home"], "promote", "diabetes_regressor", "--dry-run")
    assert done.returncode == 0, done.stderr
    # Lasso: 57.7 against Ridge's 58.5, whose R² is lower: rmse decided, lower is better
    assert "promote (dry run): no production version yet; v2 has the best rmse (57.68" \
        in " ".join(done.stdout.split())


def test_score_writes_numbers_and_no_probabilities(trained: dict[str, Any]) -> None:
    out = trained["folder"] / "scored.parquet"
    done = cli(trained["home"], "score", "models:/diabetes_regressor/1", "--input",
               str(trained["folder"] / "rows.csv"), "--output", str(out))
    assert done.returncode == 0, done.stderr
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["id", "prediction"]
    assert scored["prediction"].dtype == np.float64
    assert scored["id"].tolist() == trained["rows"]["id"].tolist()


def _post(port: int, path: str, body: Any) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)  # polling a starting server, not timing anything
    raise AssertionError("the server did not get ready")


def test_serve_answers_numbers_for_a_regressor(trained: dict[str, Any]) -> None:
    port = free_port()
    log = trained["folder"] / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "conveyor.cli", "serve", "models:/diabetes_regressor/1",
             "--port", str(port)], env=_env(trained["home"]), stdout=sink, stderr=sink,
            start_new_session=True)
    try:
        _ready(port, process)
        rows = trained["rows"].drop(columns=["id"]).head(3)
        status, body = _post(port, "/invocations",
                             {"dataframe_split": {"columns": list(rows.columns),
                                                  "data": rows.to_numpy().tolist()}})
        assert status == 200, body
        assert set(body) == {"predictions"}
        assert all(isinstance(v, float) for v in body["predictions"])
        status, typed = _post(port, "/predict", {"rows": rows.to_dict(orient="records")})
        assert status == 200, typed
        assert "probabilities" not in typed and "classes" not in typed
        assert typed["predictions"] == pytest.approx(body["predictions"])
        status, bad = _post(port, "/predict", {"rows": [{"age": 50}]})
        assert status == 400 and "bmi" in bad["error"]
    finally:
        stop_group(process)


def test_the_python_api_registers_the_same_way(trained: dict[str, Any]) -> None:
    result = trained["api"]
    assert result.status == "ok"
    assert result.model_uri == "models:/diabetes_regressor/2"
    names = ("rmse", "mae", "r2", "mape")
    scores = {k for k in result.metrics if k.startswith(("train_", "test_", "cv_"))}
    assert scores == ({f"{s}_{m}" for s in ("train", "test", "cv") for m in names}
                      | {f"cv_{m}_std" for m in names})
    assert result.metrics["test_rmse"] < json.loads(
        (trained["evaluate"] / "metrics.json").read_text())["test_rmse"]
