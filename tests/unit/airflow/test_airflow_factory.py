"""The DAG factory, loader, run ids and provider info, in-process (no metadata DB).

These build real ``airflow.sdk`` DAG objects from the real breast-cancer spec; the DAG runs
themselves are in ``tests/integration/airflow``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip("airflow.sdk")

from conveyor.airflow.factory import build_dag, to_schedule
from conveyor.airflow.loader import (
    ConveyorImportError,
    build_dags,
    find_specs,
    publish,
    raise_spec_errors,
)
from conveyor.airflow.operators import ConveyorStepOperator, runtime_overrides
from conveyor.airflow.run_ids import RUN_ID_PATTERN, conveyor_run_id

REPO = Path(__file__).resolve().parents[3]
SPEC = REPO / "examples" / "breast_cancer" / "pipeline.yaml"
STEPS = ["ingest", "validate", "split", "train", "evaluate", "gate", "register", "export"]


# ----------------------------------------------------------------------------- run ids


@pytest.mark.parametrize("run_id", [
    "manual__2026-11-23T10:38:21.991560+00:00",
    "scheduled__2026-01-01T00:00:00+00:00",
    "a" * 300,
    "::++::",
    "ünïcödé run",
])
def test_conveyor_run_id_is_a_safe_key_and_stable(run_id: str) -> None:
    derived = conveyor_run_id("breast_cancer", run_id)
    assert RUN_ID_PATTERN.match(derived)
    assert derived == conveyor_run_id("breast_cancer", run_id)


def test_conveyor_run_ids_differ_when_only_unsafe_characters_differ() -> None:
    assert conveyor_run_id("d", "a:b") != conveyor_run_id("d", "a+b")
    assert conveyor_run_id("d1", "x") != conveyor_run_id("d2", "x")


def test_conveyor_run_id_refuses_empty_parts() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        conveyor_run_id("", "manual__x")


# ----------------------------------------------------------------------------- overrides


def test_runtime_overrides_keep_changed_params_and_every_dotted_conf_key() -> None:
    defaults = {"model.params.C": 1.0, "model.params.max_iter": 1000}
    params = {"model.params.C": 0.5, "model.params.max_iter": 1000, "plain": 1}
    conf = {"split.seed": 7, "model.params.C": 0.5, "note": "x"}
    assert runtime_overrides(params, conf, defaults) == [
        "model.params.C=0.5", "split.seed=7"]


def test_runtime_overrides_are_empty_for_an_untouched_trigger_form() -> None:
    defaults = {"model.params.C": 1.0}
    assert runtime_overrides(dict(defaults), {}, defaults) == []


def test_runtime_override_values_round_trip_through_the_spec_loader() -> None:
    from conveyor.spec import load_spec

    conf = {"model.params.C": 0.25, "evaluate.metrics": ["accuracy", "f1"],
            "registry.name": "007", "tags": ["ignored: no dot, not a spec path"]}
    loaded = load_spec(SPEC, runtime_overrides({}, conf, {}))
    assert loaded.spec.model.params["C"] == 0.25
    assert loaded.spec.evaluate.metrics == ["accuracy", "f1"]
    assert loaded.spec.registry.name == "007"
    assert loaded.spec.tags == ["example", "classification"]


# ----------------------------------------------------------------------------- factory


@pytest.fixture()
def dag(breast_cancer_spec: Path):
    return build_dag(breast_cancer_spec)


def test_one_task_per_step_with_the_step_graph_as_dependencies(dag) -> None:
    from conveyor.steps import pipeline_steps

    assert dag.dag_id == "breast_cancer"
    assert sorted(dag.task_dict) == sorted(STEPS)
    for step in pipeline_steps():
        assert set(step.upstream) <= dag.task_dict[step.name].upstream_task_ids
    # register is a sink of the step graph; export, the last step, waits for it and finishes.
    assert "register" in dag.task_dict["export"].upstream_task_ids
    finishing = [t.task_id for t in dag.tasks if t.finish]
    assert finishing == ["export"]


def test_dag_metadata_comes_from_the_spec(dag, breast_cancer_spec: Path) -> None:
    assert {"example", "classification", "conveyor"} <= set(dag.tags)
    assert "malignant" in dag.doc_md
    assert str(breast_cancer_spec.resolve()) in dag.doc_md
    assert dag.params["model.params.C"] == 1.0
    assert dag.params["model.params.max_iter"] == 1000
    assert not dag.catchup


def test_tasks_retry_with_bounded_exponential_backoff(dag) -> None:
    for task in dag.tasks:
        assert isinstance(task, ConveyorStepOperator)
        assert task.retries == 3
        assert task.retry_exponential_backoff == 2.0
        assert task.max_retry_delay == timedelta(minutes=10)
        assert Path(task.spec_path).is_absolute()


@pytest.mark.parametrize(("schedule", "expected"), [
    (None, None), ("", None), ("@daily", "@daily"), ("0 3 * * *", "0 3 * * *")])
def test_schedule_strings_pass_through(schedule: str | None, expected: str | None) -> None:
    assert to_schedule(schedule) == expected


def test_asset_schedule_becomes_an_asset() -> None:
    from airflow.sdk import Asset

    (asset,) = to_schedule("asset:s3://bucket/raw/wdbc.csv")
    assert isinstance(asset, Asset)
    assert asset.uri == "s3://bucket/raw/wdbc.csv"


def test_operator_needs_a_step_or_finish() -> None:
    with pytest.raises(ValueError, match="finish=True"):
        ConveyorStepOperator(spec_path=str(SPEC), step=None)


# ----------------------------------------------------------------------------- loader


def _write_specs(folder: Path, wdbc: Path) -> dict[str, Path]:
    text = SPEC.read_text().replace(
        "${WDBC_PATH:-../../../shared/data/wdbc/wdbc.data}", str(wdbc))
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "good.yaml"
    good.write_text(text.replace("name: breast_cancer", "name: good", 1))
    (folder / "good.sklearn.yaml").write_text(SPEC.with_name("pipeline.sklearn.yaml").read_text())
    scenario = folder / "scenario"
    scenario.mkdir()
    nested = scenario / "pipeline.yaml"
    nested.write_text(text.replace("name: breast_cancer", "name: nested", 1))
    deep = scenario / "configs"
    deep.mkdir()
    (deep / "c1.yaml").write_text("classifier: svc\n")
    (folder / ".hidden.yaml").write_text("name: hidden\n")
    broken = folder / "broken.yaml"
    broken.write_text(text.replace("name: breast_cancer", "name: broken", 1)
                      .replace("  params: {C:", "  parms: {C:", 1))
    twin = folder / "twin.yaml"
    twin.write_text(good.read_text())
    return {"good": good, "nested": nested, "broken": broken, "twin": twin}


def test_find_specs_skips_overlays_hidden_files_and_deeper_folders(
    tmp_path: Path, wdbc_path: Path
) -> None:
    files = _write_specs(tmp_path / "pipelines", wdbc_path)
    assert find_specs(tmp_path / "pipelines") == sorted(
        [files["broken"], files["good"], files["nested"], files["twin"]])
    assert find_specs(files["good"]) == [files["good"]]
    assert find_specs(tmp_path / "missing") == []


def test_broken_and_duplicate_specs_become_messages_and_the_rest_dags(
    tmp_path: Path, wdbc_path: Path
) -> None:
    files = _write_specs(tmp_path / "pipelines", wdbc_path)
    result = build_dags(find_specs(tmp_path / "pipelines"))
    assert sorted(result.dags) == ["good", "nested"]
    assert set(result.errors) == {str(files["broken"]), str(files["twin"])}
    broken = result.errors[str(files["broken"])]
    assert str(files["broken"]) in broken and "model.parms" in broken
    assert "did you mean 'params'" in broken
    assert "already used by" in result.errors[str(files["twin"])]


def test_publish_puts_only_dags_into_the_namespace_and_errors_raise_elsewhere(
    tmp_path: Path, wdbc_path: Path
) -> None:
    from airflow.sdk import DAG

    files = _write_specs(tmp_path / "pipelines", wdbc_path)
    namespace: dict[str, object] = {}
    publish(namespace, tmp_path / "pipelines")
    assert sorted(d.dag_id for d in namespace.values() if isinstance(d, DAG)) == [
        "good", "nested"]
    with pytest.raises(ConveyorImportError) as caught:
        raise_spec_errors(tmp_path / "pipelines")
    assert str(files["broken"]) in str(caught.value)
    files["broken"].unlink()
    files["twin"].unlink()
    assert sorted(raise_spec_errors(tmp_path / "pipelines").dags) == ["good", "nested"]


def test_loader_parses_twenty_specs_without_heavy_imports(
    tmp_path: Path, wdbc_path: Path
) -> None:
    """The DAGs-folder entry imports no heavy library (checked in a fresh interpreter)."""
    text = SPEC.read_text().replace(
        "${WDBC_PATH:-../../../shared/data/wdbc/wdbc.data}", str(wdbc_path))
    folder = tmp_path / "pipelines"
    folder.mkdir()
    for index in range(20):
        (folder / f"p{index:02d}.yaml").write_text(
            text.replace("name: breast_cancer", f"name: p{index:02d}", 1))
    probe = textwrap.dedent(f"""
        import json, sys, time
        import airflow.sdk
        from airflow.sdk import DAG, BaseOperator, Param  # what every DAG file pays anyway
        started = time.perf_counter()
        from conveyor.airflow.loader import publish
        namespace = {{}}
        result = publish(namespace, {str(folder)!r})
        seconds = time.perf_counter() - started
        heavy = [m for m in ("mlflow", "sklearn", "pandas", "matplotlib") if m in sys.modules]
        print(json.dumps({{"seconds": seconds, "dags": len(result.dags), "heavy": heavy}}))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["dags"] == 20
    # The parse time itself is a benchmark figure (benchmarks/airflow_overhead.md), not an
    # assertion: what keeps it low is that nothing heavy is imported.
    assert report["heavy"] == [], f"parsing imported {report['heavy']}"


# ----------------------------------------------------------------------------- provider


def test_provider_info_is_valid_and_names_importable_objects() -> None:
    import importlib

    import airflow
    import jsonschema

    from conveyor.airflow.provider import get_provider_info

    info = get_provider_info()
    schema = json.loads(
        (Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    assert info["package-name"] == "conveyor-ml"
    for connection in info["connection-types"]:
        module, _, name = connection["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == connection["connection-type"]
    for decorator in info["task-decorators"]:
        module, _, name = decorator["class-name"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), name))
    for group in ("operators", "hooks"):
        for entry in info[group]:
            for module in entry["python-modules"]:
                importlib.import_module(module)


def test_conveyor_task_decorator_builds_a_step_task() -> None:
    from airflow.sdk import DAG

    from conveyor.airflow.decorators import conveyor_task

    with DAG("hand_written", schedule=None) as dag:
        @conveyor_task(spec_path=str(SPEC), step="train")
        def train() -> dict[str, float]:
            return {"model.params.C": 0.3}

        train()
    task = dag.task_dict["train"]
    assert isinstance(task, ConveyorStepOperator)
    assert task.step == "train"


# ----------------------------------------------------------------------------- task logs


def test_saving_a_model_beside_airflow_shims_logs_no_deprecation_flood(tmp_path: Path) -> None:
    """skops scans ``sys.modules`` with ``getattr``; Airflow's shims warn on every lookup.

    Seen by eye in the UI: 1,160 ``DeprecatedImportWarning`` lines in every ``train`` and
    ``evaluate`` task log. The model must still save and load.
    """
    import importlib
    import warnings

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from conveyor.tracking.tracker import Tracker

    importlib.import_module("airflow.utils.timezone")  # a deprecated-import shim module
    features = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2], [0.1, 0.9]])
    model = LogisticRegression().fit(features, [0, 1, 1, 0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Tracker.save_sklearn_model(model, features[:2], tmp_path / "model")
        loaded = Tracker.load_sklearn_model(tmp_path / "model")
    flood = [str(w.message) for w in caught if "airflow." in str(w.message)]
    assert flood == [], f"{len(flood)} Airflow deprecation warnings, e.g. {flood[:2]}"
    assert list(loaded.predict(features)) == list(model.predict(features))
