"""A migrated MLflow SQLite database, built once per installed MLflow schema, copied per home.

MLflow creates a new SQLite tracking database by running its Alembic migrations: about 2-4 s
on this machine's kind, the largest single cost of a first ``conveyor run`` in a fresh home.
The result depends only on the installed MLflow (its migration scripts), so Conveyor builds it
once, with MLflow itself, keeps it in the user's cache folder under a key naming the MLflow
version and the schema's Alembic head revision, and copies it to a home that has no database
yet (docs/decisions/0043-first-run-cost.md).

The template holds MLflow's tables at the head revision and no experiment: MLflow creates its
Default experiment itself when it first opens the copy, with the artifact location first use
gives it, so a copied database is the one first use would have made. Everything here is the
standard library: nothing imports MLflow unless a template has to be built.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

__all__ = ["cache_dir", "ensure_template", "mlflow_schema_head", "seed_database", "template_path"]

log = logging.getLogger(__name__)

_REVISION = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*['\"]([0-9A-Za-z_]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.M)


def cache_dir() -> Path:
    """Conveyor's cache folder: ``CONVEYOR_CACHE_DIR``, else the platform's user cache.

    ``$XDG_CACHE_HOME/conveyor`` or ``~/.cache/conveyor`` on Linux, ``~/Library/Caches/conveyor``
    on macOS, ``%LOCALAPPDATA%\\conveyor\\cache`` on Windows. Only rebuildable files live here.
    """
    chosen = os.environ.get("CONVEYOR_CACHE_DIR")
    if chosen:
        return Path(chosen).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "conveyor" / "cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "conveyor"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "conveyor"


def _migrations_folder() -> Path:
    spec = importlib.util.find_spec("mlflow")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("MLflow is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "store" / "db_migrations" / \
        "versions"


@lru_cache(maxsize=1)
def mlflow_schema_head() -> str:
    """The Alembic head revision of the installed MLflow's tracking schema.

    Read from the migration scripts' ``revision``/``down_revision`` lines (milliseconds),
    instead of loading them through Alembic (about a second).

    Raises:
        RuntimeError: the scripts do not name exactly one head.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in _migrations_folder().glob("*.py"):
        text = script.read_text(encoding="utf-8")
        found = _REVISION.search(text)
        if not found:
            continue
        revisions.add(found.group(1))
        down = _DOWN.search(text)
        if down:
            parents.update(re.findall(r"['\"]([0-9A-Za-z_]+)['\"]", down.group(1)))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"MLflow's migration scripts name {len(heads)} heads, expected 1")
    return heads.pop()


def template_path() -> Path:
    """Where the template of the installed MLflow lives (it may not exist yet)."""
    name = f"mlflow-{version('mlflow')}-{mlflow_schema_head()}.db"
    return cache_dir() / "mlflow-templates" / name


def _schema_revision(path: Path) -> str | None:
    """The Alembic revision recorded in a SQLite file, ``None`` if it has none or is not one."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
            experiments = db.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]
    except sqlite3.Error:
        return None
    return row[0] if row and experiments == 0 else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created), so concurrent first runs build once."""
    with open(path, "a+b") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - no flock on Windows: builders race harmlessly
            pass
        yield


def _build(database: Path) -> None:
    """Create ``database`` with MLflow's own store (its migrations), then drop its Default
    experiment, which MLflow recreates when it first opens each copy."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{database}", (database.parent / "mlruns").as_uri())
    store.engine.dispose()
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        db.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
        db.execute("DELETE FROM experiments WHERE experiment_id = 0")


def ensure_template() -> Path:
    """The template of the installed MLflow, built now if it is missing or unreadable.

    Built in a temporary folder beside its final name, checked (the schema head it was keyed
    by, no experiment) and renamed into place, under a lock so that concurrent first runs
    build it once; a reader never sees a half-built template.

    Raises:
        RuntimeError: the built database is not at the schema head the key names.
    """
    target = template_path()
    head = mlflow_schema_head()
    if _schema_revision(target) == head:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_suffix(".lock")):
        if _schema_revision(target) == head:  # another process built it meanwhile
            return target
        log.info("building the MLflow database template %s (once per MLflow version)", target)
        with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as tmp:
            built = Path(tmp) / "mlflow.db"
            _build(built)
            revision = _schema_revision(built)
            if revision != head:
                raise RuntimeError(f"the built template has schema {revision}, expected {head}")
            with open(built, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(built, target)
    return target


def seed_database(database: Path) -> bool:
    """Copy the template to ``database`` when there is no file there yet.

    The caller holds the database's own lock. Any failure (no writable cache folder, an
    MLflow whose scripts this module cannot read) is logged and leaves ``database`` absent, so
    MLflow creates it by migrating, as it always could.

    Returns:
        Whether the template was copied.
    """
    if database.name in ("", ":memory:") or database.exists():
        return False
    try:
        template = ensure_template()
        fd, partial = tempfile.mkstemp(prefix=".mlflow-", suffix=".db", dir=database.parent)
        os.close(fd)
        try:
            shutil.copyfile(template, partial)
            os.replace(partial, database)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    except Exception as exc:  # noqa: BLE001 - MLflow's own migration is the fallback
        log.warning("MLflow database template not used (%s: %s); MLflow will create %s",
                    type(exc).__name__, exc, database)
        return False
    return True
