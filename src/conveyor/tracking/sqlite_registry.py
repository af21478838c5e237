"""Read one registered version straight from an embedded (SQLite) MLflow registry, read-only.

A server or scorer starts by asking which version ``models:/name@alias`` names. Through
MLflow that costs importing mlflow and SQLAlchemy, building the SQL store (its schema check)
and, for the files, ``download_artifacts`` through ``models:/`` resolution: seconds per
start and per poll. For the embedded store the answer is three indexed rows, and the
version's files sit in a local folder (``storage_location``). Here they are read with the
standard library's ``sqlite3`` in read-only mode (docs/decisions/0037-serving-cold-start.md).

This path only answers the happy case it knows: a ``sqlite:///`` URI, a database at the
schema revision this was checked against (:data:`KNOWN_REVISIONS`), the default workspace,
an existing ``READY`` version. Anything else (another backend or revision, workspaces, the
``latest`` alias, a missing alias or version, any SQLite error) returns ``None`` and the caller
asks MLflow, which gives the canonical answer or error. Files copied from the storage folder
are checked against the version's recorded sha256 exactly as a download is.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

__all__ = ["KNOWN_REVISIONS", "StoredVersion", "copy_version_files", "local_folder",
           "read_version", "versions_tagged"]

# MLflow's alembic head revisions whose registry tables this module was checked against
# (tests/unit/tracking/test_sqlite_registry.py compares with the installed MLflow's head).
KNOWN_REVISIONS = frozenset({"dc11669786a5"})
_DEFAULT_WORKSPACE = "default"
_DELETED = "Deleted_Internal"
_WORKSPACE_VARIABLES = ("MLFLOW_ENABLE_WORKSPACES", "MLFLOW_WORKSPACE")


@dataclass(frozen=True)
class StoredVersion:
    """A registered version as the registry stores it (the attributes callers use of
    MLflow's ``ModelVersion``, plus where its files are)."""

    name: str
    version: str
    run_id: str | None
    status: str
    storage_location: str | None
    tags: dict[str, str] = field(default_factory=dict)


def _database(tracking_uri: str) -> Path | None:
    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = Path(tracking_uri.removeprefix("sqlite:///").split("?", 1)[0])
    return path if path.is_file() else None


def read_version(tracking_uri: str, name: str, *, alias: str | None = None,
                 number: str | None = None) -> StoredVersion | None:
    """The version ``alias`` points to (or version ``number``) of ``name``, read directly from
    an embedded SQLite registry; ``None`` whenever MLflow itself should be asked."""
    if alias is not None and alias.lower() == "latest":
        return None
    connection = _open(tracking_uri)
    if connection is None:
        return None
    try:
        return _read(connection, name, alias, number)
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def _open(tracking_uri: str) -> sqlite3.Connection | None:
    """A read-only connection to the embedded registry of ``tracking_uri``; ``None`` for
    another backend, a workspace, or a database SQLite cannot open (MLflow is asked then)."""
    database = _database(tracking_uri)
    if database is None or any(os.environ.get(v) for v in _WORKSPACE_VARIABLES):
        return None
    try:
        return sqlite3.connect(f"file:{quote(str(database))}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return None


def versions_tagged(tracking_uri: str, name: str, tag: str,
                    value: str) -> list[StoredVersion] | None:
    """The versions of ``name`` (any status, not deleted) with version tag ``tag = value``,
    as ``search_model_versions("name = '...' and tags.`tag` = '...'")`` finds them, read
    directly; ``None`` whenever MLflow itself should be asked (ADR 0049: a cached run's
    register step finds its version without importing MLflow)."""
    connection = _open(tracking_uri)
    if connection is None:
        return None
    try:
        revisions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        if len(revisions) != 1 or revisions[0][0] not in KNOWN_REVISIONS:
            return None
        rows = connection.execute(
            "SELECT v.version, v.run_id, v.status, v.storage_location FROM model_versions v "
            "JOIN model_version_tags t ON t.workspace = v.workspace AND t.name = v.name AND "
            "t.version = v.version AND t.key = ? AND t.value = ? WHERE v.workspace = ? AND "
            "v.name = ? AND v.current_stage != ? ORDER BY v.version",
            (tag, value, _DEFAULT_WORKSPACE, name, _DELETED)).fetchall()
        found = []
        for number, run_id, status, location in rows:
            tags = dict(connection.execute(
                "SELECT key, value FROM model_version_tags WHERE workspace = ? AND name = ? "
                "AND version = ?", (_DEFAULT_WORKSPACE, name, number)).fetchall())
            found.append(StoredVersion(name=name, version=str(number), run_id=run_id,
                                       status=status, storage_location=location,
                                       tags={k: v or "" for k, v in tags.items()}))
        return found
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def _read(connection: sqlite3.Connection, name: str, alias: str | None,
          number: str | None) -> StoredVersion | None:
    revisions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    if len(revisions) != 1 or revisions[0][0] not in KNOWN_REVISIONS:
        return None
    if alias is not None:
        row = connection.execute(
            "SELECT version FROM registered_model_aliases WHERE workspace = ? AND name = ? "
            "AND alias = ?", (_DEFAULT_WORKSPACE, name, alias)).fetchone()
        if row is None:
            return None
        number = str(row[0])
    if number is None or not str(number).isdigit():
        return None
    row = connection.execute(
        "SELECT version, run_id, status, storage_location FROM model_versions WHERE "
        "workspace = ? AND name = ? AND version = ? AND current_stage != ?",
        (_DEFAULT_WORKSPACE, name, int(number), _DELETED)).fetchone()
    if row is None or row[2] != "READY":
        return None
    tags = dict(connection.execute(
        "SELECT key, value FROM model_version_tags WHERE workspace = ? AND name = ? AND "
        "version = ?", (_DEFAULT_WORKSPACE, name, int(number))).fetchall())
    return StoredVersion(name=name, version=str(row[0]), run_id=row[1], status=row[2],
                         storage_location=row[3], tags={k: v or "" for k, v in tags.items()})


def local_folder(location: str | None) -> Path | None:
    """The local folder a ``file://`` storage location names, if it is one and exists."""
    if not location or not location.startswith("file://"):
        return None
    parsed = urlparse(location)
    if parsed.netloc not in ("", "localhost"):
        return None
    folder = Path(unquote(parsed.path))
    return folder if folder.is_dir() else None


def copy_version_files(folder: Path, dst: Path) -> Path:
    """Copy a version's stored files to ``dst`` (the caller digests the copy, never the
    source, so what is checked is what is loaded). Symbolic links are refused."""
    def refuse_links(src: str, dst_: str) -> None:
        if os.path.islink(src):
            raise OSError(f"{src} is a symbolic link")
        shutil.copy2(src, dst_)

    for path in folder.rglob("*"):
        if path.is_symlink():
            raise OSError(f"{path} is a symbolic link")
    shutil.copytree(folder, dst, copy_function=refuse_links, dirs_exist_ok=False)
    return dst
