"""The public API's surface: what ``import conveyor`` costs and what it exports."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import conveyor

HEAVY = ("airflow", "mlflow", "pandas", "sklearn", "rich", "fsspec", "pydantic")


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys\n{code}\n"
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.split()


def test_import_conveyor_imports_no_library() -> None:
    assert _loaded_after("import conveyor") == []


def test_the_cli_module_imports_neither_airflow_nor_the_ml_stack() -> None:
    # `conveyor --help` and every command start here; Airflow is an optional extra
    assert _loaded_after("import conveyor.cli") == []


def test_exports_resolve_and_match_all() -> None:
    for name in conveyor.__all__:
        assert getattr(conveyor, name) is not None, name
    assert set(conveyor.__all__) <= set(dir(conveyor))
    assert conveyor.run.__module__ == "conveyor.api"
    assert issubclass(conveyor.BadInputError, conveyor.ConveyorError)
    with pytest.raises(AttributeError, match="no attribute 'runner'"):
        conveyor.runner  # noqa: B018 - the attribute access is the test


def test_version_is_the_installed_distributions() -> None:
    assert conveyor.__version__ == importlib.metadata.version("conveyor-ml")


def test_run_result_is_frozen() -> None:
    result = conveyor.RunResult(run_id="r", pipeline="p", status="ok", metrics={},
                                model_uri=None, manifest_uri=None, run_uri="file:///x",
                                mlflow_run_id=None)
    with pytest.raises(AttributeError):
        result.status = "rejected"  # type: ignore[misc]
    assert result.raise_for_status() is result and result.exit_code == 0


def test_a_rejection_nothing_published_is_exit_3_and_raises_on_request() -> None:
    rejected = conveyor.RunResult(run_id="r", pipeline="p", status="rejected", metrics={},
                                  model_uri=None, manifest_uri="file:///m", run_uri="file:///x",
                                  mlflow_run_id=None, reason="test_f1 = 0.5, needs >= 0.9")
    assert rejected.exit_code == 3 and not rejected.published
    with pytest.raises(conveyor.GateRejectedError, match=r"needs >= 0\.9"):
        rejected.raise_for_status()
    published = conveyor.RunResult(run_id="r", pipeline="p", status="rejected", metrics={},
                                   model_uri="models:/m/1", manifest_uri="file:///m",
                                   run_uri="file:///x", mlflow_run_id=None)
    assert published.exit_code == 0  # registry.allow_unvalidated published it anyway
