"""A pipeline trains on a collected dataset (``data.source: collected``), and the API key is
nowhere in the Store or MLflow afterwards.

The youtube_comments regressor waits for regression support (examples/youtube_comments/
README.md); until then a classifier of the video stands in, which exercises the same path:
``conveyor collect`` twice, then ``conveyor.run`` reading every committed interval through
ingest into MLflow.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import conveyor
import conveyor.api
from youtube_api import API_KEY, YouTubeServer, comment

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "youtube_comments"
VIDEOS = ["jNQXAC9IVRw", "dQw4w9WgXcQ", "9bZkp7q19f0"]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[YouTubeServer]:
    server = YouTubeServer(comments={
        VIDEOS[0]: [comment(VIDEOS[0], n, likes=n % 7, replies=n % 3,
                            text="x" * (5 + n % 40)) for n in range(90)],
        VIDEOS[1]: [comment(VIDEOS[1], n, likes=n % 5, replies=n % 2,
                            text="y" * (30 + n % 60)) for n in range(70)]},
        disabled={VIDEOS[2]}).start()
    monkeypatch.setenv("YOUTUBE_API_URL", server.url)
    monkeypatch.setenv("YOUTUBE_API_KEY", API_KEY)
    yield server
    server.stop()


def test_a_pipeline_trains_on_the_collected_intervals_without_the_key(
        api: YouTubeServer, conveyor_home: Path, tmp_path: Path) -> None:
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "collect.yaml").write_text((EXAMPLE / "collect.yaml").read_text())
    first = conveyor.api.collect(spec_dir / "collect.yaml",
                                 "2026-11-30T09:00Z/2026-11-30T10:00Z", home=conveyor_home)
    api.comments[VIDEOS[1]].extend(comment(VIDEOS[1], n, likes=1, text="z" * 50)
                                   for n in range(70, 90))
    second = conveyor.api.collect(spec_dir / "collect.yaml",
                                  "2026-11-30T10:00Z/2026-11-30T11:00Z", home=conveyor_home)
    assert (first.new, second.new) == (160, 20)
    spec = spec_dir / "pipeline.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "youtube_video_of_comment",
        "data": {"source": "collected", "collection": "collect.yaml"},
        "schema": {"target": "video_id", "id": "id", "features": {
            "text_length": "numeric", "reply_count": "numeric", "age_hours": "numeric",
            "log1p_likes": "numeric"}},
        "model": {"estimator": "logistic_regression", "params": {"max_iter": 500}},
        "evaluate": {"metrics": ["accuracy"]},
    }))
    result = conveyor.run(spec, home=conveyor_home)
    assert result.status == "ok" and result.metrics["test_accuracy"] > 0.8
    ingest = result.manifest["steps"]["ingest"]["info"]
    assert ingest["rows"] == 180 and ingest["source"].endswith("/youtube_comments/_dataset")
    with sqlite3.connect(conveyor_home / "mlflow.db") as db:
        params = dict(db.execute("SELECT key, value FROM params").fetchall())
    assert params["data.source"] == "collected"
    for path in conveyor_home.rglob("*"):  # the Store, MLflow's database and artifacts
        assert not path.is_file() or API_KEY.encode() not in path.read_bytes(), path

