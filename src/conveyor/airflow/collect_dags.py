"""A collection spec's scheduled DAG: ``<name>_collect``, one task per data interval.

A YAML file with a top-level ``collect:`` section (``examples/youtube_comments/collect.yaml``)
becomes one DAG with one task, ``collect``: :func:`conveyor.sources.collect.collect` over the
DAG run's data interval, the same code as ``conveyor collect --interval START/END``. The
schedule is the spec's (``@hourly`` by default) as a *data-interval* timetable, so each run
owns a real interval ``[start, end)`` (Airflow 3's default cron timetable gives zero-length
intervals); ``max_active_runs=1`` keeps runs in order, so two intervals never deduplicate
against each other at once. Re-running a DAG run (clear, or ``airflow dags test`` with the
same logical date) replaces that interval's part of the dataset.

The API key: ``data.api_key.env`` is read from the worker's environment and registered with
Airflow's secrets masker; ``data.api_key.conn_id`` is the password of that Airflow
connection (masked by Airflow itself). Refusals (quota, key, a loop, an off-origin link) fail
at once (``AirflowFailException``); an API unavailable through every retry is retried by
Airflow. Parsing imports nothing heavy.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from conveyor.airflow.factory import ASSET_PREFIX, START_DATE, to_schedule

__all__ = ["COLLECT_SUFFIX", "build_collect_dag", "collect_schedule"]

COLLECT_SUFFIX = "_collect"


def collect_schedule(schedule: str | None) -> Any:
    """A cron expression or preset as a data-interval timetable (UTC); else as the factory."""
    if schedule is None or not schedule.strip() or schedule.startswith(ASSET_PREFIX) or \
            schedule.strip() in ("@once", "@continuous"):
        return to_schedule(schedule)
    from airflow.timetables.interval import CronDataIntervalTimetable

    return CronDataIntervalTimetable(schedule.strip(), timezone="UTC")


def _connection_password(conn_id: str) -> str:
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id).password or ""


def build_collect_dag(spec_path: str | os.PathLike[str], *, collection: Any,
                      conveyor_conn_id: str | None = None) -> DAG:
    """The ``<name>_collect`` DAG of one collection spec (see the module's docstring).

    Args:
        spec_path: the collection spec; the task loads it again when it runs.
        collection: the loaded :class:`~conveyor.sources.collect.Collection`.
        conveyor_conn_id: a ``conveyor`` connection whose ``store_root`` the dataset goes
            under (as for the pipelines' tasks).
    """
    path = str(Path(spec_path).resolve())
    spec = collection.spec
    with DAG(
        dag_id=f"{spec.name}{COLLECT_SUFFIX}",
        description=(spec.description.strip().splitlines() or [""])[0][:200]
        or f"Conveyor: collect {spec.name} from {spec.data.url}",
        doc_md=f"Collects `{spec.name}` one data interval per run.\n\nSpec: `{path}`",
        schedule=collect_schedule(spec.schedule),
        start_date=START_DATE, catchup=False, max_active_runs=1,
        tags=list(dict.fromkeys([*spec.tags, "conveyor", "collect"])),
        default_args={"retries": 3, "retry_delay": timedelta(minutes=1),
                      "retry_exponential_backoff": 2.0, "max_retry_delay": timedelta(minutes=15),
                      "execution_timeout": timedelta(hours=1)},
        auto_register=False,  # published by the loader's file only (see factory.build_dag)
    ) as dag:

        @task(task_id="collect")
        def collect_interval(data_interval_start: Any = None,
                             data_interval_end: Any = None) -> dict[str, Any]:
            """Collect this run's data interval into the dataset."""
            import dataclasses

            from airflow.sdk.exceptions import AirflowFailException

            from conveyor.errors import BadInputError
            from conveyor.sources.collect import collect, load_collection
            from conveyor.sources.http_api import resolve_api_key

            try:
                loaded = load_collection(path)
                if conveyor_conn_id:
                    from conveyor.airflow.hooks import ConveyorHook
                    from conveyor.store import store_root

                    root = dict(o.split("=", 1) for o in ConveyorHook(
                        conveyor_conn_id=conveyor_conn_id).spec_overrides()).get("store.root")
                    if root:
                        loaded = dataclasses.replace(loaded, store_root=store_root(root))
                key = resolve_api_key(loaded.spec.data.api_key, lookup=_connection_password)
                if key:
                    from airflow.sdk.log import mask_secret

                    mask_secret(key)
                if data_interval_start is None or data_interval_end is None:
                    raise BadInputError(f"{path}: the DAG run has no data interval; give "
                                        "the DAG a schedule (schedule:)")
                result = collect(loaded, (data_interval_start, data_interval_end),
                                 api_key=key)
            except BadInputError as exc:
                raise AirflowFailException(str(exc)) from exc
            return result.to_dict()

        collect_interval()
    return dag
