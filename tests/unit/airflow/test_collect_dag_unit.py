"""The ``<name>_collect`` DAG: a collection spec gets one, with real hourly data intervals,
and parsing it imports nothing heavy (no pandas, no urllib3)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow.sdk")

from conveyor.airflow.loader import build_dags
from conveyor.airflow.specs import dag_ids_of

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "youtube_comments" / "collect.yaml"
HEAVY = ("mlflow", "sklearn", "pandas", "urllib3", "pyarrow")


def test_a_collection_spec_is_an_hourly_dag_of_one_task(
        dag_folder_parse: Callable[..., dict[str, Any]]) -> None:
    report = dag_folder_parse(EXAMPLE, "youtube_comments_collect", HEAVY)
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
