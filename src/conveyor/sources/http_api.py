"""A paginated HTTP JSON API as a data source (``data.source: http_api``).

One request series per fan-out value (a YouTube video id), page after page: the items at a
dotted path of each page become rows through a field mapping (dotted paths into each item);
the next page is asked for with a cursor read from the page (``nextPageToken`` sent back as
``pageToken``) or a ``next`` link. A ready profile fills all of that in for the YouTube Data
API v3 ``commentThreads`` endpoint (:data:`PROFILES`).

What it survives (docs/decisions/0045): 429 and 5xx answers and a 403 whose reason is listed
under ``errors.retry`` (``rateLimitExceeded``) are retried with exponential backoff, honouring
``Retry-After``; a reason under ``errors.fail`` (``quotaExceeded``) fails at once; a reason
under ``errors.skip`` (``commentsDisabled``) skips that fan-out value and records it; a cursor
seen twice or more pages than ``max_pages`` aborts. Only URLs on the configured origin are
requested (scheme, host and port), redirects are refused, and a host that resolves to a
private address is refused unless the configured origin is itself private. The API key comes
from an environment variable or an Airflow connection; it is never logged and is replaced by
``***`` in every message.

The module is light (pydantic only): urllib3 and pandas are imported when a source is read.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import random
import re
import socket
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode, urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conveyor.errors import BadInputError, ConveyorRuntimeError, DataError
from conveyor.sources.base import BaseSource

__all__ = [
    "PROFILES",
    "ApiClient",
    "ApiKeySpec",
    "ApiRefusedError",
    "ApiUnavailableError",
    "Fetched",
    "HttpApiSource",
    "HttpApiSourceReader",
    "fetch",
    "get_path",
    "resolve_api_key",
]

log = logging.getLogger(__name__)

#: Query parameters whose values are secrets: they belong in ``api_key``, not in ``params``.
_SECRET_PARAMS = frozenset({"key", "api_key", "apikey", "access_token", "token", "secret",
                            "password", "client_secret"})
_ENV_NAME = r"^[A-Z_][A-Z0-9_]{0,127}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiKeySpec(_Model):
    """``data.api_key``: where the key comes from and how it is sent. Never the key itself."""

    env: str | None = Field(default=None, pattern=_ENV_NAME,
                            description="the environment variable holding the key")
    conn_id: str | None = Field(default=None, min_length=1, description="an Airflow "
                                "connection whose password is the key (inside Airflow only)")
    param: str | None = Field(default=None, min_length=1,
                              description="the query parameter carrying the key (key)")
    header: str | None = Field(default=None, min_length=1,
                               description="or the header carrying it (X-Goog-Api-Key)")

    @model_validator(mode="after")
    def _one_of_each(self) -> ApiKeySpec:
        if (self.env is None) == (self.conn_id is None):
            raise ValueError("set exactly one of api_key.env (an environment variable) and "
                             "api_key.conn_id (an Airflow connection)")
        if self.param is not None and self.header is not None:
            raise ValueError("set one of api_key.param and api_key.header, not both")
        return self


class FanOutSpec(_Model):
    """``data.fan_out``: one request series per value of one query parameter."""

    param: str = Field(min_length=1)
    values: list[str] = Field(min_length=1, max_length=1000)


class ErrorRules(_Model):
    """``data.errors``: what an error answer's reason (a dotted path into its body) means."""

    reason: str = Field(default="error.errors.0.reason", description="dotted path")
    message: str = Field(default="error.message", description="dotted path")
    retry: list[str] = Field(default_factory=list, description="retried with backoff")
    fail: list[str] = Field(default_factory=list, description="fail at once")
    skip: list[str] = Field(default_factory=list, description="skip the fan-out value")


YOUTUBE_COMMENT_THREADS: dict[str, Any] = {
    "url": "https://www.googleapis.com/youtube/v3/commentThreads",
    "params": {"part": "snippet", "maxResults": 100, "textFormat": "plainText"},
    "items": "items",
    "cursor": "nextPageToken",
    "page_param": "pageToken",
    "key": "id",
    "fields": {
        "id": "id",
        "video_id": "snippet.videoId",
        "reply_count": "snippet.totalReplyCount",
        "like_count": "snippet.topLevelComment.snippet.likeCount",
        "text": "snippet.topLevelComment.snippet.textOriginal",
        "published_at": "snippet.topLevelComment.snippet.publishedAt",
        "author_channel_id": "snippet.topLevelComment.snippet.authorChannelId.value",
    },
    "api_key": {"env": "YOUTUBE_API_KEY", "param": "key"},
    "errors": {
        "retry": ["rateLimitExceeded", "userRateLimitExceeded", "backendError"],
        "fail": ["quotaExceeded", "dailyLimitExceeded", "keyInvalid", "keyExpired",
                 "accessNotConfigured", "forbidden"],
        "skip": ["commentsDisabled", "videoNotFound"],
    },
    "features": "youtube_comments",
}
#: Ready-made settings; a key written in the spec wins over the profile's (``params`` merge).
PROFILES: dict[str, dict[str, Any]] = {"youtube_comment_threads": YOUTUBE_COMMENT_THREADS}


class HttpApiSource(_Model):
    """``data:`` of a paginated HTTP JSON API (``source: http_api``)."""

    source: Literal["http_api"]
    profile: Literal["youtube_comment_threads"] | None = None
    url: str = Field(min_length=1, description="the endpoint (http:// or https://)")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    fan_out: FanOutSpec | None = None
    items: str = Field(default="items", min_length=1, description="dotted path of the items")
    cursor: str | None = Field(default=None, description="dotted path of the next cursor")
    page_param: str | None = Field(default=None, description="query parameter of the cursor")
    next_link: str | None = Field(default=None, description="dotted path of a next URL")
    fields: dict[str, str] = Field(min_length=1,
                                   description="column -> dotted path into each item")
    key: str | None = Field(default=None, description="the column identifying a record")
    features: Literal["youtube_comments"] | None = Field(
        default=None, description="derived columns added after the mapping")
    api_key: ApiKeySpec | None = None
    errors: ErrorRules = Field(default_factory=ErrorRules)
    max_pages: int = Field(default=100, ge=1, le=100_000, description="per fan-out value")
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    retries: int = Field(default=5, ge=0, le=20)
    backoff_seconds: float = Field(default=1.0, ge=0, le=600)
    max_wait_seconds: float = Field(default=120.0, ge=0, le=3600,
                                    description="the longest wait (Retry-After or backoff)")
    max_page_bytes: int = Field(default=16 * 1024**2, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("profile") not in PROFILES:
            return data
        merged = {**PROFILES[data["profile"]], **data}
        merged["params"] = {**PROFILES[data["profile"]].get("params", {}),
                            **(data.get("params") or {})}
        return merged

    @model_validator(mode="after")
    def _consistent(self) -> HttpApiSource:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be an http:// or https:// URL, got {self.url!r}")
        if parts.username or parts.password:
            raise ValueError("url must not carry credentials; use api_key")
        secret = sorted(p for p in self.params if p.lower() in _SECRET_PARAMS)
        if secret or any(k.lower() in _SECRET_PARAMS for k in _query_keys(parts.query)):
            raise ValueError(f"inline secret {(secret or ['in url'])[0]!r} is not allowed in "
                             "a spec; set api_key.env to the environment variable holding it")
        if (self.cursor is None) != (self.page_param is None):
            raise ValueError("cursor and page_param go together (read the cursor from the "
                             "page, send it back as page_param)")
        if self.cursor is not None and self.next_link is not None:
            raise ValueError("set cursor/page_param or next_link, not both")
        if self.key is not None and self.key not in self.fields:
            raise ValueError(f"key {self.key!r} is not a column of fields")
        if self.fan_out is not None and self.fan_out.param in self.params:
            raise ValueError(f"fan_out.param {self.fan_out.param!r} is also in params")
        return self


def _query_keys(query: str) -> list[str]:
    return [part.split("=", 1)[0] for part in query.split("&") if part]


def get_path(data: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``snippet.topLevelComment.snippet.likeCount``;
    ``errors.0.reason`` indexes a list), or ``None`` when any part is missing."""
    value = data
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
        if value is None:
            return None
    return value


class ApiRefusedError(BadInputError):
    """The API refused for good (quota, key, bad request, a loop): retrying cannot help."""


class ApiUnavailableError(ConveyorRuntimeError):
    """The API stayed unavailable through every retry (a later attempt may succeed)."""


def resolve_api_key(spec: ApiKeySpec | None, *, lookup: Callable[[str], str] | None = None,
                    environ: Mapping[str, str] | None = None) -> str | None:
    """The API key ``spec`` names, or ``None`` without one.

    Args:
        spec: ``data.api_key``.
        lookup: reads an Airflow connection's password (``conn_id``); the Airflow task gives
            it, since only ``conveyor.airflow`` may import Airflow.
        environ: the environment (``os.environ`` by default).

    Raises:
        ApiRefusedError: the variable is unset or empty, or ``conn_id`` without Airflow.
    """
    if spec is None:
        return None
    if spec.env is not None:
        value = (os.environ if environ is None else environ).get(spec.env, "")
        if not value.strip():
            raise ApiRefusedError(f"data.api_key.env: the environment variable {spec.env} "
                                  "is not set; export the API key in it")
        return value.strip()
    if lookup is None:
        raise ApiRefusedError(f"data.api_key.conn_id: the Airflow connection {spec.conn_id!r} "
                              "can only be read inside an Airflow task; elsewhere set "
                              "api_key.env")
    value = lookup(str(spec.conn_id)) or ""
    if not value.strip():
        raise ApiRefusedError(f"data.api_key.conn_id: the Airflow connection {spec.conn_id!r} "
                              "has no password; put the API key there")
    return value.strip()


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https"
                                                                  else 80)


def _private(host: str, port: int) -> bool:
    """Whether ``host`` is, or resolves to, an address that is not public."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port,
                                                               type=socket.SOCK_STREAM)}
    except OSError:
        return False  # unresolvable: the request fails on its own, and is retried
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            return True
    return False


class _RedactFilter(logging.Filter):
    """Redacts API keys from urllib3's own records: at DEBUG its connection pool logs every
    request line, query string included (``GET /v3/commentThreads?...&key=AIza...``)."""

    keys: ClassVar[set[str]] = set()
    params: ClassVar[set[str]] = set(_SECRET_PARAMS)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for key in self.keys:
            redacted = redacted.replace(key, "***")
        names = "|".join(re.escape(p) for p in sorted(self.params))
        redacted = re.sub(rf"([?&](?:{names})=)[^&\s'\"]*", r"\1***", redacted)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACT = _RedactFilter()


def _guard_library_logs(api_key: str | None, param: str | None) -> None:
    if api_key:
        _RedactFilter.keys.add(api_key)
    if param:
        _RedactFilter.params.add(param)
    for name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection"):
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


@dataclass
class _Answer:
    status: int
    body: Any
    headers: Mapping[str, str]


@dataclass
class ApiClient:
    """GET JSON from one origin: timeouts, retries with backoff, SSRF guard, key redaction.

    Args:
        config: the validated ``data:`` section.
        api_key: the key (from :func:`resolve_api_key`), or ``None``.
        sleep: how to wait (tests pass a recorder; never called with more than
            ``max_wait_seconds``).
    """

    config: HttpApiSource
    api_key: str | None = None
    sleep: Callable[[float], None] = time.sleep
    requests: int = 0
    retries: int = 0
    waits: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        import urllib3

        spec = self.config.api_key
        _guard_library_logs(self.api_key, spec.param or "key" if spec is not None else None)
        self._origin = _origin(self.config.url)
        self._origin_private = _private(self._origin[1], self._origin[2])
        timeout = self.config.timeout_seconds
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(10.0, timeout), read=timeout),
            retries=False, headers={"Accept": "application/json",
                                    "User-Agent": "conveyor-http-api"})

    def redact(self, text: str) -> str:
        """``text`` with the key (and any ``key=`` query value) replaced by ``***``."""
        if self.api_key:
            text = text.replace(self.api_key, "***")
        spec = self.config.api_key
        if spec is not None and spec.header is None:
            name = re.escape(spec.param or "key")
            text = re.sub(rf"([?&]{name}=)[^&\s'\"]*", r"\1***", text)
        return text

    def url(self, base: str, params: Mapping[str, Any]) -> str:
        """``base`` with ``params`` (and the key, when it travels in the query) appended."""
        query = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()}
        spec = self.config.api_key
        if self.api_key and spec is not None and spec.header is None:
            query[spec.param or "key"] = self.api_key
        if not query:
            return base
        return base + ("&" if urlsplit(base).query else "?") + urlencode(query)

    def check_url(self, url: str) -> None:
        """Refuse a URL off the configured origin, or one resolving to a private address
        when the configured origin is public (SSRF).

        Raises:
            ApiRefusedError: naming the URL (redacted) and the configured origin.
        """
        origin = _origin(url)
        if origin != self._origin:
            raise ApiRefusedError(
                f"{self.redact(url)}: refusing to follow a link off the configured origin "
                f"{self._origin[0]}://{self._origin[1]}:{self._origin[2]} (data.url)")
        if not self._origin_private and _private(origin[1], origin[2]):
            raise ApiRefusedError(f"{self.redact(url)}: {origin[1]} resolves to a private "
                                  "address; refused (the configured origin is public)")

    def get(self, url: str) -> _Answer:
        """One GET, retried on 429, 5xx, transport errors and the ``errors.retry`` reasons.

        Returns:
            The answer: 2xx with a JSON body, or a 4xx the caller decides about.

        Raises:
            ApiRefusedError: a redirect, a reason under ``errors.fail``, a URL refused.
            ApiUnavailableError: still failing after ``retries`` retries, or asked to wait
                longer than ``max_wait_seconds``.
        """
        import urllib3

        self.check_url(url)
        config = self.config
        headers = {}
        if self.api_key and config.api_key is not None and config.api_key.header:
            headers[config.api_key.header] = self.api_key
        last = ""
        for attempt in range(config.retries + 1):
            self.requests += 1
            log.debug("GET %s (attempt %d)", self.redact(url), attempt + 1)
            retry_after: str | None = None
            try:
                response = self._pool.request("GET", url, headers=headers, redirect=False,
                                              preload_content=False)
                try:
                    raw = response.read(config.max_page_bytes + 1, decode_content=True)
                finally:
                    response.release_conn()
            except urllib3.exceptions.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                answer = self._answer(url, response.status, raw, response.headers)
                if answer is not None:
                    return answer
                retry_after = response.headers.get("Retry-After")
                last = f"HTTP {response.status} {self._reason(raw) or ''}".rstrip()
            if attempt == config.retries:
                break
            wait = self._wait(attempt, retry_after, url)
            self.retries += 1
            log.warning("%s: %s; retry %d of %d in %.1fs", self.redact(url), self.redact(last),
                        attempt + 1, config.retries, wait)
            self.waits.append(wait)
            if wait > 0:
                self.sleep(wait)
        raise ApiUnavailableError(f"{self.redact(url)}: {self.redact(last)} after "
                                  f"{config.retries} retries (data.retries)")

    def _reason(self, raw: bytes) -> str | None:
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        reason = get_path(body, self.config.errors.reason)
        return reason if isinstance(reason, str) else None

    def _answer(self, url: str, status: int, raw: bytes,
                headers: Mapping[str, str]) -> _Answer | None:
        """The answer to hand back, ``None`` to retry, or an exception for a refusal."""
        rules = self.config.errors
        if 300 <= status < 400:
            raise ApiRefusedError(
                f"{self.redact(url)}: HTTP {status} redirect to "
                f"{self.redact(str(headers.get('Location')))} refused; set data.url to the "
                "final address")
        if len(raw) > self.config.max_page_bytes:
            raise ApiRefusedError(f"{self.redact(url)}: the answer is over "
                                  f"{self.config.max_page_bytes} bytes (data.max_page_bytes)")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
            if 200 <= status < 300:
                return None  # a truncated or garbled page: ask again
        if status == 429 or status >= 500:
            return None
        reason = get_path(body, rules.reason)
        if reason in rules.retry:
            return None
        if reason in rules.fail:
            message = get_path(body, rules.message) or ""
            raise ApiRefusedError(self.redact(
                f"{url}: HTTP {status} {reason}: {message} — the API refuses until this is "
                f"fixed (a quota resets daily); stopped at once, nothing was written "
                f"(data.errors.fail)"))
        return _Answer(status, body, headers)

    def _wait(self, attempt: int, retry_after: str | None, url: str) -> float:
        config = self.config
        if retry_after is not None:
            seconds = _retry_after_seconds(retry_after)
            if seconds is not None:
                if seconds > config.max_wait_seconds:
                    raise ApiUnavailableError(
                        f"{self.redact(url)}: the API asks to wait {seconds:.0f}s "
                        f"(Retry-After), over data.max_wait_seconds={config.max_wait_seconds:g}")
                return seconds
        ceiling = min(config.max_wait_seconds, config.backoff_seconds * 2 ** attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def _retry_after_seconds(value: str) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass
class Fetched:
    """What one fetch brought: the items mapped to rows, and how it went."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    requests: int = 0
    retries: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    uri: str = ""
    #: fan-out values whose paging stopped at a page of known records
    stopped_early: int = 0


def _series(config: HttpApiSource) -> Iterator[tuple[str | None, dict[str, Any]]]:
    if config.fan_out is None:
        yield None, dict(config.params)
        return
    for value in dict.fromkeys(config.fan_out.values):
        yield value, {**config.params, config.fan_out.param: value}


def fetch(config: HttpApiSource, *, api_key: str | None = None,
          sleep: Callable[[float], None] = time.sleep,
          known: Collection[Any] | None = None) -> Fetched:
    """Every page of every fan-out value, mapped to rows.

    With ``known`` (record keys already collected) a fan-out value's paging stops after the
    first page whose every record is known: for an API listing newest first (YouTube's
    ``commentThreads`` with ``order=time``, its default) the pages after it hold no new
    records, and each page costs quota.

    Raises:
        ApiRefusedError: a refusal, a repeated cursor, more than ``max_pages`` pages, an
            off-origin link (bad input for the CLI: exit 2, no Airflow retries).
        ApiUnavailableError: retries exhausted (retried by Airflow).
        DataError: a page or item of an unexpected shape.
    """
    client = ApiClient(config, api_key, sleep=sleep)
    out = Fetched(uri=client.redact(config.url))
    for value, params in _series(config):
        where = f" ({config.fan_out.param}={value})" if config.fan_out is not None else ""
        url = client.url(config.url, params)
        seen: set[str] = set()
        pages = 0
        while url:
            if pages == config.max_pages:
                raise ApiRefusedError(
                    f"{out.uri}{where}: more than {config.max_pages} pages; aborted "
                    "(data.max_pages; raise it if the API really has that many)")
            answer = client.get(url)
            pages += 1
            if answer.status >= 400:
                reason = get_path(answer.body, config.errors.reason)
                if value is not None and reason in config.errors.skip:
                    log.info("%s%s: skipped (%s)", out.uri, where, reason)
                    out.skipped.append({config.fan_out.param: value,  # type: ignore[union-attr]
                                        "reason": str(reason)})
                    break
                message = get_path(answer.body, config.errors.message) or ""
                raise ApiRefusedError(client.redact(
                    f"{url}: HTTP {answer.status} {reason or ''}: {message}".rstrip(": ")))
            rows = _rows(config, answer.body, f"{out.uri}{where} page {pages}")
            out.rows.extend(rows)
            if known is not None and config.key is not None and rows and all(
                    row[config.key] in known for row in rows):
                out.stopped_early += 1
                break
            url = _next_url(config, client, answer.body, url, params, seen,
                            f"{out.uri}{where} page {pages}")
        out.pages += pages
    out.requests, out.retries = client.requests, client.retries
    return out


def _rows(config: HttpApiSource, body: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(body, Mapping):
        raise DataError(f"{where}: the answer is not a JSON object")
    items = get_path(body, config.items)
    if items is None:
        items = []
    if not isinstance(items, list):
        raise DataError(f"{where}: {config.items!r} (data.items) is not a list")
    rows = []
    for index, item in enumerate(items):
        row = {column: get_path(item, path) for column, path in config.fields.items()}
        if config.key is not None and row[config.key] in (None, ""):
            raise DataError(f"{where}: item {index} has no {config.key!r} "
                            f"(data.fields.{config.key}: {config.fields[config.key]!r})")
        rows.append(row)
    return rows


def _next_url(config: HttpApiSource, client: ApiClient, body: Mapping[str, Any], url: str,
              params: dict[str, Any], seen: set[str], where: str) -> str | None:
    if config.cursor is not None:
        cursor = get_path(body, config.cursor)
        if cursor in (None, ""):
            return None
        cursor = str(cursor)
        if cursor in seen:
            raise ApiRefusedError(f"{where}: the API repeated the cursor {cursor!r} "
                                  f"({config.cursor}); aborted rather than loop")
        seen.add(cursor)
        return client.url(config.url, {**params, config.page_param: cursor})
    if config.next_link is not None:
        link = get_path(body, config.next_link)
        if link in (None, ""):
            return None
        target = urljoin(url, str(link))
        if target in seen:
            raise ApiRefusedError(f"{where}: the API repeated the next link "
                                  f"{client.redact(target)}; aborted rather than loop")
        seen.add(target)
        client.check_url(target)
        return target
    return None


def youtube_comment_features(frame: Any, collected_at: Any) -> Any:
    """``text_length``, ``age_hours`` at ``collected_at`` and ``log1p_likes`` (the target).

    ``collected_at`` is the end of the collected interval, so a re-run of an interval
    computes the same ages.
    """
    import numpy as np
    import pandas as pd

    frame = frame.copy()
    published = pd.to_datetime(frame["published_at"], utc=True, errors="coerce")
    frame["text_length"] = frame["text"].fillna("").astype(str).str.len()
    frame["age_hours"] = ((pd.Timestamp(collected_at) - published).dt.total_seconds()
                          / 3600.0).round(3)
    likes = pd.to_numeric(frame["like_count"], errors="coerce")
    frame["reply_count"] = pd.to_numeric(frame["reply_count"], errors="coerce")
    frame["log1p_likes"] = np.log1p(likes.clip(lower=0))
    return frame


_FEATURES: dict[str, Callable[[Any, Any], Any]] = {"youtube_comments": youtube_comment_features}


def to_frame(config: HttpApiSource, fetched: Fetched, collected_at: Any) -> Any:
    """The fetched rows as a DataFrame (columns in ``fields`` order), features added."""
    import pandas as pd

    frame = pd.DataFrame(fetched.rows, columns=list(config.fields))
    if config.key is not None:
        frame = frame.drop_duplicates(subset=[config.key], keep="first").reset_index(drop=True)
    if config.features is not None:
        frame = _FEATURES[config.features](frame, collected_at)
    return frame


class HttpApiSourceReader(BaseSource):
    """A paginated HTTP JSON API, read whole (``data.source: http_api``)."""

    name = "http_api"
    spec_model = HttpApiSource

    def read(self, config: Any, base_dir: Path) -> tuple[Any, dict[str, Any]]:
        from datetime import UTC, datetime

        fetched = fetch(config, api_key=resolve_api_key(config.api_key))
        frame = to_frame(config, fetched, datetime.now(UTC))
        return frame, {"uri": fetched.uri, "first_line": None, "lines": None,
                       "pages": fetched.pages, "skipped": fetched.skipped}
