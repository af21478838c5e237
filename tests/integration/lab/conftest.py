"""Fixtures for the lab's integration tests: real MLflow on SQLite under CONVEYOR_HOME.

Creating MLflow's SQLite schema costs seconds, so it is done once per session into a template
file that each test copies into its own CONVEYOR_HOME (the store stays per test).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.lab.spec import Lab, LabSpec
from conveyor.lab.train import TrainResult, train_file


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = tmp_path_factory.mktemp("mlflow-template")
    db = folder / "mlflow.db"
    # the Default experiment's artifact root is fixed here, inside the session's tmp folder
    store = SqlAlchemyStore(f"sqlite:///{db}", (folder / "mlruns").as_uri())
    store.engine.dispose()
    return db


@pytest.fixture()
def lab_home(conveyor_home: Path, mlflow_template: Path,
             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    conveyor_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template, conveyor_home / "mlflow.db")
    monkeypatch.chdir(tmp_path)  # MLflow writes ./mlruns for logged models: not in the repo
    return conveyor_home


def make_lab(folder: Path, *, model_name: str = "iris_classifier", **promotion: object) -> Lab:
    spec = LabSpec.model_validate({
        "name": "iris_lab", "watch": {"folder": str(folder), "min_age_seconds": 1},
        "model_name": model_name, "preprocess": {"numeric": {"impute": "none"}},
        "promotion": promotion or {},
    })
    return Lab.from_spec(spec)


@pytest.fixture()
def inbox(lab_home: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


@pytest.fixture()
def lab(inbox: Path) -> Lab:
    return make_lab(inbox)


def drop(folder: Path, name: str, text: str | bytes, *, age: float = 60.0) -> Path:
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


@pytest.fixture()
def register(lab: Lab) -> Callable[..., TrainResult]:
    """Register configs directly (no inbox): ``register("name: a\\nmodel: svc\\n")``."""
    counter = iter(range(10_000))

    def _register(text: str, *, into: Lab | None = None) -> TrainResult:
        return train_file(into or lab, text.encode(), f"config-{next(counter)}.yaml")

    return _register
