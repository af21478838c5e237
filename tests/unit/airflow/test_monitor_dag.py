"""The ``<name>_monitor`` DAG: a spec with a ``monitor:`` section gets it, parsing stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

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


def test_a_spec_with_a_monitor_section_gets_a_scheduled_monitor_dag(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY + "monitor: {schedule: '@daily', psi: 0.3}\n")
    probe = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from conveyor.airflow.loader import build_dags
        result = build_dags([Path({str(spec)!r})])
        dag = result.dags["tiny_monitor"]
        print(json.dumps({{"dags": sorted(result.dags), "errors": result.errors,
                          "tasks": sorted(dag.task_ids), "tags": sorted(dag.tags),
                          "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
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
