"""The embedded MLflow (SQLite) survives several processes using it for the first time at once.

Airflow runs tasks of different DAGs in parallel processes; each may be the first to open
``CONVEYOR_HOME/mlflow.db``. Without a lock, MLflow's migrations race and one process fails
on every retry ("table alembic_version already exists"). A new database is a copy of the
template in the user's cache, which concurrent first runs must build once (ADR 0043).
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest


def _first_use(home: str, index: int) -> tuple[str, str]:
    os.environ["CONVEYOR_HOME"] = home
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from conveyor.tracking import Tracker

    return home, Tracker(None, f"experiment-{index}").experiment_id


@pytest.mark.fresh_mlflow  # the point is MLflow's first use: no migrated database yet
def test_four_processes_create_the_database_at_once(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # an empty cache too: the four race to build the template (ADR 0043), two homes each
    # have two processes racing to create their database from it
    cache = tmp_path / "cache"
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(cache))
    homes = [str(tmp_path / "home-a"), str(tmp_path / "home-b")]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        ids = pool.starmap(_first_use, [(homes[i % 2], i) for i in range(4)])
    assert len(set(ids)) == 4  # four experiments, none lost to a failed first use
    for home in homes:
        assert (Path(home) / "mlflow.db").is_file()
        assert (Path(home) / "mlflow.db.lock").is_file()  # the lock was taken
    assert len(list((cache / "mlflow-templates").glob("*.db"))) == 1  # built once, kept
