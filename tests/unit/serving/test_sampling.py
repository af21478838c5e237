"""The request sampler: Parquet by UTC hour in a real local Store, bounded, never raising."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conveyor.serving.layout import sample_partition, samples_uri
from conveyor.serving.model import Prediction
from conveyor.serving.runtime import ServedPrediction
from conveyor.serving.sampling import Sampler

NAMES = ["b", "a", "c"]
CLASSES = ("B", "M")
PART = re.compile(r"^part-\d{8}T\d{12}Z-\d+-\d{6}\.parquet$")


def prediction(X: np.ndarray) -> ServedPrediction:
    p = 1 / (1 + np.exp(-X[:, 0]))
    proba = np.stack([1 - p, p], axis=1)
    return ServedPrediction(labels=np.asarray(CLASSES, dtype=object)[proba.argmax(1)],
                            proba=proba, classes=CLASSES, version="3")


def parquet_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def wait_for(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_sampled_requests_land_as_parquet_by_hour(tmp_path: Path) -> None:
    root = tmp_path / "store"
    sampler = Sampler(root.as_uri(), "breast cancer/v", rate=1.0, flush_seconds=60)
    rng = np.random.default_rng(0)
    sent = []
    for i in range(20):
        X = rng.normal(size=(1 + i % 3, 3))
        sent.append(X)
        assert sampler.offer(X, NAMES, prediction(X), "3", [f"req-{i}"] * len(X)) is True
    sampler.close()
    rows = sum(len(x) for x in sent)
    assert sampler.stats == {"offered": 20, "sampled": 20, "written_rows": rows,
                             "dropped_rows": 0, "errors": 0, "files": 1}
    folder = Path(samples_uri(root.as_uri(), "breast cancer/v").removeprefix("file://"))
    files = parquet_files(folder)
    assert len(files) == 1 and PART.match(files[0].name), files
    hour = sample_partition(datetime.now(UTC))
    assert files[0].parent.relative_to(folder).as_posix() in (hour, sample_partition(
        datetime.fromtimestamp(time.time() - 3600, UTC)))
    frame = pd.read_parquet(files[0])
    assert list(frame.columns) == [*NAMES, "_prediction", "_proba_B", "_proba_M",
                                   "_request_id", "_ts", "_version"]
    X = np.vstack(sent)
    np.testing.assert_array_equal(frame[NAMES].to_numpy(), X)
    np.testing.assert_allclose(frame["_proba_M"], 1 / (1 + np.exp(-X[:, 0])))
    assert list(frame["_prediction"]) == list(prediction(X).labels)
    assert frame["_request_id"].iloc[0] == "req-0" and frame["_request_id"].iloc[-1] == "req-19"
    assert set(frame["_version"]) == {"3"}
    assert str(frame["_ts"].dtype) == "datetime64[ns, UTC]"
    assert not [p for p in root.rglob("*") if p.is_file() and p.suffix != ".parquet"]


def test_the_rate_is_decided_per_request(tmp_path: Path) -> None:
    X = np.ones((4, 3))
    with Sampler(tmp_path.as_uri(), "m", rate=0.25, seed=7, flush_seconds=60) as sampler:
        taken = sum(sampler.offer(X, NAMES, prediction(X), "1", "r") for _ in range(2000))
    stats = sampler.stats
    assert stats["offered"] == 2000 and stats["sampled"] == taken
    assert 400 < taken < 600  # 25 % of requests, each with all of its 4 rows
    assert stats["written_rows"] == 4 * taken
    with Sampler(tmp_path.as_uri(), "none", rate=0.0) as nothing:
        assert not any(nothing.offer(X, NAMES, prediction(X), "1", "r") for _ in range(100))
    assert nothing.stats["sampled"] == 0 and not (tmp_path / "_serving" / "none").exists()


def test_a_full_batch_is_written_before_the_flush_interval(tmp_path: Path) -> None:
    sampler = Sampler(tmp_path.as_uri(), "m", rate=1.0, batch_rows=10, flush_seconds=3600)
    try:
        for _ in range(10):
            X = np.zeros((1, 3))
            sampler.offer(X, NAMES, prediction(X), "1", "r")
        wait_for(lambda: sampler.stats["written_rows"] == 10)
        assert len(parquet_files(tmp_path)) == 1
    finally:
        sampler.close()


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    sampler = Sampler(tmp_path.as_uri(), "m", rate=1.0, batch_rows=1000, flush_seconds=3600,
                      max_queue_rows=5)
    X = np.zeros((1, 3))
    accepted = [sampler.offer(X, NAMES, prediction(X), "1", "r") for _ in range(8)]
    assert accepted == [True] * 5 + [False] * 3
    assert sampler.stats["dropped_rows"] == 3
    sampler.close()
    assert sampler.stats["written_rows"] == 5


def test_a_store_refusing_writes_never_reaches_the_caller(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folders would go")
    sampler = Sampler(blocker.as_uri(), "m", rate=1.0, flush_seconds=3600)
    X = np.zeros((2, 3))
    with caplog.at_level(logging.WARNING, logger="conveyor.serving.sampling"):
        for _ in range(3):
            assert sampler.offer(X, NAMES, prediction(X), "1", ["a", "b"]) is True
            sampler.flush()  # each batch fails on its own
        # a malformed offer (no labels on the prediction) is counted too, never raised
        assert sampler.offer(X, NAMES, object(), "1", "r") is False
        sampler.close()
    stats = sampler.stats
    assert stats["errors"] == 4 and stats["written_rows"] == 0
    assert stats["dropped_rows"] == 6
    warnings = [r for r in caplog.records if r.name == "conveyor.serving.sampling"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # once a minute
    assert "failed" in warnings[0].getMessage()
    assert blocker.read_text().startswith("a file")


def test_dataframe_requests_and_plain_predictions(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "c": [True, False]})
    plain = Prediction(labels=np.asarray([0, 1]), proba=np.asarray([[0.9, 0.1], [0.2, 0.8]]))
    with Sampler(tmp_path.as_uri(), "m", rate=1.0) as sampler:
        sampler.offer(frame, ["a", "b", "c"], plain, 5, "one-request", classes=[0, 1])
        one = Prediction(labels=plain.labels[:1], proba=plain.proba[:1])
        sampler.offer(frame.iloc[:1], ["a", "b", "c"], one, 5, None, classes=[0, 1])
        # a record that does not add up is refused alone, not with the batch
        assert sampler.offer(frame, ["a", "b", "c"], one, 5, None) is False
    assert sampler.stats["errors"] == 1 and sampler.stats["written_rows"] == 3, sampler.stats
    (path,) = parquet_files(tmp_path)
    out = pd.read_parquet(path)
    assert list(out.columns[:5]) == ["a", "b", "c", "_prediction", "_proba_0"]
    assert list(out["b"]) == ["x", "y", "x"]
    assert list(out["_request_id"]) == ["one-request", "one-request", ""]
    assert list(out["_version"]) == ["5", "5", "5"]


def test_a_batch_that_cannot_be_written_leaves_no_file(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1.0], "b": [object()], "c": [True]})  # no Parquet type
    X = np.zeros((1, 3))
    with Sampler(tmp_path.as_uri(), "m", rate=1.0) as sampler:
        sampler.offer(frame, ["a", "b", "c"], prediction(X), "1", "r")
    assert sampler.stats["errors"] == 1 and sampler.stats["dropped_rows"] == 1
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # not even a temporary
