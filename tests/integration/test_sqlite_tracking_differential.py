"""The stdlib writer of the embedded store writes the rows MLflow writes (ADR 0049).

The same sequence of ``Tracker`` calls runs once through ``MlflowClient``
(``CONVEYOR_DIRECT_SQLITE=0``) into one fresh database and once through
``conveyor.tracking.sqlite_tracking`` into another; every table is dumped (ids, uuids and
timestamps replaced by what they name) and must be equal, and so must the artifact files.
The writer's runs are then read back through ``MlflowClient`` and MLflow's REST handlers, as
the UI and ``conveyor runs`` read them.
"""

from __future__ import annotations

import math
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from conveyor.tracking import Tracker, mlflow_scope
from conveyor.tracking.sqlite_tracking import DIRECT_VARIABLE, Unsupported, open_writer

pytestmark = pytest.mark.integration

_TIMES = {"creation_time", "last_update_time", "start_time", "end_time", "timestamp",
          "deleted_time", "last_updated_time"}


def _frame() -> Any:
    import pandas as pd

    return pd.DataFrame({"id": [1, 2, 3], "x": [0.5, None, 2.0], "flag": [True, False, True],
                         "label": ["M", "B", "M"], "count": pd.array([1, 2, 3], dtype="int32")})


def _sequence(uri: str) -> None:
    """Every run-level call a pipeline makes, and the awkward cases of each."""
    tracker = Tracker(uri, "diff-experiment")
    tracker.attach("run-1", tags={"conveyor.pipeline": "p", "conveyor.spec_hash": "abc"})
    params = {f"p{i:03d}": f"value {i}" for i in range(150)}  # two batches
    params["unicode"] = "éß → ✓"
    tracker.log_params(params)
    tracker.log_params({**params, "late": "1"})  # only the new one is logged
    tracker.log_text('{"spec": 1}', "spec.json")
    tracker.log_dataset(_frame(), source="file:///data/table.csv", name="p", digest="d" * 64,
                        context="raw", targets="label", rows=3000)
    tracker.log_metrics({"test_f1": 0.95, "cv_nan": math.nan, "big": math.inf,
                         "small": -math.inf})
    tracker.log_metrics({"test_f1": 0.97})  # latest_metrics moves on (a later timestamp)
    tracker.set_tags({"conveyor.step.ingest": "ok", "conveyor.data_hash": "d" * 64})
    tracker.set_tags({"conveyor.step.ingest": "cached", "mlflow.runName": "renamed"})
    tracker.log_bytes(b"\x89PNG not really", "evaluate/roc.png")
    tracker.log_bytes(b"<html></html>", "gate/report.html")
    tracker.end("FINISHED")
    second = Tracker(uri, "diff-experiment")
    second.attach("run-2", tags={"conveyor.pipeline": "p"})
    # the same data again: the dataset row is reused, only the input is new
    second.log_dataset(_frame(), source="file:///data/table.csv", name="p", digest="d" * 64,
                       context="raw", targets="label", rows=3000)
    second.log_dataset(_frame().head(2), source="s3://bucket/key.csv", name="p",
                       digest="e" * 64, context="test", targets="missing")
    second.end("FAILED")
    again = Tracker(uri, "diff-experiment")  # a resumed run: found by its tag, RUNNING again
    assert again.attach("run-1", tags={}) == tracker.run_id
    again.log_metrics({"test_f1": 0.96})
    again.end("KILLED")
    Tracker(uri, "other-experiment").attach("run-3", tags={})


def _dump(database: Path, home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, with ids and uuids replaced by what they name."""
    with closing(sqlite3.connect(database)) as db:
        names: dict[str, str] = {}
        for run_id, name in db.execute("SELECT r.run_uuid, t.value FROM runs r JOIN tags t ON "
                                       "t.run_uuid = r.run_uuid AND t.key = 'conveyor.run_id'"):
            names[run_id] = f"<run {name}>"
        for uuid_, name, digest in db.execute("SELECT dataset_uuid, name, digest FROM datasets"):
            names[uuid_] = f"<dataset {name} {digest[:4]}>"
        for uuid_, source, dest in db.execute("SELECT input_uuid, source_id, destination_id "
                                              "FROM inputs"):
            names[uuid_] = f"<input {names.get(source, source)} {names.get(dest, dest)}>"

        def plain(column: str, value: Any) -> Any:
            if column in _TIMES:
                return value is not None
            if isinstance(value, str):
                for raw, label in names.items():
                    value = value.replace(raw, label)
                return value.replace(str(home), "<home>")
            return value

        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "ORDER BY name")]
        out = {}
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')
            columns = [c[0] for c in cursor.description]
            out[table] = sorted((tuple(plain(c, v) for c, v in zip(columns, row, strict=True))
                                 for row in cursor), key=repr)
    return out


def _files(home: Path) -> dict[str, bytes]:
    root = home / "mlartifacts"
    names = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            relative = str(path.relative_to(root))
            for part in path.relative_to(root).parts:
                if len(part) == 32:  # a run id: its run's name instead
                    relative = relative.replace(part, "<run>")
            names[relative] = path.read_bytes()
    return names


@pytest.fixture
def two_homes(tmp_path: Path, seed_mlflow: Any, monkeypatch: pytest.MonkeyPatch
              ) -> tuple[Path, Path]:
    """The same sequence through MlflowClient (``through``) and the writer (``direct``)."""
    through, direct = tmp_path / "through", tmp_path / "direct"
    for home in (through, direct):
        seed_mlflow(home)
    monkeypatch.chdir(tmp_path)  # MLflow's Default experiment lands in ./mlruns
    monkeypatch.setenv(DIRECT_VARIABLE, "0")
    _sequence(f"sqlite:///{through / 'mlflow.db'}")
    monkeypatch.delenv(DIRECT_VARIABLE)
    assert open_writer(f"sqlite:///{direct / 'mlflow.db'}") is not None
    _sequence(f"sqlite:///{direct / 'mlflow.db'}")
    return through, direct


def test_the_writer_writes_the_rows_and_files_mlflow_writes(two_homes: tuple[Path, Path]
                                                            ) -> None:
    through, direct = two_homes
    expected = _dump(through / "mlflow.db", through)
    found = _dump(direct / "mlflow.db", direct)
    assert sum(len(rows) for rows in expected.values()) > 150  # the sequence logged things
    assert found.keys() == expected.keys()
    for table in expected:
        assert found[table] == expected[table], table
    assert _files(direct) == _files(through)
    assert "spec.json" in " ".join(_files(direct))


def test_the_writers_runs_read_back_through_mlflow(two_homes: tuple[Path, Path]) -> None:
    from mlflow import MlflowClient

    _, direct = two_homes
    uri = f"sqlite:///{direct / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("diff-experiment")
    assert experiment.artifact_location == (direct / "mlartifacts" / "diff-experiment").as_uri()
    found = client.search_runs([experiment.experiment_id],
                               filter_string="tags.`conveyor.run_id` = 'run-1'")
    assert len(found) == 1
    run = client.get_run(found[0].info.run_id)
    assert run.info.status == "KILLED" and run.info.end_time is not None
    assert run.info.run_name == "renamed"
    assert run.data.params["unicode"] == "éß → ✓" and len(run.data.params) == 152
    assert run.data.metrics["test_f1"] == 0.96  # step 0, the newest timestamp wins
    assert math.isnan(run.data.metrics["cv_nan"]) and run.data.metrics["big"] > 1e300
    assert run.data.tags["conveyor.step.ingest"] == "cached"
    history = client.get_metric_history(run.info.run_id, "test_f1")
    assert sorted(m.value for m in history) == [0.95, 0.96, 0.97]
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == "d" * 36
    assert [(t.key, t.value) for t in dataset_input.tags] == [("mlflow.data.context", "raw")]
    assert '"num_rows": 3000' in dataset_input.dataset.profile
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == [
        "evaluate", "gate", "spec.json"]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "evaluate")] == [
        "evaluate/roc.png"]
    local = client.download_artifacts(run.info.run_id, "gate/report.html", str(direct))
    assert Path(local).read_bytes() == b"<html></html>"
    second = client.search_runs([experiment.experiment_id],
                                filter_string="tags.`conveyor.run_id` = 'run-2'")[0]
    assert second.info.status == "FAILED"
    assert sorted(i.dataset.digest[0] for i in second.inputs.dataset_inputs) == ["d", "e"]


def test_the_ui_handlers_serve_the_writers_runs(two_homes: tuple[Path, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's REST handlers (what ``mlflow ui`` serves) read the runs the writer wrote."""
    _, direct = two_homes
    uri = f"sqlite:///{direct / 'mlflow.db'}"
    from flask import Flask
    from mlflow.server import handlers

    monkeypatch.setattr(handlers, "_tracking_store", None)
    monkeypatch.setattr(handlers, "_model_registry_store", None)
    monkeypatch.setenv("_MLFLOW_SERVER_FILE_STORE", uri)
    monkeypatch.setenv("_MLFLOW_SERVER_ARTIFACT_ROOT", str(direct / "mlruns"))
    with mlflow_scope(uri):  # the handlers point MLflow's globals at the store
        handlers.initialize_backend_stores(uri, uri, str(direct / "mlruns"))
        app = Flask(__name__)
        for rule, view, methods in handlers.get_endpoints():
            app.add_url_rule(rule, view_func=view, methods=methods)
        web = app.test_client()
        found = web.post("/api/2.0/mlflow/runs/search", json={
            "experiment_ids": ["1"], "filter": "tags.`conveyor.run_id` = 'run-1'"})
        assert found.status_code == 200, found.get_data(as_text=True)
        (run,) = found.get_json()["runs"]
        assert run["info"]["status"] == "KILLED"
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        assert params["late"] == "1"
        assert run["inputs"]["dataset_inputs"][0]["dataset"]["source_type"] == "local"
        artifacts = web.get("/api/2.0/mlflow/artifacts/list",
                            query_string={"run_id": run["info"]["run_id"]})
        assert artifacts.status_code == 200
        assert {f["path"] for f in artifacts.get_json()["files"]} == {"evaluate", "gate",
                                                                       "spec.json"}


def test_an_unknown_revision_or_a_workspace_falls_back_to_mlflow(
        tmp_path: Path, seed_mlflow: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    database = seed_mlflow(tmp_path / "home")
    uri = f"sqlite:///{database}"
    assert open_writer(uri) is not None
    monkeypatch.setenv("MLFLOW_WORKSPACE", "team-a")
    assert open_writer(uri) is None
    monkeypatch.delenv("MLFLOW_WORKSPACE")
    with closing(sqlite3.connect(database)) as db, db:
        db.execute("UPDATE alembic_version SET version_num = 'f00000000000'")
    assert open_writer(uri) is None
    assert open_writer("postgresql://u@127.0.0.1/db") is None


def test_a_call_the_writer_does_not_know_goes_to_mlflow_unchanged(
        tmp_path: Path, seed_mlflow: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad tag key is MLflow's to refuse: the writer leaves it, the client raises."""
    from conveyor.errors import TrackingError

    database = seed_mlflow(tmp_path / "home")
    tracker = Tracker(f"sqlite:///{database}", "e")
    tracker.attach("r", tags={})
    writer = open_writer(tracker.uri)
    with pytest.raises(Unsupported):
        writer.set_tags(tracker.run_id, {"bad\nkey": "v"})
    with pytest.raises(TrackingError, match=r"setting tags at MLflow .* failed"):
        tracker.set_tags({"bad\nkey": "v"})
    tracker.set_tags({"k": "x" * 9000})  # MLflow truncates a long value; the writer leaves it
    with closing(sqlite3.connect(database)) as db:
        (value,) = db.execute("SELECT value FROM tags WHERE key = 'k'").fetchone()
    assert len(value) == 8000


def _busy_writer(uri: str, name: str, direct: bool) -> str:
    """One process logging 40 batches to its own run, through the writer or MlflowClient."""
    os.environ[DIRECT_VARIABLE] = "1" if direct else "0"
    tracker = Tracker(uri, "shared")
    tracker.attach(name, tags={"who": name})
    for i in range(40):
        tracker.log_metrics({"loss": 1.0 / (i + 1), f"m{i}": float(i)})
        tracker.set_tags({"progress": str(i)})
    tracker.end("FINISHED")
    return tracker.run_id


def test_processes_share_the_database_with_mlflow(tmp_path: Path, seed_mlflow: Any) -> None:
    """Three writer processes and one MlflowClient process log at once to one file: every
    transaction waits its turn (BEGIN IMMEDIATE, busy timeout), none fails or is lost."""
    import multiprocessing

    from mlflow import MlflowClient

    uri = f"sqlite:///{seed_mlflow(tmp_path / 'home')}"
    Tracker(uri, "shared").experiment_id  # noqa: B018 - created once, before the race
    jobs = [(uri, f"run-{i}", i < 3) for i in range(4)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        run_ids = pool.starmap(_busy_writer, jobs)
    client = MlflowClient(tracking_uri=uri)
    for run_id in run_ids:
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["progress"] == "39"
        assert run.data.metrics["loss"] == 1.0 / 40
        assert len(run.data.metrics) == 41
        assert len(client.get_metric_history(run_id, "loss")) == 40
