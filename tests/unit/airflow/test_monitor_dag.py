"""The ``<name>_monitor`` DAG: a spec with a ``monitor:`` section gets it, parsing stays cheap."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow.sdk")

from conveyor.airflow.loader import build_dags
from conveyor.airflow.specs import dag_ids_of

TINY = """\
name: tiny
data: {source: sklearn, name: iris}
schema: {target: target}
model: {estimator: logistic_regression, params: {max_iter: 500}}
registry: {name: tiny_model}
"""
HEAVY = ("mlflow", "sklearn", "pandas", "scipy", "matplotlib", "conveyor.monitoring.check")


def test_a_spec_with_a_monitor_section_gets_a_scheduled_monitor_dag(
        tmp_path: Path, dag_folder_parse: Callable[..., dict[str, Any]]) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY + "monitor: {schedule: '@daily', psi: 0.3}\n")
    report = dag_folder_parse(spec, "tiny_monitor", HEAVY)
    assert report["errors"] == {}
    assert report["dags"] == ["tiny", "tiny_monitor"]
    assert report["tasks"] == ["check"] and "monitor" in report["tags"]
    assert report["heavy"] == []
    dag = build_dags([spec]).dags["tiny_monitor"]
    assert dag.schedule == "@daily"
    assert dag_ids_of({"name": "tiny", "monitor": {}}) == ["tiny", "tiny_monitor"]


def test_no_monitor_section_no_monitor_dag_and_an_unknown_model_is_a_spec_error(
        tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    assert sorted(build_dags([spec]).dags) == ["tiny"]
    spec.write_text(TINY.replace("registry: {name: tiny_model}\n", "") + "monitor: {}\n")
    result = build_dags([spec])
    assert result.dags == {}
    assert "monitor.model" in result.errors[str(spec)]
