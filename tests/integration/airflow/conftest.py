"""Fixtures for the Airflow integration tests: one migrated Airflow home per session, and one
``airflow standalone`` serving the breast-cancer DAG, started by the first test that needs it.

The harness (how Airflow is run and read back) lives in :mod:`airflow_harness`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_harness import BIN, REPO, AirflowHome, Standalone, make_home

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



#: The DAG the ``standalone`` fixture serves: only the breast-cancer spec, so that no
#: scheduled example DAG runs beside the tests' own runs.
STANDALONE_DAG = "breast_cancer"


@pytest.fixture(scope="session")
def standalone(tmp_path_factory: pytest.TempPathFactory, wdbc_path: Path
               ) -> Iterator[Standalone]:
    """A real ``airflow standalone`` (api-server, scheduler with the LocalExecutor,
    dag-processor, triggerer) on 127.0.0.1 and SQLite, once per session (15-45 s to
    healthy here); its DAGs folder serves ``examples/breast_cancer`` as ``breast_cancer``.

    Shared by modules: each test names its own DAG runs (by run id) and must not assume it
    made the only or the latest run.
    """
    if not (BIN / "airflow").exists():
        pytest.skip("apache-airflow is not installed (uv sync --all-extras)")
    root = tmp_path_factory.mktemp("standalone")
    home = make_home(root, pipelines=REPO / "examples" / "breast_cancer", extra_env={
        "WDBC_PATH": str(wdbc_path),
        "CONVEYOR_EXPORT_URI": (root / "exports").as_uri(),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    })
    assert home.env["AIRFLOW__API__PORT"]
    server = Standalone(home=home, port=int(home.env["AIRFLOW__API__PORT"]))
    try:
        started = time.perf_counter()
        server.start()
        server.wait_for_dag(STANDALONE_DAG)
        log.info("airflow standalone: healthy with %s parsed in %.1fs", STANDALONE_DAG,
                 time.perf_counter() - started)
        yield server
    finally:
        server.stop()
