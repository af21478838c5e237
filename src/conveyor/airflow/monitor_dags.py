"""A served model's scheduled drift check: the ``<name>_monitor`` DAG of a pipeline spec.

A pipeline spec with a ``monitor:`` section gets, beside its training DAG, one DAG
``<name>_monitor`` (schedule ``monitor.schedule``, hourly by default) with one task,
``check``: :func:`conveyor.monitoring.check.check` on ``monitor.model`` (default
``models:/<registry.name>@production``) over the last ``monitor.window``, the same code as
``conveyor monitor``. Drift is not a task failure: the verdict is the task's XCom value and
the check itself alerts and triggers the training DAG. Bad input (no profile, a bad spec)
fails the task at once (``AirflowFailException``); anything else is retried.

Parsing imports nothing heavy: the task imports the monitoring code when it runs.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, task

from conveyor.airflow.factory import START_DATE, to_schedule
from conveyor.errors import SpecError

if TYPE_CHECKING:
    from conveyor.spec import LoadedSpec

__all__ = ["MONITOR_SUFFIX", "build_monitor_dag", "monitored_model"]

MONITOR_SUFFIX = "_monitor"


def monitored_model(loaded: LoadedSpec) -> str:
    """The model URI a spec's monitor DAG watches.

    Raises:
        SpecError: neither ``monitor.model`` nor ``registry.name`` says which.
    """
    spec = loaded.spec
    if spec.monitor.model:
        return spec.monitor.model
    if spec.registry.name:
        return f"models:/{spec.registry.name}@production"
    raise SpecError(f"{loaded.path}: monitor: set monitor.model (or registry.name) so the "
                    "monitor DAG knows which model to watch")


def build_monitor_dag(spec_path: str | os.PathLike[str], *, loaded: LoadedSpec,
                      profile: str | None = None, conveyor_conn_id: str | None = None) -> DAG:
    """The ``<name>_monitor`` DAG of one pipeline spec (see the module's docstring).

    ``conveyor_conn_id``: a ``conveyor`` connection giving the store root and tracking URI,
    as for the pipeline's own tasks (the samples and the registry are where they write).
    """
    path = str(Path(spec_path).resolve())
    spec = loaded.spec
    model = monitored_model(loaded)
    with DAG(
        dag_id=f"{spec.name}{MONITOR_SUFFIX}",
        description=f"Conveyor: drift check of {model} against its training profile",
        schedule=to_schedule(spec.monitor.schedule),
        start_date=START_DATE, catchup=False, max_active_runs=1,
        tags=list(dict.fromkeys([*spec.tags, "conveyor", "monitor"])),
        default_args={"retries": 2, "retry_delay": timedelta(minutes=1),
                      "execution_timeout": timedelta(hours=1)},
        auto_register=False,  # published by the loader's file only (see factory.build_dag)
    ) as dag:

        @task(task_id="check")
        def check() -> dict[str, Any]:
            """Compare the model's sampled window with its reference profile."""
            from airflow.sdk.exceptions import AirflowFailException

            from conveyor.errors import BadInputError
            from conveyor.monitoring.check import check as run_check
            from conveyor.spec import load_spec

            try:
                overrides = []
                if conveyor_conn_id:
                    from conveyor.airflow.hooks import ConveyorHook

                    overrides = ConveyorHook(conveyor_conn_id=conveyor_conn_id).spec_overrides()
                result = run_check(model, spec=load_spec(path, overrides, profile=profile))
            except BadInputError as exc:
                raise AirflowFailException(str(exc)) from exc
            return result.verdict

        check()
    return dag
