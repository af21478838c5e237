"""Incremental collection: each interval adds only unseen records; re-running one replaces it.

The real connector against the local YouTube server, the dataset in a local Store, through
the CLI (``conveyor collect``) and the Python API (``conveyor.api.collect``) alike.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
import conveyor.api
from conveyor.cli import main
from conveyor.sources.collect import load_collection, parse_interval, read_dataset
from youtube_api import API_KEY, YouTubeServer, comment

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "youtube_comments" / "collect.yaml"
VIDEOS = ["jNQXAC9IVRw", "dQw4w9WgXcQ", "9bZkp7q19f0"]
H10, H11, H12 = ("2026-11-30T09:00Z/2026-11-30T10:00Z", "2026-11-30T10:00Z/2026-11-30T11:00Z",
                 "2026-11-30T11:00Z/2026-11-30T12:00Z")


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[YouTubeServer]:
    server = YouTubeServer(comments={
        VIDEOS[0]: [comment(VIDEOS[0], n, likes=n, replies=n % 3) for n in range(120)],
        VIDEOS[1]: [comment(VIDEOS[1], n, likes=2 * n) for n in range(40)]},
        disabled={VIDEOS[2]}).start()
    monkeypatch.setenv("YOUTUBE_API_URL", server.url)
    monkeypatch.setenv("YOUTUBE_API_KEY", API_KEY)
    yield server
    server.stop()


def test_intervals_append_unseen_comments_and_a_rerun_replaces_its_own(
        api: YouTubeServer, conveyor_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", str(EXAMPLE), "--interval", H10]) == 0
    out = capsys.readouterr().out
    assert "youtube_comments [2026-11-30T09:00:00+00:00, 2026-11-30T10:00:00+00:00): " \
           "160 fetched, 160 new" in out
    assert "skipped 9bZkp7q19f0 (commentsDisabled)" in out
    api.comments[VIDEOS[1]].extend(comment(VIDEOS[1], n, likes=1) for n in range(40, 55))
    second = conveyor.api.collect(EXAMPLE, H11)
    assert (second.fetched, second.new, second.replaced) == (175, 15, False)
    # the same interval again, after new comments arrived: replaced, never duplicated
    api.comments[VIDEOS[0]].append(comment(VIDEOS[0], 999, likes=5))
    again = conveyor.api.collect(EXAMPLE, H11)
    assert (again.fetched, again.new, again.replaced) == (176, 16, True)
    assert main(["collect", str(EXAMPLE), "--interval", H10, "--json"]) == 0
    rerun = json.loads(capsys.readouterr().out)
    assert (rerun["fetched"], rerun["new"], rerun["replaced"]) == (176, 160, True)
    frame, records = read_dataset(load_collection(EXAMPLE))
    assert len(frame) == 176 and frame["id"].is_unique
    assert [r["rows"] for r in records] == [160, 16]
    dataset = conveyor_home / "artifacts" / "youtube_comments" / "_dataset" / "date=2026-11-30"
    assert sorted(p.name[:38] for p in dataset.glob("*.parquet")) == [
        "part-20261130T090000Z_20261130T100000Z", "part-20261130T100000Z_20261130T110000Z"]
    # the features, at the interval's end
    row = frame.set_index("id").loc[f"Ugx{VIDEOS[0]}0999"]
    assert row["age_hours"] == 3.0 and row["log1p_likes"] == pytest.approx(1.7918, abs=1e-4)
    # the key went to the API and nowhere else
    assert all(r["query"]["key"] == API_KEY for r in api.requests)
    for path in conveyor_home.rglob("*"):
        assert not path.is_file() or API_KEY.encode() not in path.read_bytes(), path


def test_quota_exceeded_writes_nothing_and_exits_2(
        api: YouTubeServer, conveyor_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api.quota_exceeded = True
    assert main(["collect", str(EXAMPLE), "--interval", H12]) == 2
    err = capsys.readouterr().err
    assert "HTTP 403 quotaExceeded" in err and "stopped at once, nothing was written" in err
    assert API_KEY not in err and len(api.requests) == 1
    assert not (conveyor_home / "artifacts" / "youtube_comments").exists()


def test_a_missing_key_and_a_bad_interval_are_bad_input(
        api: YouTubeServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("YOUTUBE_API_KEY")
    assert main(["collect", str(EXAMPLE), "--interval", H12]) == 2
    assert "data.api_key.env: the environment variable YOUTUBE_API_KEY is not set" in \
        capsys.readouterr().err
    assert main(["collect", str(EXAMPLE), "--interval", "2026-11-30T10:00Z"]) == 2
    assert "--interval: expected START/END in ISO 8601" in capsys.readouterr().err
    assert api.requests == []


def test_a_typo_in_a_collection_spec_names_file_line_and_key(tmp_path: Path) -> None:
    spec = tmp_path / "collect.yaml"
    shutil.copy(EXAMPLE, spec)
    spec.write_text(spec.read_text().replace("  max_pages: 200", "  max_page: 200"))
    with pytest.raises(conveyor.SpecError, match=r"collect.yaml:\d+: data.max_page: unknown "
                       r"key 'max_page'; did you mean 'max_pages'\?"):
        load_collection(spec)


def test_the_default_interval_is_the_last_whole_hour() -> None:
    from datetime import UTC, datetime

    start, end = parse_interval(None, now=datetime(2026, 11, 30, 10, 42, tzinfo=UTC))
    assert (start.hour, end.hour, end.minute) == (9, 10, 0)


def test_the_collected_source_reads_every_interval_or_says_to_collect_first(
        api: YouTubeServer, tmp_path: Path) -> None:
    from conveyor.sources import read_source
    from conveyor.sources.collect import CollectedSource

    source = CollectedSource(source="collected", collection=str(EXAMPLE))
    with pytest.raises(conveyor.BadInputError, match=r"_dataset: 0 collected rows in 0 "
                       r"interval\(s\), data.min_rows is 1; run `conveyor collect .*collect"
                       r"\.yaml` first"):
        read_source(source, tmp_path)
    conveyor.api.collect(EXAMPLE, H10)
    api.comments[VIDEOS[1]].append(comment(VIDEOS[1], 77, likes=3))
    conveyor.api.collect(EXAMPLE, H11)
    frame, facts = read_source(source, tmp_path)
    assert len(frame) == 161 and frame["id"].is_unique and facts["intervals"] == 2
    assert {"text_length", "reply_count", "age_hours", "video_id", "log1p_likes"} <= set(
        frame.columns)


def test_stop_at_known_page_saves_requests_newest_first(
        api: YouTubeServer, tmp_path: Path) -> None:
    spec = tmp_path / "collect.yaml"
    spec.write_text(EXAMPLE.read_text().replace(
        "  key: id ", "  stop_at_known_page: true\n  key: id "))
    api.comments[VIDEOS[0]] = [comment(VIDEOS[0], n, likes=1) for n in range(350)]
    assert conveyor.api.collect(spec, H10).new == 390
    # five new comments at the head of the first video's list, as order=time lists them
    api.comments[VIDEOS[0]][:0] = [comment(VIDEOS[0], 1000 + n, likes=1) for n in range(5)]
    api.requests.clear()
    second = conveyor.api.collect(spec, H11)
    # the first video: page 1 has the new five, page 2 is all known: stop (not 4 pages)
    assert (second.new, second.fetched) == (5, 240)
    assert [r["query"]["videoId"] for r in api.requests] == [VIDEOS[0], VIDEOS[0], VIDEOS[1],
                                                             VIDEOS[2]]


def test_conveyor_validate_checks_a_collection_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "collection youtube_comments is valid" in out and "key: id" in out
    assert main(["validate", str(EXAMPLE), "collect.key=video"]) == 2
    assert "a collection spec takes no overrides" in capsys.readouterr().err
