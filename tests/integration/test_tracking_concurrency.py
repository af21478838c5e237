"""The embedded MLflow (SQLite) survives several processes using it for the first time at once.

Airflow runs tasks of different DAGs in parallel processes; each may be the first to open
``CONVEYOR_HOME/mlflow.db``. Without a lock, MLflow's migrations race and one process fails
on every retry ("table alembic_version already exists").
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest


def _first_use(home: str, index: int) -> str:
    os.environ["CONVEYOR_HOME"] = home
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from conveyor.tracking import Tracker

    return Tracker(None, f"experiment-{index}").experiment_id


@pytest.mark.fresh_mlflow  # the point is MLflow's first use: no migrated database yet
def test_four_processes_create_the_database_at_once(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        ids = pool.starmap(_first_use, [(home, i) for i in range(4)])
    assert len(set(ids)) == 4  # four experiments, none lost to a failed migration
    assert (tmp_path / "home" / "mlflow.db").is_file()
    assert (tmp_path / "home" / "mlflow.db.lock").is_file()  # the lock was taken
