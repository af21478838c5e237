"""The migrated MLflow template (ADR 0043): one per MLflow version and schema, copied to a home
that has no database, with real MLflow opening the copy."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from conveyor.tracking import Tracker
from conveyor.tracking import template as templates


def _revision(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchone()[0]


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(cache))
    return cache


def test_schema_head_is_the_one_mlflow_migrates_to() -> None:
    from mlflow.store.db.utils import _get_latest_schema_revision

    assert templates.mlflow_schema_head() == _get_latest_schema_revision()


def test_fresh_home_opens_a_copy_of_the_template_without_migrating(
        conveyor_home: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow.store.db.utils as db_utils
    from mlflow import MlflowClient

    migrations: list[object] = []
    monkeypatch.setattr(db_utils, "_initialize_tables", migrations.append)
    template_bytes = mlflow_template.read_bytes()
    assert not (conveyor_home / "mlflow.db").exists()

    tracker = Tracker(None, "fresh")
    tracker.attach("run-1", tags={})

    assert migrations == []  # MLflow found its tables: nothing was migrated in this home
    database = conveyor_home / "mlflow.db"
    assert _revision(database) == templates.mlflow_schema_head()
    names = [e.name for e in MlflowClient(f"sqlite:///{database}").search_experiments()]
    assert sorted(names) == ["Default", "fresh"]  # Default made by MLflow on first open
    assert mlflow_template.read_bytes() == template_bytes  # the template itself is never used
    assert not list(conveyor_home.glob(".mlflow-*"))  # no partial copy left beside it


@pytest.fixture
def builds(mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Count template builds; each one copies the session's template (built by the real
    MLflow once) instead of migrating again."""
    built: list[Path] = []

    def build(database: Path) -> None:
        built.append(database)
        shutil.copyfile(mlflow_template, database)

    monkeypatch.setattr(templates, "_build", build)
    return built


def test_a_new_mlflow_version_makes_a_new_template(own_cache: Path, builds: list[Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    current = templates.ensure_template()
    assert len(builds) == 1 and current.name.startswith("mlflow-3.")
    assert templates.ensure_template() == current and len(builds) == 1  # used as it is

    monkeypatch.setattr(templates, "version", lambda name: "99.0.0")
    upgraded = templates.ensure_template()
    assert upgraded.name == f"mlflow-99.0.0-{templates.mlflow_schema_head()}.db"
    assert len(builds) == 2 and current.exists()
    assert _revision(upgraded) == templates.mlflow_schema_head()


def test_a_stale_template_is_rebuilt(own_cache: Path, builds: list[Path]) -> None:
    target = templates.ensure_template()
    with closing(sqlite3.connect(target)) as db, db:
        db.execute("UPDATE alembic_version SET version_num = 'stale0000000'")

    assert templates.ensure_template() == target
    assert len(builds) == 2
    assert _revision(target) == templates.mlflow_schema_head()


def test_a_new_schema_head_names_a_new_template(
        own_cache: Path, builds: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    scripts = tmp_path / "versions"
    shutil.copytree(templates._migrations_folder(), scripts)
    head = templates.mlflow_schema_head()
    (scripts / "feedface0001_next.py").write_text(
        f'revision = "feedface0001"\ndown_revision = "{head}"\n')
    monkeypatch.setattr(templates, "_migrations_folder", lambda: scripts)
    templates.mlflow_schema_head.cache_clear()
    try:
        assert templates.mlflow_schema_head() == "feedface0001"
        assert templates.template_path().name.endswith("-feedface0001.db")
        # a build that does not reach the head it is keyed by is never published, and the
        # home falls back to MLflow's own migration
        database = tmp_path / "home" / "mlflow.db"
        database.parent.mkdir()
        with caplog.at_level(logging.WARNING, logger=templates.__name__):
            assert templates.seed_database(database) is False
        assert len(builds) == 1
        assert not database.exists()
        assert not templates.template_path().exists()
        assert not [p for p in templates.template_path().parent.iterdir()
                    if p.suffix == ".db" or p.is_dir()]  # nothing half-built left behind
        assert "template not used (RuntimeError: the built template has schema " \
               f"{head}, expected feedface0001)" in caplog.text
    finally:
        templates.mlflow_schema_head.cache_clear()


def test_an_unwritable_cache_leaves_the_database_to_mlflow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(blocker))
    database = tmp_path / "home" / "mlflow.db"
    database.parent.mkdir()
    with caplog.at_level(logging.WARNING, logger=templates.__name__):
        assert templates.seed_database(database) is False
    assert not database.exists() and not list(database.parent.iterdir())
    assert "MLflow database template not used (NotADirectoryError" in caplog.text
    assert f"MLflow will create {database}" in caplog.text


def test_an_existing_database_is_never_replaced(tmp_path: Path, mlflow_template: Path) -> None:
    database = tmp_path / "mlflow.db"
    database.write_bytes(b"the user's own")
    assert templates.seed_database(database) is False
    assert database.read_bytes() == b"the user's own"
