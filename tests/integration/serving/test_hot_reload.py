"""Hot reload against real MLflow: the holder follows ``production`` as it moves, refuses a
tampered version and keeps serving, and keeps serving while MLflow cannot be reached.

Models are trained and promoted through the public API (``conveyor.run``,
``conveyor.promote``) on the test's own home; the tampered version is altered in the
``mlartifacts`` folder after registration and put in production by hand (as an operator
could, in MLflow's UI), so only the server's own check stands between it and requests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import conveyor
from conveyor.errors import BadInputError
from conveyor.processes import free_port, stop_group
from conveyor.serving.model import ModelRefusedError
from conveyor.serving.runtime import ModelHolder, ServingModel

pytestmark = pytest.mark.slow
SPEC = Path(__file__).resolve().parents[3] / "examples" / "breast_cancer" / "pipeline.yaml"
MODEL = "breast_cancer_classifier"
PRODUCTION_URI = f"models:/{MODEL}@production"


def train(home: Path, *overrides: str) -> str:
    result = conveyor.run(SPEC, overrides, profile="sklearn", home=home)
    assert result.status == "ok", result
    return str(result.model_uri).rpartition("/")[2]


def client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class Traffic:
    """Requests against whatever ``holder.current`` is, from another thread, as a server's."""

    def __init__(self, holder: ModelHolder) -> None:
        self.holder = holder
        self.errors: list[str] = []
        self.answered: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            model = self.holder.current  # one read per request: it finishes on that model
            assert model is not None
            try:
                X = model.as_array(model.check_rows)
                prediction = model.predict(X[:1])
                assert prediction.proba.shape == (1, 2)
                self.answered[model.identity.version] = \
                    self.answered.get(model.identity.version, 0) + 1
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.002)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_holder_follows_production_and_refuses_a_tampered_version(conveyor_home: Path) -> None:
    home = conveyor_home
    assert train(home) == "1"
    assert conveyor.promote(spec=SPEC, home=home).production_after == "1"
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    events: list[tuple[str, dict[str, Any]]] = []
    holder = ModelHolder(PRODUCTION_URI, tracking_uri=tracking, poll_seconds=0.2,
                         on_event=lambda kind, info: events.append((kind, info)))
    first = holder.load_now()
    assert isinstance(first, ServingModel) and first.identity.version == "1"
    assert first.compiled, first.fallback_reason  # StandardScaler + LogisticRegression
    assert first.numeric and len(first.check_rows) == 5
    assert holder.status["version"] == "1" and holder.status["loaded_at"]
    assert [k for k, _ in events] == ["loaded"]
    X = first.as_array(first.check_rows)
    assert first.predict(X).labels.tolist() == first.predict_sklearn(X).labels.tolist()

    holder.start()
    try:
        with Traffic(holder) as traffic:
            # v2 is better on the hold-out set: promote moves production to it
            assert train(home, "model.params.C=0.3") == "2"
            assert conveyor.promote(spec=SPEC, home=home).production_after == "2"
            wait_for(lambda: holder.current.identity.version == "2", "the swap to v2")
            assert ("swapped", {"uri": PRODUCTION_URI, "version": "2", "previous_version": "1",
                                "sha256": holder.current.identity.sha256,
                                "compiled": True}) in events
            assert first.identity.version == "1"  # a request holding v1 still has v1

            # v3: registered, then its model file altered on disk, then put in production
            assert train(home, "model.params.C=3.0") == "3"
            mlflow = client(tracking)
            source = mlflow.get_model_version(MODEL, "3").source  # models:/m-<id>
            model_id = source.removeprefix("models:/")
            (artifact,) = home.glob(f"mlartifacts/*/models/{model_id}/artifacts/model.skops")
            artifact.write_bytes(artifact.read_bytes() + b"\0tampered")
            mlflow.set_registered_model_alias(MODEL, "production", "3")
            wait_for(lambda: (holder.status["last_refused"] or {}).get("version") == "3",
                     "v3 refused")
            time.sleep(0.5)  # a few more polls: the refused version is not retried at once
        refused = holder.status["last_refused"]
        assert "sha256" in refused["reason"] and "altered" in refused["reason"], refused
        assert holder.current.identity.version == "2"
        assert [k for k, _ in events].count("refused") == 1, events
        assert traffic.errors == [] and traffic.answered.get("1") and traffic.answered.get("2")
        assert holder.current.predict(X).proba.shape == (5, 2)
    finally:
        holder.stop()


def test_an_export_folder_is_followed_and_a_tampered_export_refused(conveyor_home: Path
                                                                    ) -> None:
    home = conveyor_home
    train(home)
    exports = home / "exports" / "breast_cancer"  # the export root: latest.json names a run
    holder = ModelHolder(str(exports))
    model = holder.load_now()
    assert model.identity.version == "1" and model.compiled
    assert holder.poll() is False  # nothing moved
    train(home, "model.params.C=0.3")  # a new export: latest.json moves
    assert holder.poll() is True and holder.current.identity.version == "2"
    (skops,) = (Path(holder.current.identity.location.removeprefix("file://"))
                ).glob("model.skops")
    skops.write_bytes(skops.read_bytes()[:-10])  # truncated in place
    with pytest.raises(ModelRefusedError, match="sha256"):
        ModelHolder(str(exports)).load_now()
    assert holder.current.predict(holder.current.as_array(model.check_rows)).proba.shape == (
        5, 2)  # the model already in memory is not affected
    with pytest.raises(BadInputError):
        ModelHolder(f"models:/{MODEL}@no_such_alias",
                    tracking_uri=f"sqlite:///{home / 'mlflow.db'}").load_now()
    with pytest.raises(BadInputError):
        ModelHolder(str(home / "nothing-here")).load_now()


@pytest.fixture()
def mlflow_server(conveyor_home: Path) -> Any:
    """``mlflow server`` on 127.0.0.1 over the home's SQLite database; ``stop()`` kills it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
    log = conveyor_home / "mlflow-server.log"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
         "--port", str(port), "--backend-store-uri", f"sqlite:///{conveyor_home / 'mlflow.db'}",
         "--workers", "1"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            stop_group(process)
            pytest.fail("mlflow server did not start:\n" + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5):
                break
        except OSError:
            time.sleep(0.5)

    class Server:
        uri = url

        @staticmethod
        def stop() -> None:
            stop_group(process)

    try:
        yield Server
    finally:
        stop_group(process)


def test_an_unreachable_mlflow_keeps_the_current_model(
        conveyor_home: Path, mlflow_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    train(conveyor_home)
    conveyor.promote(spec=SPEC, home=conveyor_home)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast, not in minutes
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    events: list[tuple[str, dict[str, Any]]] = []
    holder = ModelHolder(PRODUCTION_URI, tracking_uri=mlflow_server.uri, poll_seconds=0.2,
                         on_event=lambda kind, info: events.append((kind, info)))
    model = holder.load_now()
    assert model.identity.version == "1"
    assert holder.poll() is False and holder.status["last_error"] is None  # reachable
    mlflow_server.stop()
    holder.start()
    try:
        wait_for(lambda: sum(k == "poll_failed" for k, _ in events) >= 2, "failed polls",
                 timeout=60)
    finally:
        holder.stop()
    assert holder.current is model
    assert holder.status["last_error"] and holder.status["version"] == "1"
    X = model.as_array(model.check_rows)
    np.testing.assert_allclose(holder.current.predict(X).proba,
                               model.predict_sklearn(X).proba, rtol=0, atol=1e-9)


def test_a_version_failing_its_check_rows_is_refused_and_the_old_one_serves(
        conveyor_home: Path, tmp_path: Path) -> None:
    """A Store model folder rewritten with a model whose own input example it cannot score:
    its files match their (new) sha256, so only the check rows can catch it."""
    import json
    import shutil

    from conveyor.store import Store

    train(conveyor_home)
    (exported,) = (conveyor_home / "exports" / "breast_cancer").glob("*/model")
    good = tmp_path / "good"
    shutil.copytree(exported, good, ignore=shutil.ignore_patterns("_conveyor_dir.json"))
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    example = json.loads((bad / "input_example.json").read_text())
    example["data"] = [["not a number"] * len(row) for row in example["data"]]
    (bad / "input_example.json").write_text(json.dumps(example))

    store = Store((tmp_path / "store").as_uri())
    folder = store.uri("models", "diagnosis")
    store.put_dir(folder, good)
    events: list[tuple[str, dict[str, Any]]] = []
    holder = ModelHolder(folder, on_event=lambda kind, info: events.append((kind, info)))
    serving = holder.load_now()
    store.put_dir(folder, bad)  # what the URI names now has another sha256
    assert holder.poll() is False
    refused = holder.status["last_refused"]
    assert "cannot score its check rows" in refused["reason"], refused
    assert holder.current is serving
    assert [k for k, _ in events] == ["loaded", "refused"]
    assert holder.poll() is False and len(events) == 2  # not retried on every poll
