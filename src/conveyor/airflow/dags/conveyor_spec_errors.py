"""Broken Conveyor pipeline specs as one Airflow import error (no DAG is defined here).

Companion of ``conveyor_pipelines.py``: Airflow marks every DAG of a file with an import
error stale, so the errors are raised from this file, which holds no DAGs.
"""

from __future__ import annotations

from conveyor.airflow.loader import raise_spec_errors

raise_spec_errors()
