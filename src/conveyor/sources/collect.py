"""Scheduled, incremental collection from an HTTP API into a dataset partitioned by date.

A *collection spec* is a small YAML file with a top-level ``collect:`` section
(``examples/youtube_comments/collect.yaml``): the API (``data:``, an ``http_api`` section),
the schedule, and the record key. Each run collects one interval (Airflow's data interval,
or ``conveyor collect --interval START/END``) and writes the records no *other* interval
holds into that interval's part of the dataset::

    {root}/{name}/_dataset/date=2026-11-30/part-20261130T100000Z_20261130T110000Z-<token>.parquet
    {root}/{name}/_dataset/date=2026-11-30/_part-20261130T100000Z_20261130T110000Z.json

The JSON record is written last and names the Parquet file and its sha256: readers trust only
the files a record names (a crash leaves an orphan, never a half part). Re-running an interval
writes a new Parquet file, moves the record to it and deletes the old file, so the interval is
replaced, never appended twice (docs/decisions/0045).

A pipeline reads the dataset with ``data: {source: collected, collection: collect.yaml}``
(:class:`CollectedSourceReader`).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from conveyor.errors import BadInputError, DataError, SpecError
from conveyor.sources.base import BaseSource
from conveyor.sources.http_api import HttpApiSource
from conveyor.spec.models import NAME_PATTERN, StoreSpec
from conveyor.store import Store, store_root

__all__ = [
    "COLLECT_KEY",
    "CollectResult",
    "CollectedSource",
    "CollectedSourceReader",
    "Collection",
    "CollectionSpec",
    "collect",
    "load_collection",
    "parse_interval",
    "read_dataset",
]

log = logging.getLogger(__name__)

#: The top-level key that makes a YAML file a collection spec.
COLLECT_KEY = "collect"
DATASET_FOLDER = "_dataset"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectSection(_Model):
    """``collect:``: how the records of one interval join the dataset."""

    key: str | None = Field(default=None, description="the record id (default data.key)")
    stop_at_known_page: bool = Field(
        default=False, description="stop paging a fan-out value at the first page whose "
        "records are all in other intervals (an API listing newest first); saves quota")


class CollectionSpec(_Model):
    """A collection: an API collected on a schedule into a dataset of the Store."""

    name: str = Field(pattern=NAME_PATTERN, description="the dataset's name")
    description: str = ""
    schedule: str | None = Field(default="@hourly", description="cron or preset; one "
                                 "interval per run")
    tags: list[str] = Field(default_factory=list)
    data: HttpApiSource
    collect: CollectSection = Field(default_factory=CollectSection)
    store: StoreSpec = Field(default_factory=StoreSpec)

    @model_validator(mode="after")
    def _has_key(self) -> CollectionSpec:
        key = self.collect.key or self.data.key
        if key is None:
            raise ValueError("collect.key (or data.key) must name the column that identifies "
                             "a record: records are deduplicated by it")
        if key not in self.data.fields:
            raise ValueError(f"collect.key {key!r} is not a column of data.fields")
        return self

    @property
    def key(self) -> str:
        return str(self.collect.key or self.data.key)


@dataclass(frozen=True)
class Collection:
    """A loaded collection spec: the spec, its file, and its store's root URI."""

    spec: CollectionSpec
    path: Path
    store_root: str

    @property
    def dataset_uri(self) -> str:
        return f"{self.store_root}/{self.spec.name}/{DATASET_FOLDER}"

    def store(self) -> Store:
        return Store(self.store_root, self.spec.store.storage_options)


def load_collection(path: str | os.PathLike[str], *,
                    env: Mapping[str, str] | None = None) -> Collection:
    """Load and validate a collection spec.

    Raises:
        SpecError: naming the file, line and key.
    """
    from conveyor.spec import read_yaml
    from conveyor.spec.explain import explain
    from conveyor.spec.layering import interpolate

    file = Path(path)
    data, lines = read_yaml(file, what="collection spec")
    if not isinstance(data, dict) or COLLECT_KEY not in data:
        raise SpecError("a collection spec is a YAML mapping with a collect: section "
                        "(name, schedule, data, collect, store)", file=str(file), line=1)
    sources = {(): (str(file), 1), **{p: (str(file), ln) for p, ln in lines.items()}}
    data = interpolate(data, (), sources, os.environ if env is None else env)
    try:
        spec = CollectionSpec.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, {**sources, (): (str(file), None)}, CollectionSpec) from None
    base = file.resolve().parent
    return Collection(spec=spec, path=file.resolve(), store_root=store_root(spec.store.root,
                                                                             base))


def parse_interval(text: str | None, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``START/END`` (ISO 8601, UTC unless an offset is given) as two aware datetimes.

    Without ``text``: the last whole hour before ``now``.

    Raises:
        BadInputError: not two times, or the end is not after the start.
    """
    if not text:
        end = (now or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0,
                                                                  microsecond=0)
        return end - timedelta(hours=1), end
    parts = text.split("/")
    try:
        if len(parts) != 2:
            raise ValueError
        start, end = (datetime.fromisoformat(p.strip().replace("Z", "+00:00")) for p in parts)
    except ValueError:
        raise BadInputError(f"--interval: expected START/END in ISO 8601 "
                            f"(2026-11-30T10:00Z/2026-11-30T11:00Z), got {text!r}") from None
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    if end <= start:
        raise BadInputError(f"--interval: the end {end.isoformat()} is not after the start "
                            f"{start.isoformat()}")
    return start.astimezone(UTC), end.astimezone(UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class CollectResult:
    """One collected interval."""

    name: str
    start: datetime
    end: datetime
    fetched: int
    new: int
    replaced: bool
    pages: int
    requests: int
    retries: int
    skipped: list[dict[str, str]]
    part_uri: str
    record_uri: str
    dataset_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "fetched": self.fetched, "new": self.new, "replaced": self.replaced,
                "pages": self.pages, "requests": self.requests, "retries": self.retries,
                "skipped": self.skipped, "part_uri": self.part_uri,
                "record_uri": self.record_uri, "dataset_rows": self.dataset_rows}


def _records(store: Store, dataset_uri: str) -> list[tuple[str, dict[str, Any]]]:
    """(record URI, record) of every committed interval, oldest interval first."""
    found = []
    for folder in store.list(dataset_uri):
        if not folder.startswith("date="):
            continue
        for name in store.list(f"{dataset_uri}/{folder}"):
            if name.startswith("_part-") and name.endswith(".json"):
                uri = f"{dataset_uri}/{folder}/{name}"
                found.append((uri, store.get_json(uri)))
    return sorted(found, key=lambda pair: (pair[1]["start"], pair[1]["end"]))


def _read_part(store: Store, record: Mapping[str, Any], columns: list[str] | None = None) -> Any:
    import io

    import pandas as pd

    data = store.get_bytes(record["part"], sha256=record["sha256"])
    return pd.read_parquet(io.BytesIO(data), columns=columns)


def collect(
    collection: Collection | str | os.PathLike[str],
    interval: tuple[datetime, datetime],
    *,
    api_key: str | None = None,
    key_lookup: Callable[[str], str] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> CollectResult:
    """Collect one interval: fetch every page, keep the records no other interval holds,
    and replace this interval's part of the dataset with them.

    Args:
        collection: a loaded collection or its spec file.
        interval: ``(start, end)``, aware datetimes; ages are computed at ``end``.
        api_key: the key, when the caller resolved it (else from ``data.api_key``).
        key_lookup: reads an Airflow connection's password (``data.api_key.conn_id``).
        sleep: how backoff waits (tests).

    Raises:
        ApiRefusedError, DataError, SpecError: bad input; nothing is written.
        ApiUnavailableError, StoreError: a failure worth a retry; nothing is written.
    """
    import time

    from conveyor.sources.http_api import fetch, resolve_api_key, to_frame

    if not isinstance(collection, Collection):
        collection = load_collection(collection)
    spec = collection.spec
    start, end = interval
    key = api_key if api_key is not None else resolve_api_key(spec.data.api_key,
                                                              lookup=key_lookup)
    store = collection.store()
    dataset = collection.dataset_uri
    stamp = f"{_stamp(start)}_{_stamp(end)}"
    folder = f"{dataset}/date={start.astimezone(UTC).date().isoformat()}"
    record_uri = f"{folder}/_part-{stamp}.json"
    records = _records(store, dataset)
    seen: set[Any] = set()
    earlier: dict[str, Any] | None = None
    for uri, record in records:
        if uri == record_uri:
            earlier = record
            continue
        seen.update(_read_part(store, record, [spec.key])[spec.key].tolist())
    fetched = fetch(spec.data, api_key=key, sleep=sleep or time.sleep,
                    known=seen if spec.collect.stop_at_known_page else None)
    frame = to_frame(spec.data, fetched, end)
    new = frame[~frame[spec.key].isin(seen)].reset_index(drop=True)
    part_uri = f"{folder}/part-{stamp}-{secrets.token_hex(4)}.parquet"
    ref = store.put_table(part_uri, new)
    record = {"name": spec.name, "start": start.isoformat(), "end": end.isoformat(),
              "part": ref.uri, "sha256": ref.sha256, "rows": len(new), "key": spec.key,
              "fetched": len(frame), "pages": fetched.pages, "skipped": fetched.skipped,
              "collected_at": datetime.now(UTC).isoformat(), "source": fetched.uri}
    store.put_json(record_uri, record)  # the commit: readers see the new part from here on
    if earlier is not None and earlier.get("part") != ref.uri:
        store.delete(earlier["part"])
    total = sum(int(r["rows"]) for u, r in records if u != record_uri) + len(new)
    log.info("collected %s [%s, %s): %d fetched, %d new, %d skipped", spec.name,
             start.isoformat(), end.isoformat(), len(frame), len(new), len(fetched.skipped))
    return CollectResult(
        name=spec.name, start=start, end=end, fetched=len(frame), new=len(new),
        replaced=earlier is not None, pages=fetched.pages, requests=fetched.requests,
        retries=fetched.retries, skipped=fetched.skipped, part_uri=ref.uri,
        record_uri=record_uri, dataset_rows=total)


def read_dataset(collection: Collection) -> tuple[Any, list[dict[str, Any]]]:
    """Every committed interval's records, oldest interval first, one row per key.

    Returns:
        The table and the interval records it was read from.
    """
    import pandas as pd

    store = collection.store()
    records = [record for _, record in _records(store, collection.dataset_uri)]
    parts = [_read_part(store, record) for record in records]
    if not parts:
        return pd.DataFrame(), records
    frame = pd.concat(parts, ignore_index=True)
    key = collection.spec.key
    frame = frame.drop_duplicates(subset=[key], keep="first").reset_index(drop=True)
    return frame, records


class CollectedSource(_Model):
    """``data:`` of a pipeline that trains on a collected dataset (``source: collected``)."""

    source: Literal["collected"]
    collection: str = Field(min_length=1, description="the collection spec (relative to "
                            "this spec's folder)")
    min_rows: int = Field(default=1, ge=1, description="fewer collected rows is an error")


class CollectedSourceReader(BaseSource):
    """The dataset a collection spec collects (``data.source: collected``)."""

    name = "collected"
    spec_model = CollectedSource

    def read(self, config: Any, base_dir: Path) -> tuple[Any, dict[str, Any]]:
        path = Path(config.collection)
        collection = load_collection(path if path.is_absolute() else base_dir / path)
        frame, records = read_dataset(collection)
        if len(frame) < config.min_rows:
            raise DataError(f"{collection.dataset_uri}: {len(frame)} collected rows in "
                            f"{len(records)} interval(s), data.min_rows is {config.min_rows}; "
                            f"run `conveyor collect {collection.path}` first")
        return frame, {"uri": collection.dataset_uri, "first_line": None, "lines": None,
                       "intervals": len(records)}
