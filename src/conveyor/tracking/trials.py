"""A search's trials as child MLflow runs of the pipeline's run, logged in one pass.

The search (``conveyor.modeling.search``) never talks to MLflow: it returns trial records,
and the train step hands them here after the search. On MLflow's SQL store (the embedded
SQLite, or a database URI) every trial is written in one transaction; elsewhere (a tracking
server) each trial costs three calls: create the run with its tags, one ``log_batch`` of
params and metrics, end it with its state. Never a round-trip per metric (ADR 0040).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.errors import TrackingError
from conveyor.tracking.tracker import Tracker, flatten, one_line

__all__ = ["PARENT_TAG", "TRIAL_TAG", "log_search"]

log = logging.getLogger(__name__)

#: MLflow's own tag that nests a run under its parent in the UI
PARENT_TAG = "mlflow.parentRunId"
#: the trial number of a child run (a child has no ``conveyor.run_id``: ``attach`` finds
#: pipeline runs by that tag and must never find a trial)
TRIAL_TAG = "conveyor.trial"
_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}


def log_search(tracker: Tracker, record: Mapping[str, Any]) -> list[str]:
    """Log every trial of ``record`` as a child run of the attached run, then the best
    params and the search summary on the parent.

    A repeated attempt of the same train step (a retry, ``--from train``) first deletes the
    children an earlier attempt left, so the parent holds one set of trials.

    Returns:
        The child runs' ids, in trial order.

    Raises:
        TrackingError: MLflow refused a call.
    """
    parent = tracker._need_run()
    _delete_earlier(tracker, parent)
    children = _bulk(tracker, parent, record)
    if children is None:  # not a SQL store (a tracking server): the public API, per trial
        children = [_one(tracker, run) for run in _child_runs(parent, record)]
    _log_parent(tracker, record)
    return children


@dataclass
class _Child:
    """One trial as the run to create: everything known before the first call."""

    name: str
    start: int
    end: int
    status: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: list[tuple[str, float, int]]  # key, value, step (timestamp: ``end``)


def _child_runs(parent: str, record: Mapping[str, Any]) -> list[_Child]:
    metric = record["metric"]
    now = int(time.time() * 1000)
    # trials end one after another: their start times are laid out before now, so MLflow's
    # UI orders and times them as they ran
    start = now - int(sum(t["seconds"] for t in record["trials"]) * 1000)
    children = []
    for trial in record["trials"]:
        end = start + max(1, int(trial["seconds"] * 1000))
        name = f"trial-{trial['number']:03d}-{trial['candidate']}"
        tags = {PARENT_TAG: parent, TRIAL_TAG: str(trial["number"]), "mlflow.runName": name,
                "conveyor.candidate": trial["candidate"], "conveyor.trial.state": trial["state"],
                "conveyor.search.method": record["method"]}
        if trial.get("error"):
            tags["conveyor.error"] = str(trial["error"])[:500]
        metrics = [(f"fold_{metric}", float(v), step)
                   for step, v in enumerate(trial.get("scores") or [])]
        if trial["cv_mean"] is not None:
            metrics += [(f"cv_{metric}_mean", float(trial["cv_mean"]), 0),
                        (f"cv_{metric}_std", float(trial["cv_std"]), 0)]
        metrics.append(("seconds", float(trial["seconds"]), 0))
        children.append(_Child(
            name=name, start=start, end=end, status=_STATUS[trial["state"]], tags=tags,
            params=flatten({"candidate": trial["candidate"], **trial["params"]}),
            metrics=metrics))
        start = end
    return children


def _one(tracker: Tracker, child: _Child) -> str:
    """Three calls: create (with tags), one batch of params and metrics, end."""
    from mlflow.entities import Metric, Param, RunStatus

    client = tracker.client
    try:
        run = client.create_run(tracker.experiment_id, start_time=child.start,
                                tags=child.tags, run_name=child.name)
        run_id = run.info.run_id
        client.log_batch(run_id, params=[Param(k, v) for k, v in child.params.items()],
                         metrics=[Metric(k, v, child.end, step) for k, v, step in child.metrics])
        client.set_terminated(run_id, status=RunStatus.to_string(
            getattr(RunStatus, child.status)), end_time=child.end)
    except Exception as exc:
        raise TrackingError(f"logging {child.name} to MLflow at {tracker.uri} failed: "
                            f"{one_line(exc)}") from exc
    return run_id


def _bulk(tracker: Tracker, parent: str, record: Mapping[str, Any]) -> list[str] | None:
    """Every trial in one transaction of MLflow's own SQL store (the embedded SQLite, or a
    database URI), or ``None`` when the store is not one.

    Through the public API a trial costs eight commits on SQLite (MLflow commits per
    table), 26 ms each on this machine under load: 11 s for 50 trials. The rows written are
    the ones ``create_run``, ``log_batch`` and ``set_terminated`` write (runs, tags, params,
    metrics, latest_metrics), through MLflow's own ORM models (ADR 0040).
    """
    import uuid

    try:
        from mlflow.store.tracking.dbmodels.models import (
            SqlLatestMetric,
            SqlMetric,
            SqlParam,
            SqlRun,
            SqlTag,
        )
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        from mlflow.utils.uri import append_to_uri_path
    except ImportError:  # pragma: no cover - an MLflow without the SQL store
        return None
    client = tracker.client
    store = getattr(getattr(client, "_client", client), "_tracking_client", None)
    store = getattr(store, "store", None)  # the public client exposes no batch of runs
    if not isinstance(store, SqlAlchemyStore):
        return None
    experiment_id = tracker.experiment_id
    children = _child_runs(parent, record)
    ids = [uuid.uuid4().hex for _ in children]
    try:
        location = store.get_experiment(experiment_id).artifact_location
        with store.ManagedSessionMaker(read_only=False) as session:
            for run_id, child in zip(ids, children, strict=True):
                run = SqlRun(
                    name=child.name, run_uuid=run_id, experiment_id=int(experiment_id),
                    artifact_uri=append_to_uri_path(location, run_id,
                                                    SqlAlchemyStore.ARTIFACTS_FOLDER_NAME),
                    source_type="UNKNOWN", source_name="", entry_point_name="",
                    user_id="unknown", status=child.status, start_time=child.start,
                    end_time=child.end, deleted_time=None, source_version="",
                    lifecycle_stage="active")
                run.tags = [SqlTag(key=k, value=v) for k, v in child.tags.items()]
                session.add(run)
                session.add_all([SqlParam(key=k, value=v, run_uuid=run_id)
                                 for k, v in child.params.items()])
                latest: dict[str, tuple[int, float]] = {}
                for key, value, step in child.metrics:
                    session.add(SqlMetric(key=key, value=value, timestamp=child.end, step=step,
                                          is_nan=False, run_uuid=run_id))
                    if key not in latest or step >= latest[key][0]:
                        latest[key] = (step, value)
                session.add_all([SqlLatestMetric(key=k, value=v, timestamp=child.end, step=st,
                                                 is_nan=False, run_uuid=run_id)
                                 for k, (st, v) in latest.items()])
    except Exception as exc:
        raise TrackingError(f"logging {len(children)} trials to MLflow at {tracker.uri} "
                            f"failed: {one_line(exc)}") from exc
    return ids


def _delete_earlier(tracker: Tracker, parent: str) -> None:
    client = tracker.client
    try:
        earlier = client.search_runs(
            [tracker.experiment_id], max_results=5000,
            filter_string=f"tags.`{PARENT_TAG}` = '{parent}'")
        for run in earlier:
            if TRIAL_TAG in run.data.tags:
                client.delete_run(run.info.run_id)
    except Exception as exc:
        raise TrackingError(f"reading earlier trials at MLflow {tracker.uri} failed: "
                            f"{one_line(exc)}") from exc
    if earlier:
        log.info("deleted %d trial runs of an earlier attempt of run %s", len(earlier), parent)


def _log_parent(tracker: Tracker, record: Mapping[str, Any]) -> None:
    """Best params as params (``best.<param>``), the summary as tags; the comparison table
    and scores travel as the train step's metrics and ``train/search.json``."""
    best = record["best"]
    tracker.log_params(flatten({"best": {"candidate": best["candidate"], **best["params"]}}))
    states = [t["state"] for t in record["trials"]]
    tracker.set_tags({
        "conveyor.search.method": record["method"],
        "conveyor.search.best_candidate": best["candidate"],
        "conveyor.search.best_params": json.dumps(best["params"], sort_keys=True,
                                                  default=str)[:5000],
        "conveyor.search.stopped_by": record["stopped_by"],
        "conveyor.search.trials": _count(states),
    })


def _count(states: Sequence[str]) -> str:
    return ", ".join(f"{states.count(s)} {s}" for s in ("complete", "pruned", "failed")
                     if states.count(s))
