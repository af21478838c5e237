"""The local runner: every step in-process, in order, with caching, partial runs and resume."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from conveyor.errors import SpecError
from conveyor.runners.executor import (
    Run,
    StepRecord,
    execute_step,
    fail_run,
    finish_run,
    open_run,
    store_for,
)
from conveyor.spec import LoadedSpec
from conveyor.steps import default_step_names, pipeline_steps
from conveyor.store import ArtifactRef, check_key

__all__ = ["LocalRunner", "RunSummary", "plan_steps"]

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a local run did."""

    run_id: str
    records: dict[str, StepRecord] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    manifest_ref: ArtifactRef | None = None
    mlflow_run_id: str | None = None

    @property
    def complete(self) -> bool:
        return self.manifest is not None

    @property
    def status(self) -> str:
        return self.manifest["status"] if self.manifest else "partial"


def plan_steps(
    *, start: str | None = None, until: str | None = None, only: str | None = None,
    steps: Sequence[str] | None = None,
) -> tuple[list[str], set[str]]:
    """The steps to execute and the ones to force (re-run even when cached).

    ``only`` runs one step (forced); ``start`` forces that step and all after it; ``until``
    stops after that step. ``steps`` is the pipeline, in order (default: the built-in one).
    """
    pipeline = tuple(steps) if steps is not None else default_step_names()
    for flag, value in (("--from", start), ("--until", until), ("--step", only)):
        if value is not None and value not in pipeline:
            raise SpecError(f"{flag} {value!r} is not a step; steps are {', '.join(pipeline)}")
    names = list(pipeline)
    if only is not None:
        return [only], {only}
    end = names.index(until) + 1 if until else len(names)
    begin = names.index(start) if start else 0
    if begin >= end:
        raise SpecError(f"--from {start} comes after --until {until}")
    return names[:end], set(names[begin:end]) if start else set()


class LocalRunner:
    """Runs a pipeline in this process.

    Args:
        loaded: the validated spec.
        use_cache: reuse results of earlier runs with identical inputs and config.
        on_event: called with ``("start", step, None)`` and ``("end", step, record)``.
    """

    def __init__(
        self,
        loaded: LoadedSpec,
        *,
        use_cache: bool = True,
        on_event: Callable[[str, str, StepRecord | None], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.use_cache = use_cache
        self.on_event = on_event or (lambda kind, step, record: None)

    def run(
        self, run_id: str | None = None, *, start: str | None = None, until: str | None = None,
        only: str | None = None,
    ) -> RunSummary:
        """Run the planned steps; write the manifest when the last step has run.

        Raises:
            SpecError: bad flags, or ``--from``/``--step`` naming a run that does not exist or
                lacks an earlier step (checked before anything is created or reopened).
        """
        pipeline = [step.name for step in pipeline_steps(self.loaded)]
        names, forced = plan_steps(start=start, until=until, only=only, steps=pipeline)
        if (start or only) and run_id is None:
            flag = "--from" if start else "--step"
            raise SpecError(f"{flag} needs --run-id: the run whose earlier steps to reuse")
        if run_id is not None and (start or only):
            self._check_resumable(check_key(run_id, "run id"), names[0] if only else start,
                                  pipeline)
        run = open_run(self.loaded, run_id)
        summary = RunSummary(run_id=run.run_id, mlflow_run_id=run.tracker.run_id)
        try:
            # `conveyor runs` tells a live run from one whose process died by this pid.
            _set_status(run, "running", pid=os.getpid(), host=socket.gethostname())
            for name in names:
                if name in forced or not (start or only):
                    self.on_event("start", name, None)
                    record = execute_step(run, name, use_cache=self.use_cache,
                                          force=name in forced)
                    summary.records[name] = record
                    self.on_event("end", name, record)
            if names[-1] == pipeline[-1] or all(n in run.records() for n in pipeline):
                # the manifest is the last write of a run (and outranks `_status.json`)
                summary.manifest_ref, summary.manifest = finish_run(run)
            else:
                fail_run(run, RuntimeError("partial run"), partial=True)
                last = list(summary.records)[-1] if summary.records else None
                _set_status(run, "partial", reason=f"stopped as asked after {last}")
        except KeyboardInterrupt as exc:
            fail_run(run, exc)
            _mark_interrupted(run)
            _set_status(run, "interrupted", reason="interrupted (Ctrl-C)")
            raise
        except BaseException as exc:
            fail_run(run, exc)
            _set_status(run, "failed", reason=f"{type(exc).__name__}: {exc}"[:300])
            raise
        return summary

    def _check_resumable(self, run_id: str, first: str, steps: list[str]) -> None:
        """The run exists and holds every step before ``first``; nothing is touched."""
        store = store_for(self.loaded)
        pipeline = self.loaded.spec.name
        if not store.exists(store.uri(pipeline, run_id, "_run.json")):
            raise SpecError(f"no run {run_id} of pipeline {pipeline} under {store.root}; "
                            f"`conveyor runs {self.loaded.path}` lists them")
        for name in steps[: steps.index(first)]:
            if not store.exists(store.uri(pipeline, run_id, name, "_record.json")):
                raise SpecError(f"run {run_id} has no result of step {name}; run the "
                                f"pipeline without --from/--step, or --until {name} first")


def _set_status(run: Run, status: str, **facts: Any) -> None:
    """Write ``{run}/_status.json``: how the local run stands, read by ``conveyor runs``.

    ``running`` carries the pid and host; ``partial``, ``failed``, ``interrupted`` a reason.
    The manifest stays the only proof of a complete run; this says why one is incomplete.
    """
    try:
        run.store.put_json(f"{run.uri}/_status.json", {
            "status": status, "at": datetime.now(UTC).isoformat(timespec="seconds"), **facts})
    except Exception:  # the run's own outcome matters more than its status note
        log.warning("could not write the status of run %s", run.run_id, exc_info=True)


def _mark_interrupted(run: Run) -> None:
    """Ctrl-C: the MLflow run is KILLED with status ``interrupted``, not a failure of its own."""
    try:
        run.tracker.set_tags({"conveyor.status": "interrupted"})
        run.tracker.end("KILLED")
    except Exception:  # the interrupt itself is what the user must see
        log.warning("could not mark MLflow run of %s interrupted", run.run_id, exc_info=True)
