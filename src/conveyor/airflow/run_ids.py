"""Conveyor run ids derived from Airflow DAG runs.

Airflow run ids (``manual__2026-11-23T10:38:21.991560+00:00``) contain ``:`` and ``+``,
which are not safe storage keys. Every task of one DAG run must derive the *same* Conveyor
run id without talking to the others, so the id is a pure function of ``(dag_id, run_id)``:
a readable sanitised prefix plus a short hash of the exact pair, which keeps two Airflow run
ids that sanitise alike (``a:b`` and ``a+b``) apart.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["RUN_ID_PATTERN", "conveyor_run_id"]

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HASH_CHARS = 10
_MAX = 128


def conveyor_run_id(dag_id: str, airflow_run_id: str) -> str:
    """The Conveyor run id of one Airflow DAG run.

    Args:
        dag_id: the Airflow DAG id (the spec's name for generated DAGs).
        airflow_run_id: the DAG run's ``run_id``.

    Returns:
        An id matching :data:`RUN_ID_PATTERN`, stable for the same pair, e.g.
        ``breast_cancer-manual__2026-11-23T10-38-21.991560-00-00-3f9a1c0b2e``.

    Raises:
        ValueError: if ``dag_id`` or ``airflow_run_id`` is empty.
    """
    if not dag_id or not airflow_run_id:
        raise ValueError(
            f"dag_id and run_id must be non-empty, got dag_id={dag_id!r} run_id={airflow_run_id!r}"
        )
    digest = hashlib.sha256(f"{dag_id}\0{airflow_run_id}".encode()).hexdigest()[:_HASH_CHARS]
    readable = _UNSAFE.sub("-", f"{dag_id}-{airflow_run_id}").strip("-._")
    readable = readable[: _MAX - _HASH_CHARS - 1].rstrip("-._")
    run_id = f"{readable}-{digest}" if readable else digest
    if not RUN_ID_PATTERN.match(run_id):  # pragma: no cover - guarded by construction
        raise AssertionError(f"derived run id {run_id!r} is not a safe key")
    return run_id
