"""A search's trials as child MLflow runs of the pipeline's run, logged in one pass.

The search (``conveyor.modeling.search``) never talks to MLflow: it returns trial records,
and the train step hands them here after the search. Each trial costs three calls (create
the run with its tags and start time, one ``log_batch`` of params, metrics and tags, end it
with its state), never a round-trip per metric (ADR 0040).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
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
    from mlflow.entities import Metric, Param, RunStatus, RunTag

    parent = tracker._need_run()
    client = tracker.client
    metric = record["metric"]
    _delete_earlier(tracker, parent)
    now = int(time.time() * 1000)
    children: list[str] = []
    # trials end one after another: their start times are laid out from the search's start,
    # so MLflow's UI orders and times them as they ran
    start = now - int(sum(t["seconds"] for t in record["trials"]) * 1000)
    for trial in record["trials"]:
        end = start + max(1, int(trial["seconds"] * 1000))
        tags = {PARENT_TAG: parent, TRIAL_TAG: str(trial["number"]),
                "conveyor.candidate": trial["candidate"], "conveyor.trial.state": trial["state"],
                "mlflow.runName": f"trial-{trial['number']:03d}-{trial['candidate']}"}
        if trial.get("error"):
            tags["conveyor.error"] = str(trial["error"])[:500]
        try:
            run = client.create_run(tracker.experiment_id, start_time=start,
                                    tags=tags, run_name=tags["mlflow.runName"])
            run_id = run.info.run_id
            params = [Param(k, v) for k, v in flatten(
                {"candidate": trial["candidate"], **trial["params"]}).items()]
            metrics = [Metric(f"fold_{metric}", float(v), end, step)
                       for step, v in enumerate(trial.get("scores") or [])]
            if trial["cv_mean"] is not None:
                metrics += [Metric(f"cv_{metric}_mean", float(trial["cv_mean"]), end, 0),
                            Metric(f"cv_{metric}_std", float(trial["cv_std"]), end, 0)]
            metrics.append(Metric("seconds", float(trial["seconds"]), end, 0))
            client.log_batch(run_id, metrics=metrics, params=params,
                             tags=[RunTag("conveyor.search.method", record["method"])])
            client.set_terminated(run_id, status=RunStatus.to_string(
                getattr(RunStatus, _STATUS[trial["state"]])), end_time=end)
        except Exception as exc:
            raise TrackingError(f"logging trial {trial['number']} to MLflow at {tracker.uri} "
                                f"failed: {one_line(exc)}") from exc
        children.append(run_id)
        start = end
    _log_parent(tracker, record)
    return children


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
