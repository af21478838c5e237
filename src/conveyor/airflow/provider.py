"""Conveyor as an Airflow provider (the ``apache_airflow_provider`` entry point).

Airflow's providers manager calls :func:`get_provider_info` when it lists providers; it
imports nothing but this module, so the function must stay free of heavy imports.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

__all__ = ["get_provider_info"]

_DISTRIBUTION = "conveyor-ml"


def _version() -> str:
    try:
        return metadata.version(_DISTRIBUTION)
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0.0.0"


def get_provider_info() -> dict[str, Any]:
    """The provider description Airflow validates against ``provider_info.schema.json``."""
    return {
        "package-name": _DISTRIBUTION,
        "name": "Conveyor",
        "description": "One YAML spec to a tracked, validated ML pipeline: Conveyor's step "
        "operator, its connection type and the DAG factory for pipeline specs.",
        "versions": [_version()],
        "integrations": [
            {
                "integration-name": "Conveyor",
                "external-doc-url": "https://github.com/conveyor-ml/conveyor/blob/main/docs/airflow.md",
                "tags": ["software"],
            }
        ],
        "operators": [
            {"integration-name": "Conveyor", "python-modules": ["conveyor.airflow.operators"]}
        ],
        "hooks": [{"integration-name": "Conveyor", "python-modules": ["conveyor.airflow.hooks"]}],
        "connection-types": [
            {
                "connection-type": "conveyor",
                "hook-class-name": "conveyor.airflow.hooks.ConveyorHook",
                "hook-name": "Conveyor",
            }
        ],
        "task-decorators": [
            {"name": "conveyor", "class-name": "conveyor.airflow.decorators.conveyor_task"}
        ],
    }
