"""``conveyor monitor`` from the user's side: train with ``conveyor run``, write shifted
samples where the server writes them, and see the drift flagged, reported, tracked, alerted
(a local webhook receiver) and the training DAG triggered (a local server speaking Airflow's
REST wire format). Unshifted data is quiet; a failed gate alerts too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conveyor.serving import layout

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "examples" / "breast_cancer" / "pipeline.yaml"
MODEL = "breast_cancer_classifier"
WEBHOOK_SECRET_PATH = "/services/T000/B000/s3cr3t-token"


class Recorder(ThreadingHTTPServer):
    """A local HTTP server that records every request (method, path, headers, JSON body)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def log_message(self, *args: object) -> None:
        return

    def _record(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        entry = {"method": self.command, "path": self.path,
                 "auth": self.headers.get("Authorization"),
                 "json": json.loads(body) if body else None}
        self.server.requests.append(entry)
        return entry

    def _answer(self, status: int, data: dict) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        entry = self._record()
        if entry["path"] == "/auth/token":  # Airflow 3's simple auth manager, all admins
            self._answer(201, {"access_token": "airflow-jwt"})
        else:
            self._answer(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        entry = self._record()
        if entry["path"].startswith("/api/v2/dags/") and entry["path"].endswith("/dagRuns"):
            dag_id = entry["path"].split("/")[4]
            self._answer(200, {"dag_run_id": "manual__2026-11-30T00:00:00+00:00",
                               "dag_id": dag_id, "state": "queued"})
        else:  # the webhook: Slack answers a plain "ok"
            self._answer(200, {"ok": True})


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Recorder, Recorder]]:
    webhook, airflow = Recorder(), Recorder()
    yield webhook, airflow
    webhook.close()
    airflow.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, wdbc_path: Path, seed_mlflow,
            servers: tuple[Recorder, Recorder]) -> dict:
    """One training run for the module: a spec with a ``monitor:`` section, on its own home."""
    _, airflow = servers
    folder = tmp_path_factory.mktemp("monitor")
    home = folder / "home"
    seed_mlflow(home)
    data = yaml.safe_load(SPEC.read_text())
    data["data"]["uri"] = str(wdbc_path)
    data["export"] = {"uri": str(folder / "exports")}
    data["monitor"] = {"airflow_url": airflow.url, "min_rows": 20}
    spec = folder / "pipeline.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    env = {**os.environ, "CONVEYOR_HOME": str(home)}
    env.pop("CONVEYOR_WEBHOOK_URL", None)
    done = subprocess.run([sys.executable, "-m", "conveyor.cli", "run", str(spec)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    frame = pd.read_csv(wdbc_path, header=None, names=data["data"]["columns"])
    return {"home": home, "spec": spec, "env": env, "frame": frame, "folder": folder}


def conveyor(trained: dict, *args: str, webhook: str | None = None) -> subprocess.CompletedProcess:
    env = dict(trained["env"])
    if webhook:
        env["CONVEYOR_WEBHOOK_URL"] = webhook
    return subprocess.run([sys.executable, "-m", "conveyor.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def write_samples(trained: dict, frame: pd.DataFrame, predictions: list) -> Path:
    """Samples as the server writes them: features, _prediction, _proba_<class>, _request_id,
    _ts, _version, Parquet under samples_uri partitioned date=/hour=."""
    now = datetime.now(UTC)
    root = (trained["home"] / "artifacts").as_uri()
    folder = Path(layout.samples_uri(root, MODEL).removeprefix("file://"))
    part = folder / layout.sample_partition(now)
    part.mkdir(parents=True, exist_ok=True)
    samples = frame.drop(columns=["id", "diagnosis"]).copy()
    samples[layout.PREDICTION] = predictions
    samples[layout.proba_column("B")] = 0.5
    samples[layout.proba_column("M")] = 0.5
    samples[layout.REQUEST_ID] = [f"r{i}" for i in frame["id"]]
    samples[layout.TIME] = pd.Timestamp(now)
    samples[layout.VERSION] = "1"
    path = part / f"part-{now:%Y%m%dT%H%M%S}-1-0.parquet"
    samples.to_parquet(path, index=False)
    return path


def test_shifted_samples_are_flagged_reported_tracked_alerted_and_retrained(
        trained: dict, servers: tuple[Recorder, Recorder]) -> None:
    webhook, airflow = servers
    webhook.requests.clear()
    airflow.requests.clear()
    shifted = trained["frame"].copy()
    shifted["radius_mean"] *= 1.6
    shifted["texture_mean"] += 12
    write_samples(trained, shifted, ["M"] * len(shifted))

    done = conveyor(trained, "monitor", f"models:/{MODEL}/1", "--window", "2h", "--spec",
                    str(trained["spec"]), "--json", webhook=webhook.url + WEBHOOK_SECRET_PATH)
    assert done.returncode == 3, done.stdout + done.stderr
    verdict = json.loads(done.stdout)
    assert {"radius_mean", "texture_mean"} <= set(verdict["features_drifted"])
    assert "smoothness_mean" not in verdict["features_drifted"]
    assert verdict["drifted"] is True and verdict["model"] == MODEL and verdict["version"] == "1"

    # the report, the HTML with inlined plots, the verdict the status page reads
    root = trained["home"] / "artifacts"
    latest = json.loads((root / "_monitoring" / MODEL / "latest.json").read_text())
    assert {"checked_at", "model", "version", "drifted", "features_drifted", "report"} <= set(
        latest)
    assert latest["report"] == verdict["report"]
    html = Path(latest["report"].removeprefix("file://")).read_text()
    assert html.count("data:image/png;base64,") >= 3 and "radius_mean" in html
    report = json.loads(Path(verdict["report_json"].removeprefix("file://")).read_text())
    assert report["rows"] == len(shifted) and report["prediction"]["drifted"]
    assert report["features"]["radius_mean"]["psi"] > 1

    # the training DAG was triggered over Airflow's REST API, with a token from /auth/token
    assert [(r["method"], r["path"]) for r in airflow.requests] == [
        ("GET", "/auth/token"), ("POST", "/api/v2/dags/breast_cancer/dagRuns")]
    trigger = airflow.requests[1]
    assert trigger["auth"] == "Bearer airflow-jwt"
    assert trigger["json"]["logical_date"] is None
    assert trigger["json"]["conf"]["reason"] == "drift"
    assert "radius_mean" in trigger["json"]["conf"]["features_drifted"]
    assert verdict["actions"]["retrain"]["triggered"] is True

    # the webhook got Slack's JSON; its URL (a secret) is nowhere in the output or report
    assert len(webhook.requests) == 1
    posted = webhook.requests[0]
    assert posted["path"] == WEBHOOK_SECRET_PATH and set(posted["json"]) == {"text"}
    assert MODEL in posted["json"]["text"] and "radius_mean" in posted["json"]["text"]
    for text in (done.stdout, done.stderr, json.dumps(report), html):
        assert "s3cr3t-token" not in text

    # one MLflow run in "<model>-monitoring" with the statistics and both reports
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{trained['home'] / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(f"{MODEL}-monitoring")
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"attributes.run_id = '{verdict['mlflow_run_id']}'")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.metrics["drifted"] == 1.0 and run.data.metrics["psi.radius_mean"] > 1
    assert run.data.tags["conveyor.monitor.drifted"] == "true"
    names = {a.path for a in client.list_artifacts(run.info.run_id, "monitoring")}
    assert names == {"monitoring/report.html", "monitoring/report.json"}


def test_unshifted_batch_is_quiet_and_scores_live_metrics(
        trained: dict, servers: tuple[Recorder, Recorder], tmp_path: Path) -> None:
    webhook, airflow = servers
    webhook.requests.clear()
    airflow.requests.clear()
    frame = trained["frame"]
    batch = tmp_path / "batch.csv"
    frame.drop(columns=["diagnosis"]).to_csv(batch, index=False)
    labels = tmp_path / "labels.csv"
    frame[["id", "diagnosis"]].to_csv(labels, index=False)
    done = conveyor(trained, "monitor", f"models:/{MODEL}/1", "--input", str(batch),
                    "--labels", str(labels), "--id-column", "id", "--spec",
                    str(trained["spec"]), webhook=webhook.url + WEBHOOK_SECRET_PATH)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no drift (569 rows)" in done.stdout
    accuracy = float(done.stdout.split("live_accuracy ")[1].split()[0])
    assert 0.9 < accuracy <= 1.0
    assert webhook.requests == [] and airflow.requests == []


def test_bad_input_exits_2_naming_it(trained: dict, tmp_path: Path) -> None:
    done = conveyor(trained, "monitor", f"models:/{MODEL}/1", "--window", "5 weeks")
    assert done.returncode == 2 and "--window '5 weeks'" in done.stderr, done.stderr
    missing = tmp_path / "nope.csv"
    done = conveyor(trained, "monitor", f"models:/{MODEL}/1", "--input", str(missing))
    assert done.returncode == 2 and "nope.csv" in done.stderr, done.stderr
    (tmp_path / "labels.csv").write_text("other,diagnosis\n1,M\n")
    batch = tmp_path / "b.csv"
    trained["frame"].drop(columns=["diagnosis"]).head(40).to_csv(batch, index=False)
    done = conveyor(trained, "monitor", f"models:/{MODEL}/1", "--input", str(batch),
                    "--labels", str(tmp_path / "labels.csv"), "--id-column", "id")
    assert done.returncode == 2 and "no id column 'id'" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2


def test_a_failed_gate_posts_to_the_webhook(trained: dict,
                                            servers: tuple[Recorder, Recorder]) -> None:
    webhook, _ = servers
    webhook.requests.clear()
    done = conveyor(trained, "run", str(trained["spec"]), "gate.test_accuracy=0.9999",
                    webhook=webhook.url + WEBHOOK_SECRET_PATH)
    assert done.returncode == 3, done.stdout + done.stderr
    assert len(webhook.requests) == 1
    text = webhook.requests[0]["json"]["text"]
    assert "breast_cancer" in text and "gate rejected" in text and "test_accuracy" in text


def test_a_tampered_profile_is_a_tampered_model(trained: dict, tmp_path: Path) -> None:
    exports = trained["folder"] / "exports"
    latest = json.loads((exports / "latest.json").read_text())
    run_folder = Path(latest["manifest"].removeprefix("file://")).parent
    copy = tmp_path / "export"
    import shutil

    shutil.copytree(run_folder, copy / run_folder.name)
    (copy / "latest.json").write_text(json.dumps({
        **latest, "manifest": (copy / run_folder.name / "manifest.json").as_uri()}))
    profile = copy / run_folder.name / "model" / "conveyor_profile.json"
    data = json.loads(profile.read_text())
    data["features"]["radius_mean"]["max"] = 1e9  # hide an out-of-range shift
    profile.write_text(json.dumps(data))
    batch = tmp_path / "batch.csv"
    trained["frame"].drop(columns=["diagnosis"]).head(50).to_csv(batch, index=False)
    done = conveyor(trained, "monitor", str(copy), "--input", str(batch))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "conveyor_profile.json does not match its recorded sha256" in done.stderr


def test_a_model_without_a_profile_is_bad_input(trained: dict, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from conveyor.store import Store
    from conveyor.tracking import Tracker

    frame = trained["frame"]
    X = frame[["radius_mean", "texture_mean"]]
    model = LogisticRegression(max_iter=500).fit(X, frame["diagnosis"])
    saved = tmp_path / "saved"
    Tracker.save_sklearn_model(model, X.head(5), saved)  # as models were saved before
    uri = (tmp_path / "store" / "old_model").as_uri()
    Store((tmp_path / "store").as_uri()).put_dir(uri, saved)
    batch = tmp_path / "batch.csv"
    X.to_csv(batch, index=False)
    done = conveyor(trained, "monitor", uri, "--input", str(batch))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "has no reference profile" in done.stderr and "train it again" in done.stderr
