"""Fixtures shared by every test: an isolated CONVEYOR_HOME, the real data sets, services.

Tests that need a service this machine may lack (PostgreSQL, Redis, ../shared/data) skip
with the reason; with ``CONVEYOR_REQUIRE_SERVICES=1`` (as ``.ci/run`` sets) such a skip is a
failure instead, so CI never skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
BREAST_CANCER_SPEC = ROOT / "examples" / "breast_cancer" / "pipeline.yaml"


def unavailable(reason: str) -> None:
    """Skip for a missing service or data set, or fail when services are required."""
    if os.environ.get("CONVEYOR_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def conveyor_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own CONVEYOR_HOME (store, MLflow SQLite file, exports)."""
    home = tmp_path / "home"
    monkeypatch.setenv("CONVEYOR_HOME", str(home))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CONVEYOR_EXPORT_URI",
                 "WDBC_PATH"):
        monkeypatch.delenv(name, raising=False)
    return home


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
