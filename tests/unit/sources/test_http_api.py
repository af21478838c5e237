"""The HTTP API connector against a local server speaking YouTube's wire format.

Every fault of RELIABILITY.md's "HTTP API" line: pages and cursors, 429 with Retry-After,
5xx then success, rateLimitExceeded, quotaExceeded (fails at once), commentsDisabled
(skipped), a repeated cursor, a page cap, an off-origin next link, a private address; the
key never in a message.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from conveyor.sources.http_api import (
    ApiClient,
    ApiRefusedError,
    ApiUnavailableError,
    HttpApiSource,
    fetch,
    resolve_api_key,
    to_frame,
)
from youtube_api import API_KEY, YouTubeServer, comment


@pytest.fixture
def api() -> Iterator[YouTubeServer]:
    server = YouTubeServer(comments={
        "vid1": [comment("vid1", n, likes=n, replies=n % 3) for n in range(150)],
        "vid2": [comment("vid2", n, likes=0) for n in range(30)],
    }).start()
    yield server
    server.stop()


def youtube(api: YouTubeServer, videos: list[str], **extra: Any) -> HttpApiSource:
    return HttpApiSource.model_validate({
        "source": "http_api", "profile": "youtube_comment_threads", "url": api.url,
        "fan_out": {"param": "videoId", "values": videos}, "backoff_seconds": 0.01, **extra})


class Waits(list):
    def __call__(self, seconds: float) -> None:  # records instead of sleeping
        self.append(seconds)


def test_pages_and_cursors_map_every_comment(api: YouTubeServer) -> None:
    config = youtube(api, ["vid1", "vid2"])
    fetched = fetch(config, api_key=API_KEY)
    assert len(fetched.rows) == 180 and fetched.pages == 3 and fetched.retries == 0
    tokens = [r["query"].get("pageToken") for r in api.requests]
    assert tokens[0] is None and tokens[1] and tokens[2] is None  # page 2 of vid1 by cursor
    first = api.requests[0]["query"]
    assert first == {"part": "snippet", "maxResults": "100", "textFormat": "plainText",
                     "videoId": "vid1", "key": API_KEY}
    frame = to_frame(config, fetched, "2026-11-30T10:00:00Z")
    row = frame.set_index("id").loc["Ugxvid10007"]
    assert row["like_count"] == 7 and row["reply_count"] == 1 and row["video_id"] == "vid1"
    assert row["text_length"] == len("comment 7 on vid1")
    assert row["age_hours"] == 2.0 and row["author_channel_id"] == "UCuser0007"
    assert row["log1p_likes"] == pytest.approx(2.0794, abs=1e-4)
    assert frame["id"].is_unique


def test_429_honours_retry_after_and_5xx_and_rate_limit_are_retried(api: YouTubeServer) -> None:
    api.script["vid2"] = ["429:7", "unavailable", "internal", "rate"]
    waits = Waits()
    fetched = fetch(youtube(api, ["vid2"]), api_key=API_KEY, sleep=waits)
    assert len(fetched.rows) == 30 and fetched.retries == 4 and fetched.requests == 5
    assert waits[0] == 7.0  # Retry-After, exactly
    assert all(0 < w <= 0.08 for w in waits[1:])  # backoff 0.01 * 2**n, jittered


def test_retries_exhausted_name_the_url_without_the_key(api: YouTubeServer) -> None:
    api.script["vid2"] = ["internal"] * 5
    with pytest.raises(ApiUnavailableError) as caught:
        fetch(youtube(api, ["vid2"], retries=2), api_key=API_KEY, sleep=Waits())
    message = str(caught.value)
    assert "HTTP 500 internalError after 2 retries (data.retries)" in message
    assert "key=***" in message and API_KEY not in message
    assert len(api.requests) == 3


def test_retry_after_longer_than_allowed_stops(api: YouTubeServer) -> None:
    api.script["vid2"] = ["429:3600"]
    with pytest.raises(ApiUnavailableError, match=r"asks to wait 3600s \(Retry-After\), over "
                       r"data.max_wait_seconds=120"):
        fetch(youtube(api, ["vid2"]), api_key=API_KEY, sleep=Waits())


def test_quota_exceeded_fails_at_once(api: YouTubeServer) -> None:
    api.quota_exceeded = True
    waits = Waits()
    with pytest.raises(ApiRefusedError) as caught:
        fetch(youtube(api, ["vid1", "vid2"]), api_key=API_KEY, sleep=waits)
    message = str(caught.value)
    assert "HTTP 403 quotaExceeded: The request cannot be completed because you have " \
           "exceeded your" in message
    assert "stopped at once, nothing was written" in message
    assert API_KEY not in message and "key=***" in message
    assert len(api.requests) == 1 and waits == []  # no retry, no second video
    assert caught.value.exit_code == 2


def test_comments_disabled_skips_that_video_only(api: YouTubeServer) -> None:
    api.disabled.add("vid9")
    api.comments["vid9"] = [comment("vid9", 1, likes=1)]
    fetched = fetch(youtube(api, ["vid9", "vid2", "gone"]), api_key=API_KEY)
    assert len(fetched.rows) == 30
    assert fetched.skipped == [{"videoId": "vid9", "reason": "commentsDisabled"},
                               {"videoId": "gone", "reason": "videoNotFound"}]


def test_a_repeated_cursor_aborts(api: YouTubeServer) -> None:
    api.comments["vid1"] = [comment("vid1", n, likes=1) for n in range(400)]
    api.loop.add("vid1")
    with pytest.raises(ApiRefusedError, match=r"\(videoId=vid1\) page 2: the API repeated the "
                       r"cursor '\w+' \(nextPageToken\); aborted rather than loop"):
        fetch(youtube(api, ["vid1"]), api_key=API_KEY)
    assert len(api.requests) == 2


def test_the_page_cap_aborts(api: YouTubeServer) -> None:
    with pytest.raises(ApiRefusedError, match=r"\(videoId=vid1\): more than 1 pages; aborted "
                       r"\(data.max_pages"):
        fetch(youtube(api, ["vid1"], max_pages=1), api_key=API_KEY)


def generic(api: YouTubeServer, **extra: Any) -> HttpApiSource:
    return HttpApiSource.model_validate({
        "source": "http_api", "url": api.url, "params": {"part": "snippet"},
        "fan_out": {"param": "videoId", "values": ["vid2"]}, "next_link": "nextLink",
        "fields": {"id": "id", "likes": "snippet.topLevelComment.snippet.likeCount"},
        "key": "id", "api_key": {"env": "TEST_API_KEY", "header": "X-Goog-Api-Key"}, **extra})


def test_a_next_link_to_another_origin_is_refused(api: YouTubeServer) -> None:
    evil = "http://127.0.0.2:9/latest/meta-data/?videoId=vid2"
    api.next_links["vid2"] = evil
    with pytest.raises(ApiRefusedError) as caught:
        fetch(generic(api), api_key=API_KEY)
    assert f"{evil}: refusing to follow a link off the configured origin " \
           f"http://127.0.0.1:{api.port} (data.url)" in str(caught.value)
    assert len(api.requests) == 1


def test_a_next_link_on_the_origin_is_followed_with_the_key_in_a_header(
        api: YouTubeServer) -> None:
    api.next_links["vid2"] = f"{api.url}?videoId=vid2&maxResults=10&pageToken=b2Zmc2V0OjEw"
    fetched = fetch(generic(api), api_key=API_KEY)
    assert len(fetched.rows) == 20 + 10 and fetched.pages == 2  # maxResults 20, then 10
    assert all(r["headers"].get("X-Goog-Api-Key") == API_KEY for r in api.requests)
    assert all("key" not in r["query"] for r in api.requests)


def test_a_host_resolving_to_a_private_address_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"api.example.com": "93.184.216.34"}

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    config = HttpApiSource.model_validate({
        "source": "http_api", "url": "https://api.example.com/v1/items",
        "fields": {"id": "id"}})
    client = ApiClient(config)
    client.check_url("https://api.example.com/v1/items?page=2")  # public: fine
    answers["api.example.com"] = "169.254.169.254"  # DNS rebinding to the metadata service
    with pytest.raises(ApiRefusedError, match=r"api\.example\.com resolves to a private address"):
        client.get("https://api.example.com/v1/items?page=3")


def test_a_redirect_is_refused(api: YouTubeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    config = youtube(api, ["vid2"])
    client = ApiClient(config, API_KEY)
    with pytest.raises(ApiRefusedError, match=r"HTTP 302 redirect to http://169.254.169.254/ "
                       "refused"):
        client._answer(api.url, 302, b"", {"Location": "http://169.254.169.254/"})


def test_inline_secrets_and_bad_settings_are_spec_errors() -> None:
    base = {"source": "http_api", "url": "https://api.example.com/x", "fields": {"id": "id"}}
    cases = [
        ({"params": {"key": "AIza..."}}, "inline secret 'key' is not allowed"),
        ({"url": "https://api.example.com/x?token=abc"}, "inline secret"),
        ({"url": "file:///etc/passwd"}, "url must be an http:// or https:// URL"),
        ({"cursor": "next"}, "cursor and page_param go together"),
        ({"key": "video"}, "key 'video' is not a column of fields"),
        ({"api_key": {"env": "K", "conn_id": "c"}}, "set exactly one of api_key.env"),
    ]
    for extra, message in cases:
        with pytest.raises(ValidationError, match=message):
            HttpApiSource.model_validate({**base, **extra})


def test_the_key_comes_from_the_environment_or_a_connection() -> None:
    spec = HttpApiSource.model_validate({"source": "http_api", "profile":
                                         "youtube_comment_threads"}).api_key
    assert resolve_api_key(spec, environ={"YOUTUBE_API_KEY": " k1 "}) == "k1"
    with pytest.raises(ApiRefusedError, match="environment variable YOUTUBE_API_KEY is not "
                       "set"):
        resolve_api_key(spec, environ={})
    conn = spec.model_copy(update={"env": None, "conn_id": "youtube"})
    assert resolve_api_key(conn, lookup={"youtube": "k2"}.get) == "k2"
    with pytest.raises(ApiRefusedError, match="only be read inside an Airflow task"):
        resolve_api_key(conn)


def test_a_pipeline_spec_reads_the_api_whole_through_ingest(
        api: YouTubeServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.sources import read_source
    from conveyor.spec import load_spec

    spec = tmp_path / "p.yaml"
    spec.write_text(f"""
name: yt_whole
data:
  source: http_api
  profile: youtube_comment_threads
  url: {api.url}
  fan_out: {{param: videoId, values: [vid1, vid2]}}
schema: {{target: video_id}}
model: {{estimator: logistic_regression}}
""")
    monkeypatch.setenv("YOUTUBE_API_KEY", API_KEY)
    loaded = load_spec(spec)
    frame, facts = read_source(loaded.spec.data, tmp_path)
    assert len(frame) == 180 and facts["pages"] == 3 and facts["uri"] == api.url
    assert "YOUTUBE_API_KEY" in str(loaded.spec.dump()) and API_KEY not in str(
        loaded.spec.dump())  # the spec names the variable, never holds the key
    spec.write_text(spec.read_text().replace("fan_out:", "fan_outs:"))
    with pytest.raises(Exception, match=r"p.yaml:\d+: data.fan_outs: unknown key 'fan_outs'; "
                       r"did you mean 'fan_out'\?"):
        load_spec(spec)


def test_the_key_is_not_in_any_log_record_even_at_debug(
        api: YouTubeServer, caplog: pytest.LogCaptureFixture) -> None:
    api.script["vid2"] = ["unavailable"]
    api.quota_exceeded = False
    with caplog.at_level("DEBUG"):
        fetch(youtube(api, ["vid2"]), api_key=API_KEY, sleep=Waits())
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "commentThreads?" in text and "key=***" in text  # urllib3's request lines
    assert API_KEY not in text and API_KEY not in caplog.text
