"""Conveyor pipelines as Apache Airflow DAGs: copy into Airflow's dags/ folder.

Every valid spec in ``CONVEYOR_PIPELINES`` (default: ``pipelines/`` in the working folder)
becomes one DAG. Broken specs are reported by the companion ``conveyor_spec_errors.py`` as
an import error; copy both files. ``CONVEYOR_PROFILE`` overlays ``<stem>.<profile>.yaml``.
"""

from __future__ import annotations

from conveyor.airflow.loader import publish

publish(globals())
