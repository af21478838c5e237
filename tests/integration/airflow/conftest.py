"""Fixtures for the Airflow integration tests: one migrated Airflow home per session.

The harness (how Airflow is run and read back) lives in :mod:`airflow_harness`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from airflow_harness import BIN, AirflowHome, make_home

log = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHome]:
    """A migrated Airflow home for the session; its DAGs folder holds Conveyor's loader files."""
    if not (BIN / "airflow").exists():
        pytest.skip("apache-airflow is not installed (uv sync --all-extras)")
    root = tmp_path_factory.mktemp("airflow_home")
    pipelines = root / "pipelines"
    pipelines.mkdir()
    home = make_home(root, pipelines=pipelines)
    log.info("airflow db migrate: %.1fs", home.timings["db migrate"])
    yield home

