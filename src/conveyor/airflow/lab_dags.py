"""A lab spec as two Airflow DAGs: ``<lab>_train`` (watch, claim, train) and ``<lab>_promote``.

``<lab>_train`` (scheduled by the spec's ``schedule``, default hourly, or triggered):

* ``wait_for_files`` - a sensor (reschedule mode: no worker slot between pokes) on
  :func:`conveyor.lab.pending_files`; an inbox that stays empty until the timeout *skips*
  the run (``soft_fail``) instead of failing it. Bad input (a missing inbox) ends the wait
  with the error as its value, because ``soft_fail`` would turn a failure into a skip; two
  retries cover Airflow failing a reschedule sensor on a late executor event
  (apache/airflow#71172, seen here with a 1 s poke interval);
* ``claim`` - :func:`conveyor.lab.claim_new`: one small JSON dict per newly claimed file;
  fails at once with the sensor's error, if it passed one;
* ``train`` - mapped over the claims (one mapped task per file): :func:`conveyor.lab.train_claim`.
  Bad input (the file was moved to ``rejected/``) fails only that mapped task, at once and
  without retries (``AirflowFailException``); anything else is retried with backoff;
* ``registered`` - runs once every mapped task is done (``all_done``) and emits the asset
  ``conveyor://<lab>/registered`` when at least one version was registered; otherwise it is
  skipped, and a skipped task emits no asset event. It fails when ``wait_for_files`` or
  ``claim`` failed: it is the DAG's only leaf, so its state is the run's.

``<lab>_promote`` is scheduled on that asset: :func:`conveyor.lab.promote_lab`. An
``aborted`` promotion (production moved while it was scoring) is raised as a retryable error.

Parsing validates the whole lab spec (:func:`conveyor.lab.spec.load_lab`: a typo becomes an
import error naming file, line and key, as for pipeline specs) and stays cheap: that module
imports pydantic and PyYAML only; pandas, scikit-learn and MLflow are imported by the tasks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, PokeReturnValue, TriggerRule, task

from conveyor.airflow.factory import DEFAULT_TASK_ARGS, START_DATE
from conveyor.airflow.specs import (
    LAB_KEY,
    POKE_ENV,
    SENSOR_POKE_SECONDS,
    SENSOR_TIMEOUT_SECONDS,
    TIMEOUT_ENV,
    is_lab_spec,
)
from conveyor.airflow.specs import env_seconds as _seconds
from conveyor.errors import ConveyorRuntimeError

__all__ = ["DEFAULT_LAB_SCHEDULE", "LAB_KEY", "build_lab_dags", "is_lab_spec", "lab_asset"]

DEFAULT_LAB_SCHEDULE = "@hourly"
#: Retries of the sensor, one poke interval apart: Airflow 3.3 can fail a reschedule-mode
#: sensor on a late executor event for an earlier poke (apache/airflow#71172).
SENSOR_RETRIES = 2
#: The tasks that read the inbox; if one failed, the run fails (see ``registered``).
INBOX_TASKS = ("wait_for_files", "claim")


def lab_asset(lab_name: str) -> Asset:
    """The asset a lab's train DAG emits when it registered at least one version."""
    return Asset(name=f"{lab_name}_registered", uri=f"conveyor://{lab_name}/registered")


def _load(spec_path: str) -> Any:
    from conveyor.lab import load_lab

    return load_lab(spec_path)


def build_lab_dags(lab_spec_path: str | os.PathLike[str]) -> tuple[DAG, DAG]:
    """Build ``(<lab>_train, <lab>_promote)`` for one lab spec file.

    Args:
        lab_spec_path: the lab spec (YAML), validated here; tasks load it again when they
            run (an edit between parse and run is seen by the run).

    Raises:
        SpecError: the lab spec is invalid (file, line, key and the nearest valid key).
    """
    from conveyor.lab.spec import load_lab

    spec_path = str(Path(lab_spec_path).resolve())
    lab = load_lab(spec_path)
    name, schedule = lab.spec.name, lab.spec.schedule
    asset = lab_asset(name)
    tags = ["conveyor", "lab", name]

    common: dict[str, Any] = {
        "start_date": START_DATE, "catchup": False, "max_active_runs": 1, "tags": tags,
        "auto_register": False,  # published by the loader's file only (see factory.build_dag)
    }
    poke = _seconds(POKE_ENV, SENSOR_POKE_SECONDS)

    with DAG(
        dag_id=f"{name}_train",
        description=f"Conveyor lab {name}: train every new config file in the watched folder",
        schedule=schedule or DEFAULT_LAB_SCHEDULE,
        default_args=dict(DEFAULT_TASK_ARGS),
        **common,
    ) as train_dag:

        @task.sensor(poke_interval=poke, timeout=_seconds(TIMEOUT_ENV, SENSOR_TIMEOUT_SECONDS),
                     mode="reschedule", soft_fail=True, retries=SENSOR_RETRIES,
                     retry_delay=timedelta(seconds=poke), retry_exponential_backoff=0)
        def wait_for_files() -> PokeReturnValue:
            """Poke: are there settled, safe files whose content has no outcome yet?"""
            from conveyor.errors import BadInputError
            from conveyor.lab import pending_files

            try:
                names = pending_files(_load(spec_path))
            except BadInputError as exc:
                # A missing inbox or a bad spec: retrying won't help, and a failure raised
                # here would become a skip (soft_fail), hiding it. ``claim`` fails with it.
                return PokeReturnValue(is_done=True, xcom_value={"error": str(exc)})
            return PokeReturnValue(is_done=bool(names), xcom_value={"files": names})

        @task
        def claim(found: Any) -> list[dict[str, Any]]:
            """Claim every new content hash; one small dict per claim (one mapped task each)."""
            from airflow.sdk.exceptions import AirflowFailException

            from conveyor.lab import claim_new

            if isinstance(found, Mapping) and found.get("error"):
                raise AirflowFailException(str(found["error"]))

            batch = claim_new(_load(spec_path))
            return [c.to_dict() for c in batch.claims]

        @task
        def train(claim: dict[str, Any]) -> dict[str, Any]:
            """Train one claimed file; bad input fails this mapped task only, without retry."""
            from airflow.sdk.exceptions import AirflowFailException

            from conveyor.errors import BadInputError
            from conveyor.lab import train_claim

            try:
                result = train_claim(_load(spec_path), claim)
            except BadInputError as exc:
                raise AirflowFailException(str(exc)) from exc
            return {"file": result.file, "sha256": result.sha256, "model": result.model_name,
                    "versions": list(result.versions)}

        @task(outlets=[asset], trigger_rule=TriggerRule.ALL_DONE, retries=0)
        def registered(results: Any, ti: Any = None) -> dict[str, Any]:
            """Emit the asset when at least one version was registered; skip otherwise.

            Fails when the inbox was never read (``wait_for_files`` or ``claim`` failed):
            this task is the DAG's only leaf, so skipping would paint that run green.
            """
            from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

            states = ti.get_task_states(dag_id=ti.dag_id, task_ids=list(INBOX_TASKS),
                                        run_ids=[ti.run_id]).get(ti.run_id, {})
            broken = {t: s for t, s in states.items() if s in ("failed", "upstream_failed")}
            if broken:
                raise AirflowFailException(
                    "the inbox was not read: " + ", ".join(f"{t} {s}" for t, s in
                                                           sorted(broken.items()))
                    + "; nothing was claimed or trained (see those tasks' logs)")
            done = [r for r in (results or []) if isinstance(r, Mapping)]
            versions = [str(v) for r in done for v in r.get("versions", [])]
            if not versions:
                raise AirflowSkipException("no version was registered; no asset event")
            return {"files": [r["file"] for r in done], "versions": versions}

        claims = claim(wait_for_files())
        registered(train.expand(claim=claims))

    with DAG(
        dag_id=f"{name}_promote",
        description=f"Conveyor lab {name}: promote the best registered version to production",
        schedule=[asset],
        default_args=dict(DEFAULT_TASK_ARGS),
        **common,
    ) as promote_dag:

        @task(retries=4)  # backoff as DEFAULT_TASK_ARGS: x2, at most 10 min apart
        def promote() -> dict[str, Any]:
            """Score candidates, gate, move ``production`` (compare-and-set); aborted retries."""
            from conveyor.lab import promote_lab

            decision = promote_lab(_load(spec_path))
            if decision.action == "aborted":
                raise ConveyorRuntimeError(
                    f"promotion of {decision.model} aborted: {decision.reason}; retrying")
            return {"action": decision.action, "reason": decision.reason,
                    "chosen": decision.chosen, "production_before": decision.production_before,
                    "production_after": decision.production_after, "metric": decision.metric,
                    "scores": {c.version: c.scores.get(decision.metric)
                               for c in decision.candidates if c.scores}}

        promote()

    return train_dag, promote_dag
