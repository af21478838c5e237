"""examples/youtube_comments/pipeline.yaml trains its regressor on the collected intervals
(``data.source: collected``), and the API key is nowhere in the Store or MLflow afterwards.

``conveyor.api.collect`` of two intervals from the local YouTube server, then
``conveyor.run`` of the example's training spec: ingest reads every committed interval,
one row per comment id; R², MAE and RMSE reach MLflow; the model is registered.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
import conveyor.api
from youtube_api import API_KEY, YouTubeServer, synthetic_comments

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "youtube_comments"
VIDEOS = ["jNQXAC9IVRw", "dQw4w9WgXcQ", "9bZkp7q19f0"]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[YouTubeServer]:
    server = YouTubeServer(comments={
        VIDEOS[0]: synthetic_comments(VIDEOS[0], 150, seed=1),
        VIDEOS[1]: synthetic_comments(VIDEOS[1], 100, seed=2)},
        disabled={VIDEOS[2]}).start()
    monkeypatch.setenv("YOUTUBE_API_URL", server.url)
    monkeypatch.setenv("YOUTUBE_API_KEY", API_KEY)
    yield server
    server.stop()


def test_the_example_regressor_trains_on_the_collected_intervals_without_the_key(
        api: YouTubeServer, conveyor_home: Path, tmp_path: Path) -> None:
    spec_dir = tmp_path / "youtube_comments"
    shutil.copytree(EXAMPLE, spec_dir, ignore=shutil.ignore_patterns("*.md"))
    first = conveyor.api.collect(spec_dir / "collect.yaml",
                                 "2026-11-30T09:00Z/2026-11-30T10:00Z", home=conveyor_home)
    more = synthetic_comments(VIDEOS[1], 160, seed=3)[100:]
    api.comments[VIDEOS[1]].extend(
        {**c, "id": c["id"] + "b"} for c in more)  # 60 comments posted in the next hour
    second = conveyor.api.collect(spec_dir / "collect.yaml",
                                  "2026-11-30T10:00Z/2026-11-30T11:00Z", home=conveyor_home)
    assert (first.new, second.new) == (250, 60)
    result = conveyor.run(spec_dir / "pipeline.yaml", home=conveyor_home)
    assert result.status == "ok", result.reason
    assert {"test_r2", "test_mae", "test_rmse"} <= set(result.metrics)
    assert result.metrics["test_r2"] > 0.3  # likes were drawn from replies, length and age
    ingest = result.manifest["steps"]["ingest"]["info"]
    assert ingest["rows"] == 310 and ingest["source"].endswith("/youtube_comments/_dataset")
    assert result.model_uri
    with sqlite3.connect(conveyor_home / "mlflow.db") as db:
        params = dict(db.execute("SELECT key, value FROM params").fetchall())
    assert params["data.source"] == "collected" and params["schema.task"] == "regression"
    for path in conveyor_home.rglob("*"):  # the Store, MLflow's database and artifacts
        assert not path.is_file() or API_KEY.encode() not in path.read_bytes(), path
