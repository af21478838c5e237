"""A local HTTP server speaking the YouTube Data API v3 ``commentThreads.list`` wire format.

YouTube cannot be reached from here; this server answers on 127.0.0.1 as the real endpoint
does (https://developers.google.com/youtube/v3/docs/commentThreads/list): ``items`` of
``youtube#commentThread`` resources, ``nextPageToken`` / ``pageToken`` paging of at most
``maxResults`` items, and Google's error envelope ``{"error": {"code", "message", "errors":
[{"domain", "reason", "message"}]}}`` for ``quotaExceeded``, ``rateLimitExceeded``,
``commentsDisabled``, ``keyInvalid``. Faults are scripted per video (``script``) and every
request is recorded (path and query) so tests can check what was sent.

Run alone (for the example's README): ``python tests/youtube_api.py --port 8765``.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PATH = "/youtube/v3/commentThreads"
API_KEY = "AIzaSy-test-key-0123456789abcdef"


def comment(video: str, number: int, *, likes: int, replies: int = 0,
            published: str = "2026-11-30T08:00:00Z", text: str | None = None) -> dict[str, Any]:
    """One ``youtube#commentThread`` resource, as the API returns it with part=snippet."""
    cid = f"Ugx{video}{number:04d}"
    body = text if text is not None else f"comment {number} on {video}"
    return {
        "kind": "youtube#commentThread", "etag": f"etag-{cid}", "id": cid,
        "snippet": {
            "channelId": "UCchannel", "videoId": video,
            "topLevelComment": {
                "kind": "youtube#comment", "etag": f"etag-c-{cid}", "id": cid,
                "snippet": {
                    "channelId": "UCchannel", "videoId": video, "textDisplay": body,
                    "textOriginal": body, "authorDisplayName": f"@user{number}",
                    "authorProfileImageUrl": "https://yt3.ggpht.com/x",
                    "authorChannelUrl": f"http://www.youtube.com/@user{number}",
                    "authorChannelId": {"value": f"UCuser{number:04d}"},
                    "canRate": True, "viewerRating": "none", "likeCount": likes,
                    "publishedAt": published, "updatedAt": published,
                },
            },
            "canReply": True, "totalReplyCount": replies, "isPublic": True,
        },
    }


def error_body(code: int, reason: str, message: str, domain: str = "youtube.quota") -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "errors": [
        {"message": message, "domain": domain, "reason": reason}]}}).encode()


FAULTS = {
    "quota": (403, "quotaExceeded", "The request cannot be completed because you have "
              "exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>."),
    "rate": (403, "rateLimitExceeded", "The request rate is too high.", "usageLimits"),
    "disabled": (403, "commentsDisabled", "The video identified by the <code><a href=\"/"
                 "youtube/v3/docs/commentThreads/list#videoId\">videoId</a></code> parameter "
                 "has disabled comments.", "youtube.commentThread"),
    "unavailable": (503, "backendError", "Backend Error", "global"),
    "internal": (500, "internalError", "Internal Error", "global"),
}


@dataclass
class YouTubeServer:
    """The server's state: comments per video, scripted faults, recorded requests."""

    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: per video, answers to give before the real one: "429:<retry-after>", "rate",
    #: "unavailable", "internal", "quota", "disabled" (for ever), "loop" (repeat a cursor)
    script: dict[str, list[str]] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)
    quota_exceeded: bool = False
    loop: set[str] = field(default_factory=set)
    #: a ``nextLink`` on the first page of a video (for the generic connector's next links)
    next_links: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    api_key: str = API_KEY
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def start(self) -> YouTubeServer:
        state = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                state.handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ------------------------------------------------------------------ answers
    def handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.requests.append({"path": parts.path, "query": query,
                              "headers": dict(request.headers)})
        if parts.path != PATH:
            return self._send(request, 404, error_body(404, "notFound", "Not Found", "global"))
        key = query.get("key") or request.headers.get("X-Goog-Api-Key")
        if key != self.api_key:
            return self._send(request, 400, error_body(
                400, "keyInvalid", "API key not valid. Please pass a valid API key.",
                "usageLimits"))
        if self.quota_exceeded:
            return self._fault(request, "quota")
        video = query.get("videoId", "")
        pending = self.script.get(video, [])
        if pending:
            return self._fault(request, pending.pop(0))
        if video in self.disabled:
            return self._fault(request, "disabled")
        if video not in self.comments:
            return self._send(request, 404, error_body(
                404, "videoNotFound", "The video identified by the videoId parameter could "
                "not be found.", "youtube.commentThread"))
        size = min(int(query.get("maxResults", 20)), 100)
        offset = _offset(query.get("pageToken"))
        items = self.comments[video][offset:offset + size]
        body: dict[str, Any] = {
            "kind": "youtube#commentThreadListResponse", "etag": f"etag-{video}-{offset}",
            "pageInfo": {"totalResults": len(items), "resultsPerPage": size}, "items": items}
        if offset + size < len(self.comments[video]):
            body["nextPageToken"] = _token(offset + size)
        if video in self.loop and offset > 0:
            body["nextPageToken"] = _token(offset)  # the same cursor again
        if video in self.next_links and offset == 0:
            body["nextLink"] = self.next_links[video]
        return self._send(request, 200, json.dumps(body).encode())

    def _fault(self, request: BaseHTTPRequestHandler, name: str) -> None:
        if name.startswith("429"):
            after = name.split(":", 1)[1] if ":" in name else None
            return self._send(request, 429, error_body(
                429, "rateLimitExceeded", "Too Many Requests", "usageLimits"),
                {"Retry-After": after} if after else {})
        code, reason, message, *domain = FAULTS[name]
        return self._send(request, code, error_body(code, reason, message, *domain))

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: bytes,
              headers: dict[str, str] | None = None) -> None:
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=UTF-8")
        request.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    padded = token + "=" * (-len(token) % 4)
    return int(base64.urlsafe_b64decode(padded).decode().split(":", 1)[1])


def synthetic_comments(video: str, count: int, *, seed: int) -> list[dict[str, Any]]:
    """``count`` comments whose likes grow with their replies, length and age (seeded)."""
    import random

    rng = random.Random(seed)
    found = []
    for number in range(count):
        replies = rng.randint(0, 6)
        text = "x" * rng.randint(5, 400)
        hour = rng.randint(0, 8)
        likes = int(max(0.0, (replies * 3 + len(text) / 40 + hour) * rng.uniform(0.5, 1.5)))
        found.append(comment(video, number, likes=likes, replies=replies, text=text,
                             published=f"2026-11-30T0{hour}:00:00Z"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    server = YouTubeServer(port=args.port, comments={
        # the videos of examples/youtube_comments/collect.yaml
        "jNQXAC9IVRw": synthetic_comments("jNQXAC9IVRw", 300, seed=1),
        "dQw4w9WgXcQ": synthetic_comments("dQw4w9WgXcQ", 200, seed=2)},
        disabled={"9bZkp7q19f0"})
    server.start()
    print(f"serving {server.url}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
