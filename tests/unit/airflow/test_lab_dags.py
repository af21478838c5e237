"""The lab spec as two Airflow DAGs: structure, the asset link, and a cheap parse."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("airflow.sdk")

from conveyor.airflow.lab_dags import build_lab_dags, lab_asset
from conveyor.airflow.loader import build_dags

REPO = Path(__file__).resolve().parents[3]
LAB_SPEC = REPO / "examples" / "iris_lab" / "lab.yaml"
# conveyor.lab itself is imported (lazily: the lab spec is validated at parse time); its
# modules that import pandas or scikit-learn are not.
HEAVY = ("mlflow", "sklearn", "pandas", "numpy", "conveyor.lab.train", "conveyor.lab.watcher",
         "conveyor.lab.configs")


def test_parsing_the_lab_dags_imports_no_heavy_module() -> None:
    probe = textwrap.dedent(f"""
        import json, sys
        from conveyor.airflow.loader import build_dags
        result = build_dags([__import__("pathlib").Path({str(LAB_SPEC)!r})])
        print(json.dumps({{"dags": sorted(result.dags), "errors": result.errors,
                          "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert report["dags"] == ["iris_lab_promote", "iris_lab_train"]
    assert report["heavy"] == []


def test_promote_is_scheduled_on_the_asset_the_train_dag_emits() -> None:
    train, promote = build_lab_dags(LAB_SPEC)
    assert (train.dag_id, promote.dag_id) == ("iris_lab_train", "iris_lab_promote")
    outlets = train.get_task("registered").outlets
    assert outlets == [lab_asset("iris_lab")]
    condition = promote.timetable.asset_condition
    assert list(condition.objects) == outlets
    assert promote.schedule == outlets


def test_train_dag_shape() -> None:
    train, promote = build_lab_dags(LAB_SPEC)
    assert train.schedule == "*/10 * * * *"  # the spec's schedule
    sensor = train.get_task("wait_for_files")
    assert sensor.mode == "reschedule" and sensor.soft_fail
    assert sensor.retries == 2  # apache/airflow#71172: a reschedule sensor failed spuriously
    assert sensor.timeout <= 3600
    assert train.get_task("claim").upstream_task_ids == {"wait_for_files"}
    mapped = train.get_task("train")
    assert type(mapped).__name__.endswith("MappedOperator")  # dynamic task mapping
    assert mapped.upstream_task_ids == {"claim"}
    registered = train.get_task("registered")
    assert registered.trigger_rule == "all_done"
    assert registered.upstream_task_ids == {"train"}
    task = promote.get_task("promote")
    assert task.retries >= 1 and task.retry_exponential_backoff


def test_loader_publishes_a_lab_spec_beside_pipeline_specs(tmp_path: Path) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text("name: shop_lab\nwatch: {folder: inbox}\n")
    result = build_dags([lab, REPO / "examples" / "breast_cancer" / "pipeline.yaml"])
    assert result.errors == {}
    assert set(result.dags) == {"shop_lab_train", "shop_lab_promote", "breast_cancer"}
    assert result.dags["shop_lab_train"].schedule == "@hourly"  # the default


def test_loader_names_a_lab_dag_id_clash(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text("name: twin\nwatch: {folder: inbox}\n")
    result = build_dags(sorted(tmp_path.glob("*.yaml")))
    assert set(result.dags) == {"twin_train", "twin_promote"}
    assert "already used" in result.errors[str(tmp_path / "b.yaml")]
