"""Conveyor pipelines as Apache Airflow DAGs: copy this file into Airflow's dags/ folder.

Every spec in ``CONVEYOR_PIPELINES`` (default: ``pipelines/`` in the working folder) becomes
one DAG; a broken spec becomes an import error of this file naming the spec file and key,
and the other DAGs still load. ``CONVEYOR_PROFILE`` overlays ``<stem>.<profile>.yaml``.
"""

from __future__ import annotations

from conveyor.airflow.loader import publish

publish(globals())
