"""Fixtures for the Airflow integration tests: one migrated Airflow home per session.

The harness (how Airflow is run and read back) lives in :mod:`airflow_harness`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator

import pytest
from airflow_harness import BIN, ERRORS_FILE, LOADER, AirflowHome, airflow_env

log = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHome]:
    """A migrated Airflow home for the session; its DAGs folder holds Conveyor's loader files."""
    if not (BIN / "airflow").exists():
        pytest.skip("apache-airflow is not installed (uv sync --all-extras)")
    root = tmp_path_factory.mktemp("airflow_home")
    dags = root / "dags"
    dags.mkdir()
    for source in (LOADER, ERRORS_FILE):
        shutil.copy(source, dags / source.name)
    pipelines = root / "pipelines"
    pipelines.mkdir()
    home = AirflowHome(root=root, env=airflow_env(
        root, dags_folder=dags, pipelines=pipelines, conveyor_home=root / "conveyor"))
    home.run("db", "migrate")
    log.info("airflow db migrate: %.1fs", home.timings["db migrate"])
    yield home

