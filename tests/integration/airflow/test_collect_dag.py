"""The ``youtube_comments_collect`` DAG in a real Airflow 3.3: scheduled intervals from the
local YouTube server, with the CLI between them, deduplicated and replaced on a re-run.

Two ``airflow dags test`` runs with different logical dates (each keyed by its hourly data
interval), a ``conveyor collect`` of the second interval before the DAG collects it again
(replaced: the CLI and the DAG key an interval alike), and a CLI re-run of the first. The
API key (from the environment, then from an Airflow connection) reaches the API and nothing
else: not the task logs, the metadata DB or the Store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow_harness import REPO, AirflowHome

from youtube_api import API_KEY, YouTubeServer, comment

pytestmark = pytest.mark.timeout(900)

SPEC = REPO / "examples" / "youtube_comments" / "collect.yaml"
DAG = "youtube_comments_collect"
VIDEOS = ["jNQXAC9IVRw", "dQw4w9WgXcQ", "9bZkp7q19f0"]


@pytest.fixture
def api() -> Iterator[YouTubeServer]:
    server = YouTubeServer(comments={
        VIDEOS[0]: [comment(VIDEOS[0], n, likes=n) for n in range(130)],
        VIDEOS[1]: [comment(VIDEOS[1], n, likes=1) for n in range(20)]},
        disabled={VIDEOS[2]}).start()
    yield server
    server.stop()


def test_hourly_intervals_dedup_and_replace(airflow_home: AirflowHome, api: YouTubeServer,
                                            tmp_path: Path) -> None:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "collect.yaml").write_text(SPEC.read_text())
    extra = {"CONVEYOR_PIPELINES": str(pipelines), "YOUTUBE_API_URL": api.url,
             "YOUTUBE_API_KEY": API_KEY}
    home = Path(airflow_home.env["CONVEYOR_HOME"])
    airflow_home.reserialize(extra_env=extra)
    assert DAG in airflow_home.dag_ids(), airflow_home.import_errors()

    def dags_test(logical_date: str, env: dict[str, str], *, ok: bool = True) -> Any:
        done = airflow_home.run("dags", "test", DAG, logical_date, extra_env=env,
                                check=False)
        output = done.stdout + done.stderr
        assert (done.returncode == 0) is ok, output[-4000:]
        assert API_KEY not in output
        run_id = airflow_home.latest_run_id(DAG)
        task = airflow_home.task_instances(DAG, run_id)["collect"]
        if not ok:
            return task, output
        assert task["state"] == "success"
        return airflow_home.xcom(DAG, run_id, "collect")

    def cli(interval: str, code: int = 0) -> Any:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
        done = subprocess.run(
            [sys.executable, "-m", "conveyor.cli", "collect", str(pipelines / "collect.yaml"),
             "--interval", interval, "--json"],
            env={**env, **extra, "CONVEYOR_HOME": str(home)}, capture_output=True, text=True,
            timeout=120, check=False)
        assert done.returncode == code, done.stdout + done.stderr
        assert API_KEY not in done.stdout + done.stderr
        return json.loads(done.stdout) if code == 0 else done.stderr

    first = dags_test("2026-11-30T10:00:00+00:00", extra)
    assert (first["start"], first["end"]) == ("2026-11-30T09:00:00+00:00",
                                              "2026-11-30T10:00:00+00:00")
    assert (first["fetched"], first["new"], first["replaced"]) == (150, 150, False)
    assert first["skipped"] == [{"videoId": VIDEOS[2], "reason": "commentsDisabled"}]

    api.comments[VIDEOS[1]].extend(comment(VIDEOS[1], n, likes=2) for n in range(20, 30))
    by_cli = cli("2026-11-30T10:00Z/2026-11-30T11:00Z")
    assert (by_cli["new"], by_cli["replaced"]) == (10, False)
    api.comments[VIDEOS[0]].append(comment(VIDEOS[0], 500, likes=9))
    # the second run reads the key from an Airflow connection instead of the environment
    spec = pipelines / "collect.yaml"
    spec.write_text(SPEC.read_text().replace("api_key: {env: YOUTUBE_API_KEY, param: key}",
                                             "api_key: {conn_id: youtube_api, param: key}"))
    by_connection = {**{k: v for k, v in extra.items() if k != "YOUTUBE_API_KEY"},
                     "AIRFLOW_CONN_YOUTUBE_API": json.dumps({"conn_type": "generic",
                                                             "password": API_KEY})}
    second = dags_test("2026-11-30T11:00:00+00:00", by_connection)  # the CLI's interval
    assert (second["start"], second["end"]) == ("2026-11-30T10:00:00+00:00",
                                                "2026-11-30T11:00:00+00:00")
    assert (second["fetched"], second["new"], second["replaced"]) == (161, 11, True)
    assert second["dataset_rows"] == 161

    assert "data.api_key.conn_id: the Airflow connection 'youtube_api' can only be read " \
        "inside an Airflow task" in cli("2026-11-30T09:00Z/2026-11-30T10:00Z", code=2)
    spec.write_text(SPEC.read_text())
    rerun = cli("2026-11-30T09:00Z/2026-11-30T10:00Z")  # the DAG's first interval again
    assert (rerun["new"], rerun["replaced"], rerun["dataset_rows"]) == (150, True, 161)

    # an exhausted quota fails the task at once: try 1 of 4, no retry, nothing written
    api.quota_exceeded = True
    task, output = dags_test("2026-11-30T12:00:00+00:00", extra, ok=False)
    assert (task["state"], task["try_number"]) == ("failed", 1)
    assert "HTTP 403 quotaExceeded: The request cannot be completed because you have " \
        "exceeded your" in output and "key=***" in output
    assert not list((home / "artifacts" / "youtube_comments" / "_dataset").rglob(
        "*20261130T110000Z_20261130T120000Z*"))

    import pandas as pd

    dataset = home / "artifacts" / "youtube_comments" / "_dataset"
    parts = sorted(dataset.rglob("part-*.parquet"))
    assert len(parts) == 2  # one file per interval: re-runs replaced theirs
    ids = pd.concat(pd.read_parquet(p) for p in parts)["id"]
    assert len(ids) == 161 and ids.is_unique
    # the key went to the API only
    assert all(r["query"]["key"] == API_KEY for r in api.requests)
    for root in (home, airflow_home.root):
        for path in root.rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                assert API_KEY.encode() not in path.read_bytes(), path
