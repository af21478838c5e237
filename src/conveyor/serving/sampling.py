"""A sample of served requests and their predictions, appended to the Store for monitoring.

:meth:`Sampler.offer` is on the response path: it draws one random number per request and,
for a sampled one, appends a reference to a bounded in-memory queue; it never blocks, never
raises, never touches the Store. A background thread turns the queue into Parquet files
(every ``batch_rows`` rows or ``flush_seconds``), one per UTC hour partition, under
:func:`conveyor.serving.layout.samples_uri`::

    {store}/_serving/{model}/samples/date=YYYY-MM-DD/hour=HH/part-{stamp}-{pid}-{seq}.parquet

Each file is written whole or not at all (``Store.put_bytes``: a temporary file renamed into
place, one PUT on S3). A failing or full Store costs the batch, never a request: the error is
counted and logged at most once a minute (ADR 0033).
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from conveyor.serving.layout import (
    PREDICTION,
    REQUEST_ID,
    TIME,
    VERSION,
    proba_column,
    sample_partition,
    samples_uri,
)

__all__ = ["Sampler"]

log = logging.getLogger(__name__)

_LOG_EVERY = 60.0


@dataclass
class _Record:
    X: Any
    feature_names: tuple[str, ...]
    labels: Any
    proba: Any
    classes: tuple[Any, ...] | None
    version: str
    request_ids: list[str]
    ts: float
    rows: int


class Sampler:
    """Samples requests into the Store off the response path.

    Args:
        store_root: the Store's root URI (``file:///...``, ``s3://bucket/prefix``).
        model_name: the served model's name (the samples' folder).
        rate: the share of requests sampled (0 to 1), decided per request.
        batch_rows: write once this many rows wait.
        flush_seconds: write at least this often when rows wait.
        max_queue_rows: rows waiting beyond this are dropped (counted), not queued.
        storage_options: fsspec options for the Store.
        seed: seed of the sampling decisions (tests).

    Attributes:
        stats: ``offered`` (requests), ``sampled`` (requests), ``written_rows``,
            ``dropped_rows``, ``errors``, ``files``.
    """

    def __init__(self, store_root: str, model_name: str, *, rate: float = 0.1,
                 batch_rows: int = 500, flush_seconds: float = 5.0,
                 max_queue_rows: int = 50000, storage_options: dict[str, Any] | None = None,
                 seed: int | None = None) -> None:
        from conveyor.store import Store

        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"the sampling rate must be between 0 and 1, got {rate}")
        self.store = Store(store_root, storage_options)
        self.model_name = model_name
        self.folder = samples_uri(self.store.root, model_name)
        self.rate = float(rate)
        self.batch_rows = max(1, int(batch_rows))
        self.flush_seconds = float(flush_seconds)
        self.max_queue_rows = int(max_queue_rows)
        self._random = random.Random(seed)
        self._queue: deque[_Record] = deque()
        self._queued_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._seq = itertools.count()
        self._last_log = -_LOG_EVERY
        self._stats = {"offered": 0, "sampled": 0, "written_rows": 0, "dropped_rows": 0,
                       "errors": 0, "files": 0}
        self._thread = threading.Thread(target=self._run, name="conveyor-sampler", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    # ------------------------------------------------------------------ response path
    def offer(self, X: Any, feature_names: Sequence[str], prediction: Any, version: Any,
              request_ids: Sequence[str] | str | None = None, *,
              classes: Sequence[Any] | None = None) -> bool:
        """Maybe sample one request; ``True`` if it was queued. Never blocks, never raises.

        Args:
            X: the request's rows: a float64 array ``(n, len(feature_names))`` or a DataFrame
                holding the feature columns.
            feature_names: the columns of ``X``.
            prediction: its :class:`~conveyor.serving.model.Prediction` (``labels``,
                ``proba``; the classes come from ``classes`` or ``prediction.classes``).
            version: the model version that answered.
            request_ids: one id per row, or one for the whole request.
            classes: the labels of ``prediction.proba``'s columns.
        """
        try:
            with self._lock:
                self._stats["offered"] += 1
                if self._closing.is_set() or self._random.random() >= self.rate:
                    return False
                self._stats["sampled"] += 1
            rows = len(X)
            if request_ids is None or isinstance(request_ids, str):
                ids = [request_ids or ""] * rows
            else:
                ids = [str(i) for i in request_ids]
                if len(ids) == 1:
                    ids *= rows
                elif len(ids) != rows:
                    raise ValueError(f"{len(ids)} request ids for {rows} rows")
            if classes is None:
                classes = getattr(prediction, "classes", None)
            _check(X, feature_names, prediction, rows)
            record = _Record(
                X=X.copy() if isinstance(X, np.ndarray) else X, feature_names=tuple(
                    str(n) for n in feature_names), labels=prediction.labels,
                proba=prediction.proba, classes=None if classes is None else tuple(classes),
                version="" if version is None else str(version), request_ids=ids,
                ts=time.time(), rows=rows)
            with self._lock:
                if self._queued_rows + rows > self.max_queue_rows:
                    self._stats["dropped_rows"] += rows
                    return False
                self._queue.append(record)
                self._queued_rows += rows
                full = self._queued_rows >= self.batch_rows
            if full:
                self._wake.set()
            return True
        except Exception as exc:  # noqa: BLE001 - never into the request
            self._failed("sampling a request failed", exc)
            return False

    # ------------------------------------------------------------------ writer
    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            closing = self._closing.is_set()
            self.flush()
            if closing:
                return

    def flush(self) -> None:
        """Write what waits now (the writer thread calls this; tests may too)."""
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
            self._queued_rows = 0
        if not batch:
            return
        rows = sum(r.rows for r in batch)
        try:
            written = self._write(batch)
        except Exception as exc:  # noqa: BLE001 - a full or failing Store costs the batch, nothing else
            with self._lock:
                self._stats["dropped_rows"] += rows
            self._failed(f"writing {rows} sampled rows to {self.folder} failed", exc)
            return
        with self._lock:
            self._stats["written_rows"] += rows
            self._stats["files"] += written

    def _write(self, batch: list[_Record]) -> int:
        by_hour: dict[str, list[_Record]] = {}
        for record in batch:
            hour = sample_partition(datetime.fromtimestamp(record.ts, UTC))
            by_hour.setdefault(hour, []).append(record)
        files = 0
        for hour, records in by_hour.items():
            frame = _frame(records)
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            name = f"part-{stamp}-{os.getpid()}-{next(self._seq):06d}.parquet"
            self.store.put_bytes(f"{self.folder}/{hour}/{name}", buffer.getvalue())
            files += 1
        return files

    def _failed(self, what: str, exc: BaseException) -> None:
        with self._lock:
            self._stats["errors"] += 1
            now = time.monotonic()
            quiet = now - self._last_log < _LOG_EVERY
            if not quiet:
                self._last_log = now
            errors = self._stats["errors"]
        if not quiet:
            log.warning("%s: %s: %s (%d sampling errors so far; logged at most once a "
                        "minute)", what, type(exc).__name__, str(exc).splitlines()[0]
                        if str(exc) else "", errors)

    def close(self, timeout: float = 5.0) -> None:
        """Write what waits and stop the writer (at most ``timeout`` seconds)."""
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout)

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _frame(records: list[_Record]) -> Any:
    """One DataFrame of features, then the sample columns, for ``records``."""
    import pandas as pd

    names = records[0].feature_names
    if all(isinstance(r.X, np.ndarray) and r.feature_names == names for r in records):
        data = np.vstack([r.X for r in records])
        frame = pd.DataFrame(data, columns=list(names))
    else:
        frame = pd.concat([_features(r) for r in records], ignore_index=True)
    labels = np.concatenate([np.asarray(r.labels, dtype=object).reshape(-1) for r in records])
    columns: dict[str, Any] = {PREDICTION: _column(labels)}
    classes = records[-1].classes
    if all(r.proba is not None for r in records) and len({r.classes for r in records}) == 1:
        proba = np.vstack([np.asarray(r.proba, dtype=np.float64) for r in records])
        labels_of = classes if classes is not None else range(proba.shape[1])
        for i, label in enumerate(labels_of):
            columns[proba_column(label)] = proba[:, i]
    columns[REQUEST_ID] = [i for r in records for i in r.request_ids]
    columns[TIME] = pd.to_datetime(np.repeat([r.ts for r in records],
                                             [r.rows for r in records]), unit="s", utc=True)
    columns[VERSION] = [r.version for r in records for _ in range(r.rows)]
    extra = pd.DataFrame(columns, index=frame.index)
    return pd.concat([frame, extra], axis=1)


def _features(record: _Record) -> Any:
    import pandas as pd

    if isinstance(record.X, np.ndarray):
        return pd.DataFrame(record.X, columns=list(record.feature_names))
    return record.X[list(record.feature_names)].reset_index(drop=True)


def _column(labels: np.ndarray) -> Any:
    """Labels as one Parquet type (strings when the classes mix types)."""
    kinds = {type(v) for v in labels}
    if len(kinds) <= 1:
        return labels.tolist()
    return [str(v) for v in labels]


def _check(X: Any, feature_names: Sequence[str], prediction: Any, rows: int) -> None:
    """Refuse a record that would spoil its whole batch when written."""
    if isinstance(X, np.ndarray):
        if X.ndim != 2 or X.shape[1] != len(feature_names):
            raise ValueError(f"X has shape {X.shape}, expected {len(feature_names)} columns")
    else:
        missing = [n for n in feature_names if n not in X.columns]
        if missing:
            raise ValueError(f"X lacks the columns {missing[:5]}")
    if len(prediction.labels) != rows:
        raise ValueError(f"{len(prediction.labels)} labels for {rows} rows")
    proba = prediction.proba
    if proba is not None and len(proba) != rows:
        raise ValueError(f"{len(proba)} probability rows for {rows} rows")
