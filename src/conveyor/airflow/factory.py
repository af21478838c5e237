"""The DAG factory: one pipeline spec becomes one Airflow DAG.

``dag_id`` is the spec's name, one :class:`~conveyor.airflow.operators.ConveyorStepOperator`
per step, dependencies from the step graph, the schedule, tags and description from the
spec, and one DAG param per model parameter (``model.params.C``) so a manual trigger can
override it. Nothing here runs a step: DAG files only describe.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Param

from conveyor.airflow.operators import ConveyorStepOperator

if TYPE_CHECKING:
    from conveyor.spec import LoadedSpec

__all__ = ["DEFAULT_TASK_ARGS", "build_dag", "step_graph", "to_schedule"]

log = logging.getLogger(__name__)

#: Bounded exponential backoff: the first retry waits Airflow's ``[core]
#: default_task_retry_delay`` (300 s unless configured), each next one twice as long, never
#: more than 10 minutes. The first delay is left to Airflow's configuration on purpose, so a
#: cluster (or a test) tunes it without touching DAG code.
DEFAULT_TASK_ARGS: dict[str, Any] = {
    "retries": 3,
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(hours=6),
}
# A fixed start in the past: schedules begin at the next interval (catchup is off).
START_DATE = datetime(2024, 1, 1, tzinfo=UTC)
ASSET_PREFIX = "asset:"


def step_graph(loaded: LoadedSpec) -> list[tuple[str, tuple[str, ...], str]]:
    """The pipeline's steps as ``(name, upstream, one-line doc)`` in topological order.

    The spec chooses the steps; a step's upstream are the steps it reads from and those it
    must follow (``after``) when they are in the pipeline.
    """
    from conveyor.steps import pipeline_steps  # the step graph is the core's truth

    steps = pipeline_steps(loaded)
    names = {step.name for step in steps}
    graph = []
    for step in steps:
        doc = (type(step).__doc__ or "").strip().splitlines()
        upstream = dict.fromkeys([*step.upstream, *(s for s in step.after if s in names)])
        graph.append((step.name, tuple(upstream), doc[0] if doc else ""))
    return graph


def to_schedule(schedule: str | None) -> Any:
    """The spec's ``schedule`` as Airflow's: ``None``, a preset or cron, or ``asset:<uri>``."""
    if schedule is None or not schedule.strip():
        return None
    if schedule.startswith(ASSET_PREFIX):
        from airflow.sdk import Asset

        return [Asset(schedule[len(ASSET_PREFIX):])]
    return schedule


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, child in value.items():
            _flatten(f"{prefix}.{key}", child, out)
    else:
        out[prefix] = value


def spec_params(loaded: LoadedSpec) -> dict[str, Any]:
    """Trigger-form params: every model parameter, keyed by its spec path, spec value default."""
    model = loaded.resolved.get("model") or {}
    found: dict[str, Any] = {}
    for key, value in (model.get("params") or {}).items():
        _flatten(f"model.params.{key}", value, found)
    return found


def build_dag(
    spec_path: str | os.PathLike[str],
    *,
    profile: str | None = None,
    loaded: LoadedSpec | None = None,
    dag_id: str | None = None,
    task_args: Mapping[str, Any] | None = None,
    conveyor_conn_id: str | None = None,
    extra_tags: tuple[str, ...] = ("conveyor",),
) -> DAG:
    """Build the Airflow DAG of one pipeline spec.

    Args:
        spec_path: the spec (YAML). Tasks load it again when they run, so the path must be
            valid on the workers too.
        profile: a profile overlaid on the spec (``<stem>.<profile>.yaml``).
        loaded: the already loaded spec, to skip loading it twice.
        dag_id: the DAG id; the spec's name by default.
        task_args: task arguments over :data:`DEFAULT_TASK_ARGS` (``retries``, ``pool``...).
        conveyor_conn_id: a ``conveyor`` connection giving the store root and tracking URI.
        extra_tags: tags added to the spec's own.

    Returns:
        The DAG. One task per step; the last step also finishes the run (manifest, end of the
        MLflow run), and every other sink step is made its upstream so it really is last.

    Raises:
        SpecError: the spec is invalid (names the file, line and key).
    """
    if loaded is None:
        from conveyor.spec import load_spec

        loaded = load_spec(spec_path, profile=profile)
    spec = loaded.spec
    path = str(Path(spec_path).resolve())
    params = spec_params(loaded)
    graph = step_graph(loaded)
    args = {**DEFAULT_TASK_ARGS, **(task_args or {})}
    tags = list(dict.fromkeys([*spec.tags, *extra_tags]))
    doc = spec.description.strip() or f"Conveyor pipeline `{spec.name}`."
    doc += f"\n\nSpec: `{path}`" + (f" (profile `{profile}`)" if profile else "")

    dag = DAG(
        dag_id=dag_id or spec.name,
        schedule=to_schedule(spec.schedule),
        start_date=START_DATE,
        catchup=False,
        tags=tags,
        doc_md=doc,
        description=(spec.description.strip().splitlines() or [""])[0][:200] or None,
        params={key: Param(value, description=f"spec override {key}")
                for key, value in params.items()},
        max_active_runs=1 if spec.schedule else 16,
        # Only the module globals publish a DAG: a file that builds DAGs without publishing
        # them (the errors file) must not register them by leaving ``with dag:``.
        auto_register=False,
    )
    last = graph[-1][0]
    has_downstream = {up for _, upstream, _ in graph for up in upstream}
    tasks: dict[str, ConveyorStepOperator] = {}
    with dag:
        for name, upstream, step_doc in graph:
            tasks[name] = ConveyorStepOperator(
                task_id=name, spec_path=path, step=name, profile=profile, finish=name == last,
                param_defaults=params, conveyor_conn_id=conveyor_conn_id,
                doc_md=step_doc or None, **args,
            )
            for before in upstream:
                tasks[before] >> tasks[name]
        for name, _, _ in graph:
            if name != last and name not in has_downstream:
                tasks[name] >> tasks[last]
    log.debug("built DAG %s from %s with %d tasks", dag.dag_id, path, len(tasks))
    return dag
