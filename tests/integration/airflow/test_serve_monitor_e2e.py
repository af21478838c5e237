"""End to end, from the user's side, with real parts (issue 10): train, promote, serve, send
traffic over HTTP, stop the server, ``conveyor monitor`` the window it sampled.

Shifted traffic: exit 3, the shifted features named, JSON and HTML reports written, one
Slack-style alert received by a local HTTP server, and a run of the training DAG started in
a real ``airflow standalone`` (the session's, shared with test_kill_and_retry.py) with the
check's conf, which then retrains. Unshifted traffic: exit 0, no alert, no DAG run.

Every ``conveyor`` command is a subprocess on the Conveyor home and MLflow the standalone's
DAGs use; the server runs ``conveyor serve`` on 127.0.0.1 and is stopped with SIGTERM.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import pytest
import yaml
from airflow_harness import BIN, REPO, Service, Standalone, wait_http

from conveyor.processes import free_port

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SPEC = REPO / "examples" / "breast_cancer" / "pipeline.yaml"
DAG_ID = "breast_cancer"  # the spec's name: the training DAG the monitor triggers
MODEL = "breast_cancer_classifier"
URI = f"models:/{MODEL}@production"
SHIFTED = ["radius_mean", "texture_mean", "area_mean"]  # scaled by 3: a broken instrument
WEBHOOK_ENV = "E2E_WEBHOOK_URL"
BATCH = 40  # rows per request


@dataclass
class Receiver:
    """A local webhook endpoint: records each POSTed JSON body."""

    server: http.server.ThreadingHTTPServer
    bodies: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    bodies: list[Any] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            bodies.append({"path": self.path, "type": self.headers.get("Content-Type"),
                           "body": json.loads(self.rfile.read(length))})
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(server=server, bodies=bodies)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Trained:
    spec: Path
    env: dict[str, str]
    features: pd.DataFrame


def conveyor(env: dict[str, str], *args: str, timeout: float = 300
             ) -> subprocess.CompletedProcess[str]:
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "conveyor"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    log.info("conveyor %s: exit %s in %.1fs", args[0], done.returncode,
             time.perf_counter() - started)
    return done


@pytest.fixture(scope="module")
def trained(standalone: Standalone, wdbc_path: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Trained:
    """The breast-cancer pipeline with a ``monitor:`` section, trained by ``conveyor run`` on
    the standalone's Conveyor home and MLflow, and promoted to production."""
    root = tmp_path_factory.mktemp("e2e")
    data = yaml.safe_load(SPEC.read_text())
    data["data"]["uri"] = str(wdbc_path)
    data["export"] = {"uri": (root / "exports").as_uri()}
    data["monitor"] = {"model": URI, "window": "1h", "schedule": None, "psi": 0.2,
                       "ks_pvalue": 0.001, "min_rows": 30, "retrain": True,
                       "webhook_url_env": WEBHOOK_ENV, "airflow_url": standalone.url}
    spec = root / "pipeline.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    air = standalone.home.env
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    env.update(CONVEYOR_HOME=air["CONVEYOR_HOME"], MLFLOW_TRACKING_URI=air["MLFLOW_TRACKING_URI"])

    done = conveyor(env, "run", str(spec), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    done = conveyor(env, "promote", "--spec", str(spec), "--all")
    assert done.returncode == 0, done.stdout + done.stderr
    frame = pd.read_csv(wdbc_path, header=None, names=data["data"]["columns"])
    return Trained(spec=spec, env=env, features=frame.drop(columns=["id", "diagnosis"]))


def serve_and_send(trained: Trained, store: str, rows: pd.DataFrame, log_file: Path
                   ) -> dict[str, Any]:
    """``conveyor serve`` the production model, POST ``rows`` to /invocations in batches,
    stop it with SIGTERM; returns its /model answer."""
    started = time.perf_counter()
    port = free_port()
    server = Service("conveyor serve", [
        str(BIN / "conveyor"), "serve", URI, "--port", str(port), "--store", store,
        "--sample-rate", "1.0"], env=trained.env, log=log_file).start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/ready", 120, service=server)
        with urllib.request.urlopen(f"{base}/model", timeout=10) as answer:
            model = json.loads(answer.read())
        for start in range(0, len(rows), BATCH):
            batch = rows.iloc[start:start + BATCH]
            body = {"dataframe_split": {"columns": list(batch.columns),
                                        "data": batch.to_numpy().tolist()}}
            request = urllib.request.Request(
                f"{base}/invocations", data=json.dumps(body).encode(), method="POST",
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 200
                assert len(json.loads(answer.read())["predictions"]) == len(batch)
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0, server.tail()
    finally:
        server.stop()
    log.info("conveyor serve: %d rows sent, stopped, in %.1fs", len(rows),
             time.perf_counter() - started)
    return model


def dag_runs(standalone: Standalone) -> dict[str, dict[str, Any]]:
    return {row["run_id"]: dict(row) for row in standalone.home.query(
        "SELECT run_id, state, conf, run_type FROM dag_run WHERE dag_id = ?", DAG_ID)}


def monitor(trained: Trained, store: str, receiver: Receiver) -> subprocess.CompletedProcess[str]:
    return conveyor({**trained.env, WEBHOOK_ENV: receiver.url}, "monitor", URI,
                    "--window", "1h", "--spec", str(trained.spec), "--store", store, "--json")


def test_unshifted_traffic_is_no_drift_no_alert_no_retrain(
        trained: Trained, standalone: Standalone, receiver: Receiver, tmp_path: Path) -> None:
    store = (tmp_path / "store").as_uri()
    serve_and_send(trained, store, trained.features, tmp_path / "serve.log")
    runs_before = dag_runs(standalone)

    done = monitor(trained, store, receiver)

    assert done.returncode == 0, done.stdout + done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["drifted"] is False and verdict["features_drifted"] == []
    assert verdict["rows"] == len(trained.features)  # every request sampled and flushed
    assert verdict["actions"] == {}
    assert receiver.bodies == []
    assert dag_runs(standalone) == runs_before


def test_shifted_traffic_alerts_and_triggers_the_training_dag(
        trained: Trained, standalone: Standalone, receiver: Receiver, tmp_path: Path) -> None:
    store = (tmp_path / "store").as_uri()
    shifted = trained.features.copy()
    shifted[SHIFTED] *= 3
    served = serve_and_send(trained, store, shifted, tmp_path / "serve.log")
    runs_before = dag_runs(standalone)

    done = monitor(trained, store, receiver)

    assert done.returncode == 3, done.stdout + done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["drifted"] is True
    assert verdict["version"] == served["version"]
    assert set(SHIFTED) <= set(verdict["features_drifted"]), verdict["features_drifted"]
    html = Path(urlparse(verdict["report"]).path)
    assert html.name == "report.html" and html.stat().st_size > 1000
    assert html.read_text().lstrip().lower().startswith("<!doctype html")
    report = json.loads(Path(urlparse(verdict["report_json"]).path).read_text())
    assert verdict["rows"] == report["rows"] == len(shifted)
    assert set(SHIFTED) <= set(report["features_drifted"])

    (alert,) = receiver.bodies
    assert alert["path"] == "/hooks/alerts" and alert["type"] == "application/json"
    assert set(alert["body"]) == {"text"}
    assert MODEL in alert["body"]["text"]
    assert all(name in alert["body"]["text"] for name in SHIFTED), alert["body"]["text"]
    assert receiver.url not in done.stdout + done.stderr + html.read_text()

    retrain = verdict["actions"]["retrain"]
    assert retrain["triggered"] is True, retrain
    new = {k: v for k, v in dag_runs(standalone).items() if k not in runs_before}
    assert list(new) == [retrain["dag_run_id"]], new
    run = new[retrain["dag_run_id"]]
    conf = json.loads(run["conf"]) if isinstance(run["conf"], str) else run["conf"]
    assert conf["reason"] == "drift" and conf["model"] == MODEL
    assert conf["version"] == served["version"]
    assert set(SHIFTED) <= set(conf["features_drifted"])
    assert conf["check_id"] == report["check_id"]
    # the triggered run retrains: it finishes (and leaves the scheduler idle for others)
    started = time.perf_counter()
    assert standalone.wait_for_run(DAG_ID, retrain["dag_run_id"]) == "success", \
        standalone.log_tail()
    log.info("the triggered run of %s: success after %.1fs more", DAG_ID,
             time.perf_counter() - started)
