"""Conveyor on Apache Airflow 3: the DAG factory, the DAGs-folder loader, the step operator.

Names resolve lazily (PEP 562) so ``import conveyor.airflow`` alone imports no Airflow code:
the provider entry point (:func:`conveyor.airflow.provider.get_provider_info`) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

__all__ = [
    "DAGS_FOLDER_FILES",
    "LOADER_FILE",
    "ConveyorHook",
    "ConveyorStepOperator",
    "build_dag",
    "build_dags",
    "conveyor_run_id",
    "conveyor_task",
    "get_provider_info",
    "publish",
]

#: The DAGs-folder entry that publishes one DAG per valid spec.
LOADER_FILE = Path(__file__).with_name("dags") / "conveyor_pipelines.py"
#: Both files to copy into an Airflow ``dags/`` folder (the second reports broken specs).
DAGS_FOLDER_FILES = (LOADER_FILE, LOADER_FILE.with_name("conveyor_spec_errors.py"))

_LAZY = {
    "ConveyorHook": "conveyor.airflow.hooks",
    "ConveyorStepOperator": "conveyor.airflow.operators",
    "build_dag": "conveyor.airflow.factory",
    "build_dags": "conveyor.airflow.loader",
    "conveyor_run_id": "conveyor.airflow.run_ids",
    "conveyor_task": "conveyor.airflow.decorators",
    "get_provider_info": "conveyor.airflow.provider",
    "publish": "conveyor.airflow.loader",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'conveyor.airflow' has no attribute {name!r}")
