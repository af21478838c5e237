"""``data.source: openml``: a data set from OpenML by name or id, kept in a local cache.

    data: {source: openml, name: credit-g}            # the oldest active version
    data: {source: openml, name: credit-g, version: 1}
    data: {source: openml, id: 31}

The REST API (what scikit-learn's ``fetch_openml`` and openml-python call):
``GET {base}/api/v1/json/data/list/data_name/{name}/limit/2/status/active/`` (or
``.../data_version/{v}``) → ``{"data": {"dataset": [{"did": 31, "version": 1, ...}]}}``, a 412
with ``{"error": {"code": "372", "message": "No results"}}`` when none matches;
``GET {base}/api/v1/json/data/{id}`` → ``{"data_set_description": {"url": ..., "md5_checksum":
..., "format": "ARFF", "default_target_attribute": ..., ...}}``; then the ARFF file at its
``url``, checked against the MD5 the description gives. The base is
``https://www.openml.org`` unless ``data.base_url`` or ``CONVEYOR_OPENML_URL`` says otherwise
(a mirror, or a local server in tests).

Everything fetched is cached under ``CONVEYOR_OPENML_CACHE``, else
``CONVEYOR_HOME/cache/openml``: a second read makes no request. A cached file is written
whole or not at all, and the ARFF file is checked against its MD5 before it is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conveyor.sources.base import BaseSource, SourceError, SourceUnreachableError

__all__ = ["DEFAULT_OPENML_URL", "OpenMLSource", "OpenMLSourceReader", "openml_cache_dir"]

log = logging.getLogger(__name__)

DEFAULT_OPENML_URL = "https://www.openml.org"
_TIMEOUT = 30.0
_MAX_BYTES = 2 * 1024**3  # a data file
_MAX_JSON_BYTES = 64 * 1024**2  # a list or a description
_PIECE = 1024**2  # bytes per piece of a download
_ROWS_PER_CHUNK = 50_000  # ARFF rows parsed into one frame at a time


class OpenMLSource(BaseModel):
    """A data set published on OpenML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["openml"]
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.()-]{1,128}$")
    id: int | None = Field(default=None, gt=0)
    version: int | None = Field(default=None, gt=0,
                                description="With name: this version (default: the oldest "
                                            "active one).")
    base_url: str | None = Field(default=None, pattern=r"^https?://",
                                 description="OpenML's address (default "
                                             "CONVEYOR_OPENML_URL or https://www.openml.org).")

    @model_validator(mode="after")
    def _name_or_id(self) -> OpenMLSource:
        if (self.name is None) == (self.id is None):
            raise ValueError("give exactly one of name and id")
        if self.version is not None and self.name is None:
            raise ValueError("version goes with name (an id names one version already)")
        return self


def openml_cache_dir() -> Path:
    """Where fetched OpenML files are kept."""
    explicit = os.environ.get("CONVEYOR_OPENML_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    from conveyor.store import home_dir

    return home_dir() / "cache" / "openml"


class OpenMLSourceReader(BaseSource):
    """A data set from OpenML (``data.source: openml``)."""

    name = "openml"
    spec_model = OpenMLSource

    def read(self, config: Any, base_dir: Path) -> tuple[Any, dict[str, Any]]:
        base = (config.base_url or os.environ.get("CONVEYOR_OPENML_URL")
                or DEFAULT_OPENML_URL).rstrip("/")
        client = _Client(base, openml_cache_dir() / _host_key(base))
        data_id = config.id if config.id is not None else client.find(config.name,
                                                                      config.version)
        description = client.description(data_id)
        if str(description.get("format", "ARFF")).lower() not in ("arff", "sparse_arff"):
            raise SourceError(f"OpenML data set {data_id} is {description.get('format')}, "
                              "not ARFF", key="data.id" if config.id else "data.name")
        path = client.arff(data_id, description)
        frame = parse_arff(path, f"OpenML data set {data_id}")
        log.info("OpenML data set %s (%s version %s): %d rows", data_id,
                 description.get("name"), description.get("version"), len(frame))
        return frame, {"uri": f"{base}/d/{data_id}", "bytes": path.stat().st_size, "format": "arff",
                       "first_line": None, "lines": None,
                       "openml": {"id": int(data_id), "name": description.get("name"),
                                  "version": description.get("version"),
                                  "default_target": description.get(
                                      "default_target_attribute")}}


def _host_key(base: str) -> str:
    # one cache per server: a mirror's id 31 need not be openml.org's
    return re.sub(r"[^A-Za-z0-9._-]", "_", urlsplit(base).netloc) or "openml"


class _Client:
    """The few OpenML calls a read needs, each answered from the cache when it can be."""

    def __init__(self, base: str, cache: Path) -> None:
        self.base = base
        self.cache = cache

    def _get(self, url: str, key: str, *, not_found: str) -> bytes:
        """A small answer (a JSON document), whole."""
        import httpx

        try:
            with httpx.Client(timeout=_TIMEOUT, follow_redirects=False,
                              transport=httpx.HTTPTransport(retries=2)) as client:
                response = client.get(url, headers={"Accept-Encoding": "gzip"})
        except httpx.HTTPError as exc:
            raise self._unreachable(exc, key) from None
        self._check(response, url, key, not_found)
        if len(response.content) > _MAX_JSON_BYTES:
            raise SourceError(f"{url} is over {_MAX_JSON_BYTES:,} bytes", key=key)
        return response.content

    def _download(self, url: str, path: Path, key: str, *, what: str, md5: str | None) -> None:
        """Stream a data file to ``path`` in pieces, checking its size and MD5 on the way.

        The body never sits in memory whole: it goes to a temporary file beside ``path``,
        which replaces ``path`` only when the whole file arrived and matched ``md5``, so the
        cache never holds a partial or corrupt file.
        """
        import tempfile

        import httpx

        path.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.md5(), 0  # OpenML publishes MD5
        descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with (os.fdopen(descriptor, "wb") as handle,
                  httpx.Client(timeout=_TIMEOUT, follow_redirects=False,
                               transport=httpx.HTTPTransport(retries=2)) as client,
                  client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response):
                if response.status_code != 200:
                    response.read()
                    self._check(response, url, key, f"{what} is gone")
                for piece in response.iter_bytes(_PIECE):
                    size += len(piece)
                    if size > _MAX_BYTES:
                        raise SourceError(f"{url} is over {_MAX_BYTES:,} bytes", key=key)
                    digest.update(piece)
                    handle.write(piece)
            if md5 and digest.hexdigest() != md5:
                # damaged on the way (a proxy, a cut stream): worth a retry (ADR 0053)
                raise SourceUnreachableError(f"{what} does not match its MD5 {md5}; fetch it "
                                             "again later", key=key)
            os.replace(partial, path)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc, key) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)

    def _unreachable(self, exc: Exception, key: str) -> SourceError:
        return SourceUnreachableError(
            f"cannot reach OpenML at {self.base}: {exc or type(exc).__name__}; check "
            "data.base_url or CONVEYOR_OPENML_URL", key=key)

    @staticmethod
    def _check(response: Any, url: str, key: str, not_found: str) -> None:
        if response.status_code in (404, 412):
            raise SourceError(not_found + _api_message(response), key=key)
        if response.status_code != 200:
            # a 5xx may pass (exit 1, retried); any other answer is a refusal (ADR 0053)
            problem = SourceUnreachableError if response.status_code >= 500 else SourceError
            raise problem(f"OpenML answered {response.status_code} for {url}"
                          + _api_message(response), key=key)

    def _json(self, path: str, cached: Path, key: str, not_found: str) -> Any:
        if cached.is_file():
            return json.loads(cached.read_bytes())
        body = self._get(f"{self.base}/api/v1/json/{path}", key, not_found=not_found)
        try:
            data = json.loads(body)
        except ValueError:
            raise SourceError(f"OpenML's answer to {path} is not JSON", key=key) from None
        _keep(cached, body)
        return data

    def find(self, name: str, version: int | None) -> int:
        """The id of data set ``name`` (its oldest active version, or ``version``)."""
        path = f"data/list/data_name/{quote(name)}/limit/2/" + (
            f"data_version/{version}" if version else "status/active/")
        label = f"{name} version {version}" if version else name
        data = self._json(path, self.cache / "names" / f"{name}@{version or 'active'}.json",
                          "data.name", f"OpenML has no active data set named {label!r}")
        try:
            return int(data["data"]["dataset"][0]["did"])
        except (KeyError, IndexError, TypeError, ValueError):
            raise SourceError(f"OpenML's list for {label!r} has no data set id",
                              key="data.name") from None

    def description(self, data_id: int) -> dict[str, Any]:
        data = self._json(f"data/{data_id}", self.cache / str(data_id) / "description.json",
                          "data.id", f"OpenML has no data set {data_id}")
        try:
            return dict(data["data_set_description"])
        except (KeyError, TypeError):
            raise SourceError(f"OpenML's description of {data_id} has no "
                              "data_set_description", key="data.id") from None

    def arff(self, data_id: int, description: dict[str, Any]) -> Path:
        """The data set's ARFF file in the cache, downloaded first if it is not there."""
        cached = self.cache / str(data_id) / "data.arff"
        if not cached.is_file():
            url = str(description.get("url") or "")
            _check_origin(url, self.base)
            self._download(url, cached, "data.id", what=f"the file of OpenML data set {data_id}",
                           md5=description.get("md5_checksum"))
        return cached


def _check_origin(url: str, base: str) -> None:
    """Follow a file URL only to the configured server or to openml.org's hosts (no SSRF)."""
    parts, home = urlsplit(url), urlsplit(base)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not (
            (parts.scheme, parts.netloc) == (home.scheme, home.netloc)
            or (parts.scheme == "https" and (host == "openml.org"
                                             or host.endswith(".openml.org")))):
        raise SourceError(f"OpenML's description points at {url!r}, which is neither "
                          f"{base} nor an openml.org host; refused", key="data.id")


def _api_message(response: Any) -> str:
    try:
        error = response.json().get("error", {})
        return f" ({error.get('code')}: {error.get('message')})" if error else ""
    except (ValueError, AttributeError):
        return ""


def _keep(path: Path, body: bytes) -> None:
    from conveyor.store import write_atomic

    write_atomic(path, body)


# --------------------------------------------------------------------------- ARFF

_ATTRIBUTE = re.compile(r"^@attribute\s+('[^']*'|\"[^\"]*\"|\S+)\s+(.+)$", re.IGNORECASE)


def parse_arff(source: str | Path, name: str) -> Any:
    """A dense ARFF file (a path, or its text) as a DataFrame: numeric attributes as numbers,
    the rest as text, ``?`` as missing.

    A file is read line by line and its rows become frames of :data:`_ROWS_PER_CHUNK` rows at
    a time, so the text of a large download is never held whole, nor a Python list per row of
    the whole file. UTF-8, or Latin-1 for older uploads that are not UTF-8.

    Raises:
        SourceError: a sparse or malformed file (naming the line).
    """
    if isinstance(source, Path):
        try:
            with source.open(encoding="utf-8") as lines:
                return _parse_arff(lines, name)
        except UnicodeDecodeError:
            with source.open(encoding="latin-1") as lines:
                return _parse_arff(lines, name)
    return _parse_arff(source.splitlines(), name)


def _parse_arff(lines: Iterable[str], name: str) -> Any:
    import csv

    import pandas as pd

    columns: list[tuple[str, bool]] = []
    rows: list[list[str]] = []
    frames: list[Any] = []
    in_data = False
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        if not in_data:
            lower = line.lower()
            if lower.startswith("@attribute"):
                match = _ATTRIBUTE.match(line)
                if match is None:
                    raise SourceError(f"{name} line {number}: not an @attribute line",
                                      key="data.id")
                kind = match.group(2).strip().lower()
                columns.append((match.group(1).strip("'\""),
                                kind.split()[0] in ("numeric", "real", "integer")))
            elif lower.startswith("@data"):
                in_data = True
            continue
        if line.startswith("{"):
            raise SourceError(f"{name} is sparse ARFF, which is not supported",
                              key="data.id")
        quote_char = "'" if "'" in line and '"' not in line else '"'
        row = next(csv.reader([line], quotechar=quote_char, skipinitialspace=True))
        if len(row) != len(columns):
            raise SourceError(f"{name} line {number}: {len(row)} values, expected "
                              f"{len(columns)}", key="data.id")
        rows.append(row)
        if len(rows) == _ROWS_PER_CHUNK:
            frames.append(_arff_frame(rows, columns))
            rows = []
    if rows:
        frames.append(_arff_frame(rows, columns))
    if not columns or not frames:
        raise SourceError(f"{name} has no {'attributes' if not columns else 'rows'}",
                          key="data.id")
    if len(frames) == 1:
        return frames[0]
    frame = pd.concat(frames, ignore_index=True)
    for column, numeric in columns:  # a chunk without a value is float; text stays text
        if not numeric and frame[column].dtype != object:
            frame[column] = frame[column].astype(object)
    return frame


def _arff_frame(rows: list[list[str]], columns: list[tuple[str, bool]]) -> Any:
    """One chunk of ARFF rows as a frame: ``?`` missing, numeric attributes as numbers."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=[c for c, _ in columns], dtype=object)
    frame = frame.mask(frame == "?")
    for column, numeric in columns:
        if numeric:
            frame[column] = pd.to_numeric(frame[column])
    return frame
