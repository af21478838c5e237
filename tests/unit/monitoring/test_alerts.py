"""The webhook and the Airflow trigger: bounded, retried once, never raising, URL never logged."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conveyor.monitoring import alerts


class _Scripted(ThreadingHTTPServer):
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.seen: list[tuple[str, str, bytes]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Scripted

    def log_message(self, *args: object) -> None:
        return

    def _reply(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path, body))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        payload = json.dumps({"access_token": "t", "dag_run_id": "run-1"}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _reply


@pytest.fixture()
def server(request: pytest.FixtureRequest) -> Iterator[_Scripted]:
    srv = _Scripted(list(getattr(request, "param", [])))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def fast_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts, "RETRY_DELAY_SECONDS", 0.01)


@pytest.mark.parametrize("server", [[503]], indirect=True)
def test_the_webhook_is_retried_once_after_a_5xx(server: _Scripted,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK", server.url + "/secret-path")
    assert alerts.notify("hello", url_env="HOOK") == {"sent": True, "env": "HOOK"}
    assert [(m, p) for m, p, _ in server.seen] == [("POST", "/secret-path")] * 2
    assert json.loads(server.seen[1][2]) == {"text": "hello"}


@pytest.mark.parametrize("server", [[400]], indirect=True)
def test_a_4xx_is_not_retried_and_the_url_is_never_logged(
        server: _Scripted, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("HOOK", server.url + "/secret-path")
    with caplog.at_level(logging.DEBUG):
        result = alerts.notify("hello", url_env="HOOK")
    assert result == {"sent": False, "env": "HOOK", "error": "HTTP 400"}
    assert len(server.seen) == 1
    assert "secret-path" not in caplog.text and "HOOK" in caplog.text


def test_an_unreachable_webhook_or_none_set_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK", raising=False)
    assert alerts.notify("x", url_env="HOOK")["error"] == "HOOK is not set"
    monkeypatch.setenv("HOOK", "file:///etc/passwd")
    assert alerts.notify("x", url_env="HOOK")["error"] == "HOOK is not an http(s) URL"
    monkeypatch.setenv("HOOK", "http://127.0.0.1:9/closed")
    result = alerts.notify("x", url_env="HOOK", timeout=2)
    assert result["sent"] is False and result["error"].startswith("unreachable")


def test_trigger_dag_speaks_airflows_rest_api(server: _Scripted) -> None:
    result = alerts.trigger_dag(server.url, "breast_cancer", {"reason": "drift"})
    assert result["triggered"] is True and result["dag_run_id"] == "run-1"
    assert [(m, p) for m, p, _ in server.seen] == [
        ("GET", "/auth/token"), ("POST", "/api/v2/dags/breast_cancer/dagRuns")]
    assert json.loads(server.seen[1][2]) == {"logical_date": None, "conf": {"reason": "drift"}}


@pytest.mark.parametrize("server", [[200, 404]], indirect=True)
def test_trigger_dag_reports_an_unknown_dag_without_raising(server: _Scripted) -> None:
    result = alerts.trigger_dag(server.url, "nope", {})
    assert result["triggered"] is False and result["error"].startswith("HTTP 404")


@pytest.mark.parametrize("server", [[200, 503, 409]], indirect=True)
def test_a_retried_trigger_never_starts_a_second_run(server: _Scripted) -> None:
    """The first POST made the run but answered 503; the retry with the same run id is a
    409, which means "already triggered", not a failure and not a second run."""
    conf = {"reason": "drift", "check_id": "20261130T094548906489-c261b0"}
    result = alerts.trigger_dag(server.url, "breast_cancer", conf)
    assert result["triggered"] is True and result.get("existed") is True
    assert result["dag_run_id"] == "conveyor_monitor__20261130T094548906489-c261b0"
    posts = [json.loads(body) for method, _, body in server.seen if method == "POST"]
    assert len(posts) == 2 and posts[0] == posts[1]
    assert posts[0]["dag_run_id"] == result["dag_run_id"] and posts[0]["conf"] == conf


@pytest.mark.parametrize("server", [[200, 409]], indirect=True)
def test_a_conflict_without_a_check_id_is_an_error(server: _Scripted) -> None:
    result = alerts.trigger_dag(server.url, "breast_cancer", {"reason": "drift"})
    assert result["triggered"] is False and result["error"].startswith("HTTP 409")
