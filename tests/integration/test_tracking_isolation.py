"""Two pipelines with different homes run in one process and never see each other's MLflow.

The Tracker passes its tracking and registry URI to an explicit ``MlflowClient``; the flavour
calls that read MLflow's globals (log_model, models:/ downloads, registering a models:/
source) set them only for that call, under a lock. So two specs with different registries
run one after the other and in two threads at once, each store holds only its own run and
version, and MLflow's globals and ``os.environ`` are as they were (ADR 0026).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from conveyor.runners.local import LocalRunner, RunSummary
from conveyor.spec import load_spec

pytestmark = pytest.mark.integration

SPEC = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"
MODEL = "breast_cancer_classifier"


def mlflow_globals() -> dict[str, Any]:
    """MLflow's process-wide URIs (None when unset) and every environment variable.

    scikit-learn sets two ``KMP_*`` variables when it is first imported: imported here, so
    that only what the runs do is compared.
    """
    import mlflow  # noqa: F401 - the modules below are MLflow's
    import sklearn  # noqa: F401
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return {"tracking_uri": tracking_utils._tracking_uri,
            "registry_uri": registry_utils._registry_uri,
            **{f"env {k}": v for k, v in os.environ.items()}}


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()
            if before.get(k) != after.get(k)}


def run(overrides: list[str] = ()) -> RunSummary:  # type: ignore[assignment]
    summary = LocalRunner(load_spec(SPEC, list(overrides), profile="sklearn")).run()
    assert summary.status == "ok", summary
    return summary


def contents(db: Path) -> tuple[set[str], list[Any], list[str]]:
    """The Conveyor run ids, the registered versions and the experiments' artifact roots."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments])
    versions = client.search_model_versions(f"name = '{MODEL}'")
    return ({r.data.tags.get("conveyor.run_id", "") for r in runs}, versions,
            [e.artifact_location for e in experiments if e.name != "Default"])


def check_alone(db: Path, summary: RunSummary, root: Path) -> None:
    run_ids, versions, locations = contents(db)
    assert run_ids == {summary.run_id}
    assert [v.tags["conveyor.run_id"] for v in versions] == [summary.run_id]
    assert locations and all(loc.startswith(root.as_uri()) for loc in locations), locations


def in_two_threads(work: Any) -> dict[str, Any]:
    """``work(name)`` for "a" and "b" in two threads started together; their results.

    Raises the first exception either thread raised.
    """
    results: dict[str, Any] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def target(name: str) -> None:
        try:
            start.wait(timeout=60)
            results[name] = work(name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    return results


def test_two_homes_one_after_the_other(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    home = os.environ["CONVEYOR_HOME"]
    before = mlflow_globals()
    summaries = {}
    for name in ("a", "b"):
        monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / name))
        summaries[name] = run()
        monkeypatch.setenv("CONVEYOR_HOME", home)
        # nothing the run set lingers: the next spec's default is its own home
        assert changed(before, mlflow_globals()) == {}
    assert summaries["a"].run_id != summaries["b"].run_id
    for name, summary in summaries.items():
        check_alone(tmp_path / name / "mlflow.db", summary, tmp_path / name)


def test_two_registries_in_two_threads_at_once(tmp_path: Path) -> None:
    import mlflow

    # a user's own fluent setting, which Conveyor must neither use nor change
    user_uri = f"sqlite:///{tmp_path / 'user' / 'mlflow.db'}"
    (tmp_path / "user").mkdir()
    mlflow.set_tracking_uri(user_uri)
    try:
        before = mlflow_globals()

        def work(name: str) -> RunSummary:
            home = tmp_path / name
            return run([f"tracking.uri=sqlite:///{home / 'mlflow.db'}",
                        f"store.root={(home / 'artifacts').as_uri()}",
                        f"export.uri={(home / 'exports').as_uri()}"])

        results = in_two_threads(work)
        assert changed(before, mlflow_globals()) == {}
        assert mlflow.get_tracking_uri() == user_uri
    finally:
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    for name, summary in results.items():
        check_alone(tmp_path / name / "mlflow.db", summary, tmp_path / name)
    assert set(results) == {"a", "b"}
    assert not (tmp_path / "user" / "mlflow.db").exists()  # the user's store was never used


def test_public_api_runs_two_homes_in_two_threads_at_once(tmp_path: Path) -> None:
    """``conveyor.run(..., home=...)`` in two threads at once, with no URI spelled out: each
    home holds only its own run and version, and nothing process-wide changed (the home is
    given per call through a context variable, not ``CONVEYOR_HOME``)."""
    import conveyor

    fixture_home = Path(os.environ["CONVEYOR_HOME"])
    before = mlflow_globals()
    results = in_two_threads(
        lambda name: conveyor.run(SPEC, profile="sklearn", home=tmp_path / name))
    assert changed(before, mlflow_globals()) == {}
    for name in ("a", "b"):
        result = results[name]
        assert result.status == "ok"
        assert result.tracking_uri == f"sqlite:///{tmp_path / name / 'mlflow.db'}"
        assert result.run_uri.startswith((tmp_path / name / "artifacts").as_uri())
        run_ids, versions, _ = contents(tmp_path / name / "mlflow.db")
        assert run_ids == {result.run_id}
        assert [v.tags["conveyor.run_id"] for v in versions] == [result.run_id]
    assert results["a"].run_id != results["b"].run_id
    assert not (fixture_home / "artifacts").exists()  # the process's own home was not used
