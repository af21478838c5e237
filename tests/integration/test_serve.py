"""``conveyor serve`` from the user's side: real HTTP on 127.0.0.1 against a model trained by
``conveyor run`` once for the module (a home of its own), servers started as subprocesses and
stopped by pid.

Covers the model-server part of issue 10 that the HTTP layer owns: every bad request is a 4xx
naming the column or limit, auth, /ready before and after the model loads, /metrics, equality
with ``mlflow models serve`` for each input format, SIGTERM draining an in-flight request,
``--workers 2``.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conveyor.processes import free_port, stop_group

MODEL = "models:/breast_cancer_classifier/1"
TOKEN = "s3cret-serve-token-do-not-log"
COLUMNS = ["radius_mean", "texture_mean", "perimeter_mean", "area_mean", "smoothness_mean",
           "compactness_mean", "concavity_mean", "concave_points_mean", "symmetry_mean",
           "fractal_dimension_mean", "radius_se", "texture_se", "perimeter_se", "area_se",
           "smoothness_se", "compactness_se", "concavity_se", "concave_points_se",
           "symmetry_se", "fractal_dimension_se", "radius_worst", "texture_worst",
           "perimeter_worst", "area_worst", "smoothness_worst", "compactness_worst",
           "concavity_worst", "concave_points_worst", "symmetry_worst",
           "fractal_dimension_worst"]


# ----------------------------------------------------------------------------- helpers


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(port: int, method: str, path: str, body: Any = None, *,
         headers: dict[str, str] | None = None, timeout: float = 30) -> Reply:
    """One HTTP request; a dict/list body is sent as JSON."""
    sent = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        sent.setdefault("content-type", "application/json")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     response.read())
    finally:
        conn.close()


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    seen: list[int] = field(default_factory=list)  # /ready statuses while starting

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "CONVEYOR_", "PROMETHEUS_"))}
    env.update(CONVEYOR_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return env


def start(home: Path, tmp: Path, *args: str, env: dict[str, str] | None = None,
          timeout: float = 90) -> Server:
    """``conveyor serve MODEL ARGS`` on a free port; returns once /ready answers 200."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "conveyor.cli", "serve", *(args or (MODEL,)),
             "--port", str(port)],
            env=env or _env(home), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    server = Server(port, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}):\n{server.output()}")
        try:
            status = call(port, "GET", "/ready", timeout=5).status
        except OSError:
            time.sleep(0.02)
            continue
        server.seen.append(status)
        if status == 200:
            return server
        time.sleep(0.02)
    stop_group(process, grace=5)
    raise AssertionError(f"not ready in {timeout}s:\n{server.output()}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, seed_mlflow: Callable[[Path], Path],
            wdbc_path: Path) -> Path:
    """A home where ``conveyor run`` trained, registered (v1) and exported the example."""
    home = tmp_path_factory.mktemp("serve-home")
    seed_mlflow(home)
    spec = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"
    done = subprocess.run([sys.executable, "-m", "conveyor.cli", "run", str(spec)],
                          env=_env(home, WDBC_PATH=str(wdbc_path)), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return home


@pytest.fixture(scope="module")
def rows(wdbc_path: Path) -> list[dict[str, float]]:
    import pandas as pd

    frame = pd.read_csv(wdbc_path, header=None).iloc[:, 2:]
    frame.columns = COLUMNS
    return frame.sample(40, random_state=0).to_dict(orient="records")


@pytest.fixture(scope="module")
def server(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default server (no auth, default limits), shared by the module's read-only tests."""
    running = start(trained, tmp_path_factory.mktemp("serve"), MODEL, "--max-rows", "50",
                    "--max-body-bytes", "200000")
    try:
        yield running
    finally:
        stop_group(running.process, grace=10)


@pytest.fixture(scope="module")
def secured(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start(trained, tmp_path_factory.mktemp("serve-auth"), MODEL, "--token-env",
                    "SERVE_TOKEN", env=_env(trained, SERVE_TOKEN=TOKEN))
    try:
        yield running
    finally:
        stop_group(running.process, grace=10)


def split(rows: list[dict[str, float]], columns: list[str] | None = None) -> dict[str, Any]:
    columns = columns or list(rows[0])
    return {"dataframe_split": {"columns": columns,
                                "data": [[r[c] for c in columns] for r in rows]}}


def bodies(rows: list[dict[str, float]]) -> dict[str, tuple[str, bytes]]:
    """The same rows in each input format of MLflow's scoring protocol."""
    import pandas as pd

    shuffled = list(reversed(COLUMNS))  # columns in another order than the signature's
    as_json = {
        "dataframe_split": split(rows, shuffled),
        "dataframe_records": {"dataframe_records": rows},
        "instances": {"instances": rows},
        "inputs": {"inputs": {c: [r[c] for r in rows] for c in COLUMNS}},
    }
    out = {k: ("application/json", json.dumps(v).encode()) for k, v in as_json.items()}
    out["csv"] = ("text/csv", pd.DataFrame(rows)[shuffled].to_csv(index=False).encode())
    return out


# ----------------------------------------------------------------------------- start-up


def test_ready_is_503_until_the_model_is_loaded(server: Server) -> None:
    assert 503 in server.seen, server.seen
    assert server.seen[-1] == 200
    assert server.seen.index(200) > server.seen.index(503)
    assert call(server.port, "GET", "/health").json() == {"status": "alive"}
    assert call(server.port, "GET", "/ping").status == 200  # as mlflow models serve


@pytest.mark.parametrize(("uri", "message"), [
    ("models:/no_such_model@production", "no_such_model"),
    ("models:/breast_cancer_classifier", "models:/<name>@<alias>"),
    ("/nonexistent/export", "no model there"),
])
def test_a_bad_uri_exits_2_before_binding(trained: Path, uri: str, message: str) -> None:
    port = free_port()
    done = subprocess.run([sys.executable, "-m", "conveyor.cli", "serve", uri, "--port",
                           str(port)], env=_env(trained), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert "Uvicorn" not in done.stderr and "Traceback" not in done.stderr


def test_an_unset_token_variable_exits_2(trained: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "conveyor.cli", "serve", MODEL, "--port",
                           str(free_port()), "--token-env", "NOT_SET_ANYWHERE"],
                          env=_env(trained), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "NOT_SET_ANYWHERE" in done.stderr and "Uvicorn" not in done.stderr


# ----------------------------------------------------------------------------- answers


def test_predict_returns_labels_probabilities_name_and_version(server: Server,
                                                               rows: list[dict]) -> None:
    reply = call(server.port, "POST", "/predict", {"records": rows[:3]})
    assert reply.status == 200, reply.body
    out = reply.json()
    assert out["model"] == "breast_cancer_classifier" and out["version"] == "1"
    assert out["classes"] == ["B", "M"]
    assert len(out["predictions"]) == 3 and set(out["predictions"]) <= {"B", "M"}
    for label, proba in zip(out["predictions"], out["probabilities"], strict=True):
        assert abs(sum(proba) - 1) < 1e-9
        assert label == out["classes"][proba.index(max(proba))]
    order = [f["name"] for f in call(server.port, "GET", "/model").json()["features"]]
    as_rows = call(server.port, "POST", "/predict",
                   {"rows": [[r[c] for c in order] for r in rows[:3]]}).json()
    assert as_rows["probabilities"] == out["probabilities"]


def test_openapi_lists_the_signature(server: Server) -> None:
    doc = call(server.port, "GET", "/openapi.json").json()
    row = doc["components"]["schemas"]["Row"]
    assert sorted(row["properties"]) == sorted(COLUMNS)
    assert row["properties"]["radius_mean"]["type"] == "number"
    assert sorted(row["required"]) == sorted(COLUMNS)
    assert "/predict" in doc["paths"]


def test_model_card_and_status_page(server: Server) -> None:
    card = call(server.port, "GET", "/model").json()
    assert (card["name"], card["version"], card["gate"]) == ("breast_cancer_classifier", "1",
                                                             "passed")
    assert card["run_id"] and card["loaded_at"] and card["metrics"]["test_f1"] > 0.8
    assert card["predict_path"] == "compiled" and card["last_refused"] is None
    page = call(server.port, "GET", "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    text = page.body.decode()
    assert "breast_cancer_classifier v1" in text and "test_f1" in text
    assert "no check yet" in text  # no `conveyor monitor` has run in this home
    assert 'href="report"' in text
    report = call(server.port, "GET", "/report")
    assert report.status == 200 and b"<html" in report.body.lower()


def test_status_page_shows_the_latest_drift_verdict(server: Server, trained: Path) -> None:
    """What ``conveyor monitor`` leaves at layout.latest_verdict_uri is on the page."""
    from conveyor.serving.layout import latest_verdict_uri
    from conveyor.store import Store

    root = (trained / "artifacts").as_uri()
    uri = latest_verdict_uri(root, "breast_cancer_classifier")
    Store(root).put_json(uri, {"checked_at": "2026-11-30T08:00:00+00:00", "version": "1",
                               "drifted": True, "features_drifted": ["radius_mean<b>"],
                               "rows": 500, "report": f"{root}/x/report.html"})
    try:
        text = call(server.port, "GET", "/").body.decode()
    finally:
        Store(root).delete(uri)
    assert "no check yet" not in text
    assert '<span class="bad">drift</span>' in text
    assert "radius_mean&lt;b&gt;" in text and "2026-11-30T08:00:00" in text


def test_metrics_count_requests_errors_and_classes(server: Server, rows: list[dict]) -> None:
    def scrape() -> dict[str, float]:
        text = call(server.port, "GET", "/metrics").body.decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    before = scrape()
    for _ in range(3):
        assert call(server.port, "POST", "/invocations", split(rows[:4])).status == 200
    assert call(server.port, "POST", "/invocations", {"dataframe_records": []}).status == 400
    after = scrape()

    def delta(key: str) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert delta('conveyor_requests_total{endpoint="/invocations",status="200"}') == 3
    assert delta('conveyor_request_errors_total{endpoint="/invocations",status="400"}') == 1
    assert delta('conveyor_request_seconds_count{endpoint="/invocations"}') == 4
    assert delta("conveyor_prediction_rows_total") == 12
    assert (delta('conveyor_predictions_total{label="B"}')
            + delta('conveyor_predictions_total{label="M"}')) == 12
    assert after['conveyor_model_info{name="breast_cancer_classifier",run_id="'
                 + call(server.port, "GET", "/model").json()["run_id"] + '",version="1"}'] == 1


# ----------------------------------------------------------------------------- bad requests


def _bad(rows: list[dict]) -> list[tuple[str, Any, dict[str, str], int, str]]:
    one = dict(rows[0])
    mistyped = dict(one, radius_mean="1,234")
    extra = dict(one, patient_name="x")
    missing = {k: v for k, v in one.items() if k != "texture_mean"}
    nulled = dict(one, area_se=None)
    return [
        ("missing column", {"dataframe_records": [missing]}, {}, 400, "'texture_mean'"),
        ("extra column", {"dataframe_records": [extra]}, {}, 400, "'patient_name'"),
        ("split extra", split([extra]), {}, 400, "'patient_name'"),
        ("mistyped", {"dataframe_records": [one, mistyped]}, {}, 400,
         "column 'radius_mean' row 1: expected double, got '1,234'"),
        ("null in a required column", {"inputs": [nulled]}, {}, 400, "'area_se' row 0"),
        ("empty batch", {"dataframe_split": {"columns": COLUMNS, "data": []}}, {}, 400,
         "empty batch"),
        ("too many rows", {"dataframe_records": [one] * 51}, {}, 413, "51 rows is over the "
         "limit of 50"),
        ("malformed JSON", b'{"dataframe_records": [', {"content-type": "application/json"},
         400, "malformed JSON"),
        ("NaN literal", b'{"dataframe_records": [{"radius_mean": NaN}]}',
         {"content-type": "application/json"}, 400, "malformed JSON"),
        ("deeply nested", ('{"inputs": ' + "[" * 5000 + "]" * 5000 + "}").encode(),
         {"content-type": "application/json"}, 400, "nested deeper than 1024"),
        ("nested deeper than the format", {"dataframe_split": {
            "columns": COLUMNS, "data": [[[[1.0]]] * 30]}}, {}, 400, "row 0"),
        ("two formats", {"inputs": [one], "instances": [one]}, {}, 400, "exactly one of"),
        ("no format", {"data": [one]}, {}, 400, "exactly one of"),
        ("wrong content type", b"a=1", {"content-type": "application/x-www-form-urlencoded"},
         415, "application/x-www-form-urlencoded"),
        ("pickle content type", b"\x80\x04", {"content-type": "application/octet-stream"},
         415, "not accepted"),
        ("no content type", b"{}", {}, 415, "(none)"),
        ("body over the limit", b'{"inputs": "' + b"x" * 200_001 + b'"}',
         {"content-type": "application/json"}, 413, "limit of 200000 bytes"),
        ("csv with a text value", b"radius_mean\nabc\n", {"content-type": "text/csv"}, 400,
         "missing column"),
    ]


def test_every_bad_request_is_a_4xx_naming_the_problem(server: Server,
                                                      rows: list[dict]) -> None:
    failures = []
    for name, body, headers, status, message in _bad(rows):
        reply = call(server.port, "POST", "/invocations", body, headers=headers)
        try:
            error = reply.json()["error"]
        except (ValueError, KeyError):
            error = None
        if reply.status != status or error is None or message not in error:
            failures.append(f"{name}: {reply.status} {reply.body[:200]!r}")
        assert b"Traceback" not in reply.body
    assert not failures, "\n".join(failures)
    mistyped_csv = ",".join(COLUMNS) + "\n" + ",".join(["abc"] + ["1.0"] * 29) + "\n"
    reply = call(server.port, "POST", "/invocations", mistyped_csv.encode(),
                 headers={"content-type": "text/csv"})
    assert reply.status == 400
    assert reply.json()["error"] == "column 'radius_mean' row 0: expected double, got 'abc'"
    assert "Traceback" not in server.output()


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(server: Server) -> None:
    """The server counts bytes as they arrive: it answers 413 before the body ends."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"[" * 50_000
        for _ in range(5):  # 250 kB, over the 200 kB limit; the final chunk is never sent
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            time.sleep(0.05)  # read by the server as it comes: nothing unread when it closes
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"] == "body over the limit of 200000 bytes (--max-body-bytes)"


# ----------------------------------------------------------------------------- auth


def test_bearer_token_guards_the_prediction_endpoints(secured: Server,
                                                      rows: list[dict]) -> None:
    body = split(rows[:2])
    for path in ("/invocations", "/predict"):
        payload = body if path == "/invocations" else {"records": rows[:2]}
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
            reply = call(secured.port, "POST", path, payload, headers=headers)
            assert reply.status == 401, (path, headers, reply.body)
            assert "bearer token" in reply.json()["error"]
            assert reply.headers["www-authenticate"] == "Bearer"
        ok = call(secured.port, "POST", path, payload,
                  headers={"authorization": f"Bearer {TOKEN}"})
        assert ok.status == 200, ok.body
    assert call(secured.port, "GET", "/health").status == 200  # probes need no token
    assert call(secured.port, "GET", "/ready").status == 200
    assert TOKEN not in secured.output()


# ----------------------------------------------------------------------------- MLflow parity


@pytest.fixture(scope="module")
def mlflow_server(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``mlflow models serve --env-manager local`` for the same version, started once."""
    port = free_port()
    log = tmp_path_factory.mktemp("mlflow-serve") / "mlflow.log"
    bin_dir = Path(sys.executable).parent  # mlflow runs `uvicorn` from PATH
    env = _env(trained, MLFLOW_TRACKING_URI=f"sqlite:///{trained / 'mlflow.db'}",
               PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    mlflow = bin_dir / "mlflow"
    with log.open("wb") as out:
        process = subprocess.Popen([str(mlflow), "models", "serve", "-m", MODEL,
                                    "--env-manager", "local", "-h", "127.0.0.1", "-p",
                                    str(port), "-w", "1"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "mlflow models serve not up in 120 s"
            try:
                if call(port, "GET", "/ping", timeout=5).status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.25)
        yield port
    finally:
        stop_group(process, grace=10)


def test_predictions_equal_mlflow_models_serve(server: Server, mlflow_server: int,
                                               rows: list[dict]) -> None:
    for name, (kind, body) in bodies(rows).items():
        ours = call(server.port, "POST", "/invocations", body, headers={"content-type": kind})
        theirs = call(mlflow_server, "POST", "/invocations", body,
                      headers={"content-type": kind})
        assert ours.status == theirs.status == 200, (name, ours.body, theirs.body[:300])
        assert ours.json() == theirs.json(), name
        assert set(ours.json()) == {"predictions"} and len(ours.json()["predictions"]) == 40


# ----------------------------------------------------------------------------- processes


def test_sigterm_drains_an_in_flight_request_then_exits_0(trained: Path, tmp_path: Path,
                                                          rows: list[dict]) -> None:
    store = tmp_path / "store"
    server = start(trained, tmp_path, MODEL, "--sample-rate", "1", "--store", str(store))
    body = json.dumps(split(rows[:5])).encode()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
            sock.sendall(body[:100])  # the request is in flight: its body is half sent
            time.sleep(0.5)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert server.process.poll() is None, "exited with a request in flight"
            with pytest.raises(OSError):  # no new connections while draining
                call(server.port, "GET", "/health", timeout=2)
            sock.sendall(body[100:])
            answer = b""
            while not answer.rstrip().endswith(b"]}"):
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert len(json.loads(answer.partition(b"\r\n\r\n")[2])["predictions"]) == 5
        assert server.process.wait(timeout=30) == 0, server.output()
    finally:
        stop_group(server.process, grace=5)
    assert "Traceback" not in server.output()
    # the drained request was sampled (rate 1) and the samples flushed on the way out
    import pandas as pd

    from conveyor.serving.layout import REQUEST_ID, samples_uri

    folder = Path(samples_uri(str(store), "breast_cancer_classifier"))
    files = sorted(folder.rglob("*.parquet"))
    assert files, f"no samples under {folder}"
    sampled = pd.concat(pd.read_parquet(f) for f in files)
    assert len(sampled) == 5 and sampled[REQUEST_ID].nunique() == 1


def test_two_workers_serve_and_count_together(trained: Path, tmp_path: Path,
                                              rows: list[dict]) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = start(trained, tmp_path, MODEL, "--workers", "2",
                   env=_env(trained, TMPDIR=str(scratch)))
    try:
        answered, deadline = 0, time.monotonic() + 60
        while answered < 20:  # a worker still loading its model answers 503: retried
            assert time.monotonic() < deadline, "both workers not ready in 60 s"
            reply = call(server.port, "POST", "/invocations", split(rows[:2]))
            assert reply.status in (200, 503), reply.body
            answered += reply.status == 200
        for _ in range(4):  # whichever worker answers, it counts both workers' requests
            text = call(server.port, "GET", "/metrics").body.decode()
            line = next(x for x in text.splitlines() if x.startswith(
                'conveyor_requests_total{endpoint="/invocations",status="200"}'))
            assert float(line.rpartition(" ")[2]) == 20, text
            assert 'conveyor_model_info{name="breast_cancer_classifier"' in text
        assert list(scratch.glob("conveyor-metrics-*")), "the shared metrics folder"
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0, server.output()
    finally:
        stop_group(server.process, grace=5)
    assert not list(scratch.glob("conveyor-metrics-*")), "the metrics folder is removed on exit"


def test_an_alias_move_under_traffic_loses_no_request(trained: Path, tmp_path: Path,
                                                     rows: list[dict], wdbc_path: Path) -> None:
    """production moves v1 -> v2 while requests flow: every one answers 200, /model and
    /metrics follow the move."""
    import threading

    from mlflow import MlflowClient

    spec = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"
    done = subprocess.run([sys.executable, "-m", "conveyor.cli", "run", str(spec),
                           "model.params.C=0.05"], env=_env(trained, WDBC_PATH=str(wdbc_path)),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    client = MlflowClient(tracking_uri=f"sqlite:///{trained / 'mlflow.db'}")
    name = "breast_cancer_classifier"
    client.set_registered_model_alias(name, "production", "1")
    server = start(trained, tmp_path, f"models:/{name}@production", "--poll-seconds", "0.5")
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def traffic() -> None:
        body = {"records": rows[:3]}
        while not stop.is_set():
            try:
                reply = call(server.port, "POST", "/predict", body, timeout=10)
                statuses.append(reply.status)
                versions.add(reply.json().get("version"))
            except OSError:
                statuses.append(-1)

    worker = threading.Thread(target=traffic)
    try:
        assert call(server.port, "GET", "/model").json()["alias"] == "production"
        worker.start()
        time.sleep(1)
        client.set_registered_model_alias(name, "production", "2")
        deadline = time.monotonic() + 60
        while call(server.port, "GET", "/model").json()["version"] != "2":
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.2)
        time.sleep(1)
    finally:
        stop.set()
        if worker.is_alive():
            worker.join(30)
        metrics = call(server.port, "GET", "/metrics").body.decode()
        stop_group(server.process, grace=10)
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    assert versions == {"1", "2"}
    info = {line.split("version=")[1][1]: line.rpartition(" ")[2] for line in
            metrics.splitlines() if line.startswith("conveyor_model_info{")}
    assert info == {"1": "0.0", "2": "1.0"}, metrics


def test_served_samples_feed_conveyor_monitor_and_its_verdict_shows_on_the_page(
        trained: Path, tmp_path: Path, rows: list[dict]) -> None:
    """serve (every request sampled) -> SIGTERM flushes -> conveyor monitor -> the next
    server's status page shows that check."""
    store = tmp_path / "store"
    args = (MODEL, "--sample-rate", "1", "--store", str(store))
    server = start(trained, tmp_path, *args)
    try:
        for i in range(0, 40, 4):
            assert call(server.port, "POST", "/invocations", split(rows[i:i + 4])).status == 200
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0, server.output()
    finally:
        stop_group(server.process, grace=5)
    checked = subprocess.run([sys.executable, "-m", "conveyor.cli", "monitor", MODEL,
                              "--window", "1h", "--store", str(store)], env=_env(trained),
                             capture_output=True, text=True, timeout=300)
    assert checked.returncode in (0, 3), checked.stdout + checked.stderr
    again = start(trained, tmp_path, *args)
    try:
        page = call(again.port, "GET", "/").body.decode()
    finally:
        stop_group(again.process, grace=10)
    assert "no check yet" not in page
    assert "<td>rows</td><td><code>40</code>" in page, page[-2500:]
    assert ('class="bad">drift</span>' in page) == (checked.returncode == 3)
    assert ('class="ok">no drift</span>' in page) == (checked.returncode == 0)
