"""Fixtures for the lab's integration tests: real MLflow on SQLite under CONVEYOR_HOME.

Each test's CONVEYOR_HOME starts with a copy of the session's migrated MLflow database
(``mlflow_db`` in tests/conftest.py); the store stays per test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.lab.spec import Lab, LabSpec
from conveyor.lab.train import TrainResult, train_file


@pytest.fixture()
def lab_home(conveyor_home: Path, mlflow_db: Path,
             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
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
