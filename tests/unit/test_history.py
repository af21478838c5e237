"""Past runs read from a local Store, and the plan of steps a run executes.

No MLflow: a run with a manifest, or with the local runner's ``_status.json``, is explained
by the Store alone (the MLflow fallback is exercised by tests/integration/test_cli_runs.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import SpecError
from conveyor.runners.history import describe_run, find_run, list_runs
from conveyor.runners.local import plan_steps
from conveyor.store import Store


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store((tmp_path / "artifacts").as_uri())


def add_run(store: Store, pipeline: str, run_id: str, created: str, *,
            manifest: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
            steps: dict[str, dict[str, Any]] | None = None) -> None:
    store.put_json(store.uri(pipeline, run_id, "_run.json"),
                   {"created_at": created, "spec_hash": "h-" + run_id})
    if manifest is not None:
        store.put_json(store.uri(pipeline, run_id, "manifest.json"), manifest)
    if status is not None:
        store.put_json(store.uri(pipeline, run_id, "_status.json"), status)
    for step, record in (steps or {}).items():
        store.put_json(store.uri(pipeline, run_id, step, "_record.json"), record)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: no process has this pid now
    return child.pid


def test_runs_are_listed_newest_first_with_status_and_reason(store: Store) -> None:
    import socket

    add_run(store, "p", "r1", "2026-01-01T10:00:00.000001+00:00",
            manifest={"status": "ok", "metrics": {"test_f1": 0.9}})
    add_run(store, "p", "r2", "2026-01-01T10:00:00.000002+00:00",
            manifest={"status": "rejected", "metrics": {"test_f1": 0.5},
                      "steps": {"gate": {"info": {"reason": "test_f1 = 0.5000, needs >= 0.9"}}}})
    add_run(store, "p", "r3", "2026-01-01T10:00:00.000003+00:00",
            status={"status": "partial", "reason": "stopped as asked after split"},
            steps={"ingest": {"status": "ok"}, "split": {"status": "ok"}})
    add_run(store, "q", "r4", "2026-01-01T10:00:00.000004+00:00",
            status={"status": "running", "pid": dead_pid(), "host": socket.gethostname()},
            steps={"ingest": {"status": "ok"}, "train": {"metrics": {"train_f1": 0.8}}})
    runs = list_runs(store)
    assert [(r["run_id"], r["status"]) for r in runs] == [
        ("r4", "interrupted"), ("r3", "partial"), ("r2", "rejected"), ("r1", "ok")]
    reasons = {r["run_id"]: r["reason"] for r in runs}
    assert reasons["r4"].startswith("its process ") and reasons["r4"].endswith(
        " is gone; stopped after train")
    assert reasons["r3"] == "stopped as asked after split"
    assert reasons["r2"] == "test_f1 = 0.5000, needs >= 0.9" and reasons["r1"] == ""
    assert runs[0]["metrics"] == {"train_f1": 0.8} and runs[3]["metrics"] == {"test_f1": 0.9}
    assert runs[0]["pipeline"] == "q" and runs[0]["uri"] == store.uri("q", "r4")
    assert [r["run_id"] for r in list_runs(store, ["p"], limit=2)] == ["r3", "r2"]


def test_a_run_of_this_process_is_running(store: Store) -> None:
    import os
    import socket

    add_run(store, "p", "r1", "2026-01-01T10:00:00+00:00",
            status={"status": "running", "pid": os.getpid(), "host": socket.gethostname()})
    assert [(r["status"], r["reason"]) for r in list_runs(store)] == [
        ("running", "running before any step")]


def test_a_run_without_manifest_note_or_mlflow_run_is_incomplete(store: Store) -> None:
    add_run(store, "p", "r1", "2026-01-01T10:00:00+00:00", steps={"ingest": {}})
    run = list_runs(store)[0]
    assert (run["status"], run["reason"]) == (
        "incomplete", "stopped after ingest (no MLflow run to ask why)")


def test_find_run_names_the_pipeline_or_says_why_not(store: Store) -> None:
    add_run(store, "p", "r1", "2026-01-01T10:00:00+00:00", manifest={"status": "ok"})
    add_run(store, "q", "r1", "2026-01-01T10:00:00+00:00", manifest={"status": "ok"})
    add_run(store, "q", "r2", "2026-01-01T10:00:00+00:00", manifest={"status": "ok"})
    assert find_run(store, "r2") == "q"
    assert find_run(store, "r1", ["p"]) == "p"
    with pytest.raises(SpecError, match="run r1 exists in pipelines p, q; name the spec too"):
        find_run(store, "r1")
    with pytest.raises(SpecError) as caught:
        find_run(store, "r9", ["p"])
    assert str(caught.value) == (f"no run r9 of pipeline p under {store.root}; `conveyor runs` "
                                 "lists them")


def test_describe_run_reads_steps_model_and_export(store: Store) -> None:
    add_run(store, "p", "r1", "2026-01-01T10:00:00+00:00",
            manifest={"status": "ok", "finished_at": "2026-01-01T10:01:00+00:00",
                      "metrics": {"test_f1": 0.97}},
            steps={"ingest": {"status": "ok", "duration": 0.5},
                   "evaluate": {"status": "ok", "outputs": {"report": {"uri": "file:///r"}}},
                   "register": {"info": {"name": "m", "version": "3", "secret": "x"}}})
    run = describe_run(store, "p", "r1")
    assert [s["step"] for s in run["steps"]] == ["ingest", "evaluate", "register"]
    assert run["status"] == "ok" and run["spec_hash"] == "h-r1"
    assert run["report"] == "file:///r" and run["model"] == {"name": "m", "version": "3"}
    assert run["export"] is None and run["manifest"] == store.uri("p", "r1", "manifest.json")
    assert run["metrics"] == {"test_f1": 0.97}


# --------------------------------------------------------------------------- the plan


def test_plan_of_a_whole_run_forces_nothing() -> None:
    names, forced = plan_steps()
    assert names[:3] == ["ingest", "validate", "split"] and names[-1] == "export"
    assert forced == set()


def test_plan_until_stops_after_that_step() -> None:
    assert plan_steps(until="split") == (["ingest", "validate", "split"], set())


def test_plan_from_forces_that_step_and_the_ones_after() -> None:
    names, forced = plan_steps(start="validate", until="split")
    assert names == ["ingest", "validate", "split"] and forced == {"validate", "split"}
    all_names, forced_all = plan_steps(start="train")
    assert forced_all == set(all_names[all_names.index("train"):])


def test_plan_of_one_step_forces_it() -> None:
    assert plan_steps(only="train") == (["train"], {"train"})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"until": "trian"}, "--until 'trian' is not a step; steps are ingest, validate, split"),
    ({"start": "train", "until": "split"}, "--from train comes after --until split"),
])
def test_plan_refuses_a_wrong_step(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        plan_steps(**kwargs)
    assert str(caught.value).startswith(message)
