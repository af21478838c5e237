"""The run-level tracking calls of an embedded (SQLite) MLflow store, written with ``sqlite3``.

A cached re-run of a pipeline logs a new MLflow run (tags, params, metrics, a dataset input,
small artifacts) and registers nothing new. Through ``MlflowClient`` that costs importing
MLflow (~1.9 s here) and building its ``SqlAlchemyStore`` (SQLAlchemy, Alembic, the schema
check: ~1.2 s): more than the cached run's own work. For the embedded ``sqlite:///`` store this
module writes the rows MLflow's own store writes for those calls, with the standard library
(docs/decisions/0049-run-tracking-without-mlflow-on-sqlite.md; the precedents are ADR 0037's
read-only registry reader and ADR 0040's trials in one transaction).

It answers only the case it was checked against: a ``sqlite:///`` database at one of the
Alembic revisions of :data:`~conveyor.tracking.sqlite_registry.KNOWN_REVISIONS`, the default
workspace (no workspace variable set), a local (``file://`` or path) artifact location, names
and values MLflow accepts as they are. :func:`open_writer` returns ``None`` for anything else,
and each call raises :class:`Unsupported` *before writing anything* when it meets a case it
does not know (a deleted experiment, a name MLflow might refuse, a dataset not yet in the
experiment): the caller then makes that call through ``MlflowClient``, which gives the
canonical answer or error. Every write is one ``BEGIN IMMEDIATE`` transaction with a busy
timeout, so Airflow tasks and the MLflow UI may share the database.

tests/integration/test_sqlite_tracking_differential.py runs the same calls through
MlflowClient into one database and through this module into another and compares every
table.
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from conveyor.tracking.sqlite_registry import KNOWN_REVISIONS

__all__ = ["DIRECT_VARIABLE", "DatasetRow", "SqliteRunWriter", "Unsupported", "open_writer"]

#: ``CONVEYOR_DIRECT_SQLITE=0`` makes every call go through ``MlflowClient`` (as before ADR
#: 0049): a way out should this module ever disagree with MLflow, and the reference the tests
#: compare with.
DIRECT_VARIABLE = "CONVEYOR_DIRECT_SQLITE"
_WORKSPACE_VARIABLES = ("MLFLOW_ENABLE_WORKSPACES", "MLFLOW_WORKSPACE")
_WORKSPACE = "default"
_BUSY_SECONDS = 30.0
# MLflow's limits (mlflow.utils.validation): longer values are truncated, longer keys refused
_MAX_KEY = 250
_MAX_PARAM_VALUE = 6000
_MAX_TAG_VALUE = 8000
_MAX_EXPERIMENT_NAME = 500
_MAX_BATCH_PARAMS, _MAX_BATCH_TAGS, _MAX_BATCH_METRICS = 100, 100, 1000
_NAME = re.compile(r"^[/\w.\- :]*$")  # validate_param_and_metric_name (POSIX)
_RUN_NAME_TAG = "mlflow.runName"
_USER_TAG = "mlflow.user"
_DOUBLE_MAX = 1.7976931348623157e308


class Unsupported(Exception):
    """This call is outside what the writer knows: make it through ``MlflowClient``.

    Raised before the writer changed anything."""


@dataclass(frozen=True)
class DatasetRow:
    """The ``datasets`` row MLflow writes for a dataset entity (its JSON fields as text)."""

    source_type: str
    source: str
    schema: str | None
    profile: str | None


def _database(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///") or "?" in uri or "#" in uri:
        return None
    return Path(uri.removeprefix("sqlite:///"))


def open_writer(uri: str) -> SqliteRunWriter | None:
    """A writer for the embedded store at ``uri``, or ``None`` when ``MlflowClient`` must be
    used: not a ``sqlite:///`` URI, a workspace variable set, ``CONVEYOR_DIRECT_SQLITE=0``, no
    database file, or a schema revision this module was not checked against.

    The caller has created (seeded) the database first, under its lock.
    """
    database = _database(uri)
    if database is None or not database.is_file():
        return None
    if os.environ.get(DIRECT_VARIABLE, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if any(os.environ.get(name) for name in _WORKSPACE_VARIABLES):
        return None
    try:
        connection = sqlite3.connect(str(database), timeout=_BUSY_SECONDS,
                                     isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        return None
    try:
        revisions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        connection.close()
        return None
    if len(revisions) != 1 or revisions[0][0] not in KNOWN_REVISIONS:
        connection.close()
        return None
    connection.execute(f"PRAGMA busy_timeout = {int(_BUSY_SECONDS * 1000)}")
    return SqliteRunWriter(connection)


def _now() -> int:
    return int(time.time() * 1000)


def _check_key(key: str) -> str:
    norm = posixpath.normpath(key) if key else ""
    if (not key or len(key) > _MAX_KEY or not _NAME.match(key) or norm != key or norm == "."
            or norm.startswith(("..", "/"))):
        raise Unsupported(f"key {key!r}")
    return key


def _sanitize(value: float) -> tuple[bool, float]:
    """MLflow's ``sanitize_metric_value``: NaN is stored as 0 with ``is_nan``, ±inf as ±max."""
    if math.isnan(value):
        return True, 0.0
    if math.isinf(value):
        return False, _DOUBLE_MAX if value > 0 else -_DOUBLE_MAX
    return False, value


def _local_dir(uri: str) -> Path:
    """The folder of a local artifact URI (``file://`` or a plain absolute path)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost") and not parsed.query \
            and not parsed.fragment:
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and uri.startswith("/"):
        return Path(uri)
    raise Unsupported(f"artifact location {uri!r}")


def _append(uri: str, *parts: str) -> str:
    """``mlflow.utils.uri.append_to_uri_path`` for the local locations :func:`_local_dir`
    accepts."""
    _local_dir(uri)
    return "/".join([uri.rstrip("/"), *parts])


class SqliteRunWriter:
    """Run-level MLflow calls on one embedded SQLite store (see the module's doc).

    Each method is one transaction. Its arguments and results follow ``Tracker``'s calls, not
    ``MlflowClient``'s: ids as strings, tags and params as dicts.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back otherwise
        (so :class:`Unsupported` leaves the database as it was)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------ experiments
    def _ensure_default_experiment(self, db: sqlite3.Connection) -> None:
        """What ``SqlAlchemyStore`` does when it opens a store without experiment 0: create
        ``Default`` with the artifact location MLflow's client gives it (``./mlruns/0``
        resolved against the working folder)."""
        if db.execute("SELECT 1 FROM experiments WHERE experiment_id = 0").fetchone():
            return
        now = _now()
        db.execute("INSERT INTO experiments (experiment_id, name, artifact_location, "
                   "lifecycle_stage, creation_time, last_update_time, workspace) "
                   "VALUES (0, 'Default', ?, 'active', ?, ?, ?)",
                   (str(Path.cwd() / "mlruns" / "0"), now, now, _WORKSPACE))

    def experiment_id(self, name: str, artifact_location: str | None) -> str:
        """The id of experiment ``name``, created (with ``artifact_location``) if missing."""
        if not name or len(name) > _MAX_EXPERIMENT_NAME:
            raise Unsupported(f"experiment name {name!r}")
        with self._write() as db:
            self._ensure_default_experiment(db)
            row = db.execute("SELECT experiment_id, lifecycle_stage FROM experiments WHERE "
                             "workspace = ? AND name = ?", (_WORKSPACE, name)).fetchone()
            if row is not None:
                if row[1] != "active":
                    raise Unsupported(f"experiment {name!r} is {row[1]}")
                return str(row[0])
            if artifact_location is None:
                raise Unsupported("an experiment without an artifact location")
            _local_dir(artifact_location)
            now = _now()
            cursor = db.execute(
                "INSERT INTO experiments (name, artifact_location, lifecycle_stage, "
                "creation_time, last_update_time, workspace) VALUES (?, ?, 'active', ?, ?, ?)",
                (name, artifact_location, now, now, _WORKSPACE))
            return str(cursor.lastrowid)

    # ------------------------------------------------------------------ runs
    def find_run(self, experiment_id: str, tag: str, value: str) -> tuple[str, str] | None:
        """The oldest active run of the experiment with tag ``tag = value``: (id, status).

        ``search_runs([experiment], "tags.`tag` = 'value'", order_by start_time ASC)``.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT r.run_uuid, r.status FROM runs r JOIN tags t ON t.run_uuid = "
                "r.run_uuid AND t.key = ? AND t.value = ? WHERE r.experiment_id = ? AND "
                "r.lifecycle_stage = 'active' ORDER BY r.start_time ASC, r.run_uuid ASC "
                "LIMIT 1", (tag, value, int(experiment_id))).fetchone()
        return (row[0], row[1]) if row else None

    def create_run(self, experiment_id: str, run_name: str, tags: Mapping[str, str]) -> str:
        """``MlflowClient.create_run(experiment_id, run_name=..., tags=...)``: a RUNNING run
        under the experiment's artifact location, ``mlflow.runName`` added to its tags."""
        checked = self._tags(tags)
        if _RUN_NAME_TAG in checked and checked[_RUN_NAME_TAG] != run_name:
            raise Unsupported("run_name and mlflow.runName differ")
        checked.setdefault(_RUN_NAME_TAG, run_name)
        run_id = uuid.uuid4().hex
        with self._write() as db:
            row = db.execute("SELECT artifact_location, lifecycle_stage FROM experiments "
                             "WHERE experiment_id = ?", (int(experiment_id),)).fetchone()
            if row is None or row[1] != "active" or row[0] is None:
                raise Unsupported(f"experiment {experiment_id}")
            db.execute(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
                "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
                "artifact_uri, experiment_id, deleted_time) VALUES (?, ?, 'UNKNOWN', '', '', "
                "?, 'RUNNING', ?, NULL, '', 'active', ?, ?, NULL)",
                (run_id, run_name, tags.get(_USER_TAG, "unknown"), _now(),
                 _append(row[0], run_id, "artifacts"), int(experiment_id)))
            db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                           [(k, v, run_id) for k, v in checked.items()])
        return run_id

    def _active(self, db: sqlite3.Connection, run_id: str) -> tuple[str, str]:
        """(artifact_uri, status) of an active run; anything else is MLflow's to report."""
        row = db.execute("SELECT artifact_uri, status, lifecycle_stage FROM runs WHERE "
                         "run_uuid = ?", (run_id,)).fetchone()
        if row is None or row[2] != "active":
            raise Unsupported(f"run {run_id}")
        return row[0], row[1]

    def set_status(self, run_id: str, status: str, *, end_time: int | None = None) -> None:
        """``update_run`` (status only) or, with ``end_time``, ``set_terminated``."""
        with self._write() as db:
            self._active(db, run_id)
            if end_time is None:
                db.execute("UPDATE runs SET status = ? WHERE run_uuid = ?", (status, run_id))
            else:
                db.execute("UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?",
                           (status, end_time, run_id))

    def params(self, run_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("SELECT key, value FROM params WHERE run_uuid = ?",
                                         (run_id,)).fetchall())

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """New params (a key already logged with the same value is skipped; another value is
        MLflow's error to raise)."""
        rows = [(_check_key(k), str(v), run_id) for k, v in params.items()]
        if not rows:
            return
        if len(rows) > _MAX_BATCH_PARAMS or any(len(v) > _MAX_PARAM_VALUE for _, v, _ in rows):
            raise Unsupported("params over MLflow's limits")
        with self._write() as db:
            self._active(db, run_id)
            have = dict(db.execute("SELECT key, value FROM params WHERE run_uuid = ?",
                                   (run_id,)).fetchall())
            if any(k in have and have[k] != v for k, v, _ in rows):
                raise Unsupported("a param logged with another value")
            db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                           [row for row in rows if row[0] not in have])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], *, timestamp: int,
                    step: int = 0) -> None:
        """``log_batch(metrics=...)``: a ``metrics`` row each, and ``latest_metrics`` kept as
        MLflow keeps it (the newest by step, then timestamp, then value)."""
        rows = []
        for key, value in metrics.items():
            is_nan, stored = _sanitize(float(value))
            rows.append((_check_key(key), stored, timestamp, step, int(is_nan)))
        if not rows:
            return
        if len(rows) > _MAX_BATCH_METRICS:
            raise Unsupported("metrics over MLflow's batch limit")
        with self._write() as db:
            self._active(db, run_id)
            db.executemany("INSERT OR IGNORE INTO metrics (key, value, timestamp, run_uuid, "
                           "step, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
                           [(k, v, t, run_id, s, n) for k, v, t, s, n in rows])
            latest = {r[0]: (r[1], r[2], r[3]) for r in db.execute(
                "SELECT key, step, timestamp, value FROM latest_metrics WHERE run_uuid = ?",
                (run_id,))}
            for key, value, stamp, st, is_nan in rows:
                if key not in latest:
                    db.execute("INSERT INTO latest_metrics (key, value, timestamp, step, "
                               "is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)",
                               (key, value, stamp, st, is_nan, run_id))
                elif (st, stamp, value) > latest[key]:
                    db.execute("UPDATE latest_metrics SET value = ?, timestamp = ?, step = ?, "
                               "is_nan = ? WHERE run_uuid = ? AND key = ?",
                               (value, stamp, st, is_nan, run_id, key))
                else:
                    continue
                latest[key] = (st, stamp, value)

    @staticmethod
    def _tags(tags: Mapping[str, Any]) -> dict[str, str]:
        checked = {_check_key(k): str(v) for k, v in tags.items()}
        if len(checked) > _MAX_BATCH_TAGS or any(len(v) > _MAX_TAG_VALUE
                                                 for v in checked.values()):
            raise Unsupported("tags over MLflow's limits")  # MLflow truncates or refuses
        return checked

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """``log_batch(tags=...)``: insert or overwrite; ``mlflow.runName`` renames the run."""
        checked = self._tags(tags)
        if not checked:
            return
        with self._write() as db:
            self._active(db, run_id)
            db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) "
                           "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value",
                           [(k, v, run_id) for k, v in checked.items()])
            if _RUN_NAME_TAG in checked:
                db.execute("UPDATE runs SET name = ? WHERE run_uuid = ?",
                           (checked[_RUN_NAME_TAG], run_id))

    # ------------------------------------------------------------------ inputs
    def log_dataset(self, run_id: str, *, name: str, digest: str, context: str,
                    describe: Callable[[], DatasetRow]) -> None:
        """``log_inputs`` of one dataset with tag ``mlflow.data.context``.

        MLflow keeps one ``datasets`` row per (experiment, name, digest) and links each run to
        it: when the row is there (every re-run on the same data) nothing needs describing.
        Otherwise ``describe()`` gives the row as MLflow would write it (the caller builds it
        with MLflow's own dataset entity), before the transaction starts.
        """
        with self._lock:
            found = self._db.execute(
                "SELECT d.dataset_uuid FROM datasets d JOIN runs r ON r.experiment_id = "
                "d.experiment_id WHERE r.run_uuid = ? AND d.name = ? AND d.digest = ?",
                (run_id, name, digest)).fetchone()
        described = describe() if found is None else None
        with self._write() as db:
            self._active(db, run_id)
            experiment = db.execute("SELECT experiment_id FROM runs WHERE run_uuid = ?",
                                    (run_id,)).fetchone()[0]
            row = db.execute("SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND "
                             "name = ? AND digest = ?", (experiment, name, digest)).fetchone()
            if row is not None:
                dataset_uuid = row[0]
            else:
                if described is None:  # deleted meanwhile: rare, MLflow's to redo
                    raise Unsupported("the dataset row disappeared")
                dataset_uuid = uuid.uuid4().hex
                db.execute("INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, "
                           "dataset_source_type, dataset_source, dataset_schema, "
                           "dataset_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (dataset_uuid, experiment, name, digest, described.source_type,
                            described.source, described.schema, described.profile))
            if db.execute("SELECT 1 FROM inputs WHERE source_type = 'DATASET' AND source_id = ? "
                          "AND destination_type = 'RUN' AND destination_id = ?",
                          (dataset_uuid, run_id)).fetchone():
                return
            input_uuid = uuid.uuid4().hex
            db.execute("INSERT INTO inputs (input_uuid, source_type, source_id, "
                       "destination_type, destination_id, step) VALUES (?, 'DATASET', ?, "
                       "'RUN', ?, 0)", (input_uuid, dataset_uuid, run_id))
            db.execute("INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?)",
                       (input_uuid, "mlflow.data.context", context))

    # ------------------------------------------------------------------ artifacts
    def log_artifact_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None:
        """``log_artifact`` of a file holding ``data`` at ``artifact_file`` under the run's
        local artifact folder: written to a hidden temporary file there and renamed into
        place, as MLflow's ``LocalArtifactRepository`` does."""
        norm = posixpath.normpath(artifact_file)
        if (norm != artifact_file or norm.startswith(("..", "/")) or not norm
                or norm == "." or "\\" in artifact_file):
            raise Unsupported(f"artifact path {artifact_file!r}")
        with self._lock:
            row = self._db.execute("SELECT artifact_uri, lifecycle_stage FROM runs WHERE "
                                   "run_uuid = ?", (run_id,)).fetchone()
        if row is None or row[1] != "active":
            raise Unsupported(f"run {run_id}")
        target = _local_dir(row[0]) / norm
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".mlflow-artifact-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(partial, 0o666 & ~umask)  # a copied new file's mode, not mkstemp's 0600
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise


def dataset_row(entity: Any) -> DatasetRow:
    """The ``datasets`` row of an MLflow ``Dataset`` entity (``_to_mlflow_entity()``)."""
    return DatasetRow(source_type=entity.source_type, source=entity.source,
                      schema=entity.schema, profile=entity.profile)


