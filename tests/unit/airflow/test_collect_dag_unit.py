"""The ``<name>_collect`` DAG: a collection spec gets one, with real hourly data intervals,
and parsing it imports nothing heavy (no pandas, no urllib3)."""

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

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "youtube_comments" / "collect.yaml"
HEAVY = ("mlflow", "sklearn", "pandas", "urllib3", "pyarrow")


def test_a_collection_spec_is_an_hourly_dag_of_one_task() -> None:
    probe = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from conveyor.airflow.loader import build_dags
        result = build_dags([Path({str(EXAMPLE)!r})])
        dag = result.dags["youtube_comments_collect"]
        print(json.dumps({{"dags": sorted(result.dags), "errors": result.errors,
                          "tasks": sorted(dag.task_ids), "tags": sorted(dag.tags),
                          "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"dags": ["youtube_comments_collect"], "errors": {}, "tasks": ["collect"],
                      "tags": ["collect", "collection", "conveyor", "example"], "heavy": []}
    dag = build_dags([EXAMPLE]).dags["youtube_comments_collect"]
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.timetable.summary == "0 * * * *" and dag.max_active_runs == 1
    assert dag_ids_of({"name": "yt", "collect": {}}) == ["yt_collect"]


def test_a_broken_collection_spec_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    spec = tmp_path / "collect.yaml"
    spec.write_text(EXAMPLE.read_text().replace("profile: youtube_comment_threads",
                                                "profile: youtube_comments"))
    result = build_dags([spec])
    assert result.dags == {}
    assert "collect.yaml:" in result.errors[str(spec)]
    assert "data.profile" in result.errors[str(spec)]
