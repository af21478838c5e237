"""Fixtures shared by every test: an isolated CONVEYOR_HOME, the real data sets, services.

Tests that need a service this machine may lack (PostgreSQL, Redis, ../shared/data) skip
with the reason; with ``CONVEYOR_REQUIRE_SERVICES=1`` (as ``.ci/run`` sets) such a skip is a
failure instead, so CI never skips.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from conveyor.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
SHARED_DATA = ROOT.parent / "shared" / "data"
BREAST_CANCER_SPEC = ROOT / "examples" / "breast_cancer" / "pipeline.yaml"


def unavailable(reason: str) -> None:
    """Skip for a missing service or data set, or fail when services are required."""
    if os.environ.get("CONVEYOR_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required but unavailable: {reason}")
    pytest.skip(reason)


# ----------------------------------------------------------------------------- markers

# The folder a test lives in says what it needs; a module marks only what differs (slow,
# celery, a longer timeout). Prefixes of the path below tests/, most general first.
FOLDER_MARKERS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("unit",): ("unit",),
    ("integration",): ("integration",),
    ("integration", "airflow"): ("airflow",),
    ("docs",): ("docs",),
}


XDIST_GROUPS: dict[tuple[str, ...], str] = {("docs",): "docs",
                                            ("integration", "airflow"): "airflow"}


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by these markers
def pytest_configure(config: pytest.Config) -> None:
    """The session starts without the caller's Conveyor and MLflow locations.

    Every test in tests/ gets its own home anyway (``conveyor_home``); the docstring examples
    in src/ (ADR 0028) name their own homes too, and a tracking URI exported in the shell
    would outrank them, as it does for a user.
    """
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CONVEYOR_HOME",
                 "CONVEYOR_EXPORT_URI"):
        os.environ.pop(name, None)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``pytest -n N`` (scripts/test.sh) each test module runs whole on one worker, in
    order, and so do the groups in :data:`XDIST_GROUPS`: the documentation's blocks continue
    each other's shell, and the Airflow tests share one session's Airflow. (xdist's own
    ``--dist loadgroup`` cannot see groups under pytest 9.2: it renames ``_nodeid``.)"""
    from xdist.scheduler import LoadScopeScheduling

    groups = {"tests/" + "/".join(prefix) + "/": name for prefix, name in XDIST_GROUPS.items()}

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            for prefix, name in groups.items():
                if path.startswith(prefix):
                    return name
            return path

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by its folder: ``-m "not integration"`` is the unit suite."""
    for item in items:
        if not item.path.is_relative_to(TESTS):  # docstring examples in src/ (ADR 0028)
            # the public API's examples run pipelines on real MLflow; the rest are pure
            item.add_marker("integration" if item.path.name in ("__init__.py", "api.py")
                            else "unit")
            continue
        folders = item.path.relative_to(TESTS).parts[:-1]
        for prefix, names in FOLDER_MARKERS.items():
            if folders[: len(prefix)] == prefix:
                for name in names:
                    item.add_marker(name)


@pytest.fixture(autouse=True)
def no_mlflow_globals_left() -> Iterator[None]:
    """Fail a test after which MLflow's process-wide tracking or registry URI is set.

    Conveyor sets them only inside ``tracking.mlflow_scope`` (ADR 0026); a test that sets
    them itself (``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``) points
    every later bare ``MlflowClient``, and every later default tracking URI, at its own
    database: seen as "0 registered versions" two modules later, and as version 3 where a
    fresh home has version 1. MLflow's globals and the variables are reset either way, so one
    failure does not cascade.
    """
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    before = {name: os.environ.get(name) for name in names}
    yield
    import sys

    if "mlflow" not in sys.modules:
        return
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    # MLflow's own globals only: a variable the test set with monkeypatch is undone after
    # this check (autouse fixtures are set up by name), and mlflow.set_tracking_uri, the
    # leak this is for, sets the global as well as MLFLOW_TRACKING_URI
    left = {k: v for k, v in (("tracking", tracking_utils._tracking_uri),
                              ("registry", registry_utils._registry_uri)) if v is not None}
    if not left:
        return
    tracking_utils._tracking_uri = None
    registry_utils._registry_uri = None
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if left:
        pytest.fail(f"the test left MLflow's tracking or registry URI set: {left}; use an "
                    "explicit MlflowClient(tracking_uri=..., registry_uri=...) or "
                    "conveyor.tracking.mlflow_scope", pytrace=False)


@pytest.fixture(autouse=True)
def conveyor_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own CONVEYOR_HOME (store, MLflow SQLite file, exports)."""
    home = tmp_path / "home"
    monkeypatch.setenv("CONVEYOR_HOME", str(home))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CONVEYOR_EXPORT_URI",
                 "WDBC_PATH"):
        monkeypatch.delenv(name, raising=False)
    return home


# ----------------------------------------------------------------------------- MLflow

@pytest.fixture(scope="session", autouse=True)
def conveyor_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One ``CONVEYOR_CACHE_DIR`` per session (each xdist worker has its own), set before any
    other fixture runs, so Conveyor's MLflow template is built here, not in the user's cache."""
    folder = tmp_path_factory.mktemp("conveyor-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVEYOR_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def mlflow_template(conveyor_cache: Path) -> Path:
    """Conveyor's migrated MLflow template in the session's cache (ADR 0031, ADR 0043).

    Built once by the installed MLflow (its Alembic migrations, about 4 s here); a home that
    has no ``mlflow.db`` gets a copy from Conveyor itself. It holds MLflow's tables at the
    schema's head revision and no experiment: MLflow adds its Default experiment when it
    first opens a copy, as it does in a database it has just created.
    """
    from conveyor.tracking.template import ensure_template, mlflow_schema_head

    template = ensure_template()
    assert template.is_relative_to(conveyor_cache), template
    with closing(sqlite3.connect(template)) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (mlflow_schema_head(),)]
        assert db.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,)
    return template


@pytest.fixture(autouse=True)
def mlflow_db(request: pytest.FixtureRequest, conveyor_home: Path) -> Path | None:
    """Integration tests start with a copy of :func:`mlflow_template` as the home's
    ``mlflow.db``; mark a test ``fresh_mlflow`` to see MLflow's first use instead."""
    node = request.node
    if (node.get_closest_marker("integration") is None or node.get_closest_marker("docs")
            or node.get_closest_marker("fresh_mlflow")):
        return None
    return request.getfixturevalue("seed_mlflow")(conveyor_home)


@pytest.fixture(scope="session")
def seed_mlflow(mlflow_template: Path) -> Callable[[Path], Path]:
    """``seed_mlflow(home)`` copies the template to ``home/mlflow.db``: for a home a module
    makes for itself (its tests share one run)."""

    def seed(home: Path) -> Path:
        home.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(mlflow_template, home / "mlflow.db"))

    return seed


@pytest.fixture(scope="session")
def wdbc_path() -> Path:
    path = SHARED_DATA / "wdbc" / "wdbc.data"
    if not path.is_file():
        unavailable(f"{path} is missing: download UCI data set 17 (Breast Cancer Wisconsin "
                    "Diagnostic) and place wdbc.data there")
    return path


@pytest.fixture(scope="session")
def titanic_dir() -> Path:
    path = SHARED_DATA / "titanic"
    if not (path / "train.csv").is_file():
        unavailable(f"{path}/train.csv is missing: download Kaggle's Titanic train.csv")
    return path


@pytest.fixture()
def breast_cancer_spec(wdbc_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example spec, reading the real raw WDBC file."""
    monkeypatch.setenv("WDBC_PATH", str(wdbc_path))
    return BREAST_CANCER_SPEC


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-protocol server (moto's server mode) on 127.0.0.1; yields its endpoint."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture()
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point s3fs/boto3 at the local S3 server with throw-away credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "conveyor-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "conveyor-test-secret-do-not-log")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    return s3_server


@pytest.fixture()
def dead_s3(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """S3 credentials as for the local server, but the endpoint on a closed port of
    127.0.0.1, tried once (``AWS_MAX_ATTEMPTS=1``); yields the endpoint."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    return endpoint


@pytest.fixture()
def s3_bucket(s3_env: str) -> str:
    """A fresh, empty bucket on the local S3 server; yields its name."""
    import boto3

    name = f"conveyor-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_env).create_bucket(Bucket=name)
    return name


# ----------------------------------------------------------------------------- PostgreSQL

PG_HOST = "127.0.0.1"


def pg(sql: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
    """Run one statement on the local PostgreSQL (trust auth, user postgres), autocommit."""
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, user="postgres", dbname=dbname, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []
    finally:
        conn.close()


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[Callable[[str], str]]:
    """A factory of throw-away PostgreSQL databases: ``postgres_database("mlflow")`` creates
    ``conveyor_mlflow_<random>`` and returns its SQLAlchemy URL; every database it made is
    dropped when the module's tests are done."""
    try:
        pg("SELECT 1")
    except Exception as exc:
        unavailable(f"PostgreSQL on {PG_HOST}:5432 is not reachable: {exc}")
    made: list[str] = []

    def create(kind: str) -> str:
        name = f"conveyor_{kind}_{uuid.uuid4().hex[:8]}"
        pg(f"CREATE DATABASE {name}")
        made.append(name)
        return f"postgresql+psycopg2://postgres@{PG_HOST}:5432/{name}"

    try:
        yield create
    finally:
        for name in made:
            pg("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
            pg(f"DROP DATABASE IF EXISTS {name}")
