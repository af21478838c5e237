"""Garbage collection of a pipeline's run folders in the Store, following cache references.

A cache hit does not copy: the new run's records point at the earlier run's artifacts (ADR
0004). So an old run folder may only go when no kept run refers to it. The plan:

1. keep the newest ``keep`` runs (by ``_run.json``'s ``created_at``) and every run younger
   than ``min_age`` (it may still be running or be resumed);
2. keep every run whose artifacts a kept run's step records refer to, to closure;
3. delete the rest: first the cache-index entries computed by those runs (so no new run takes
   a hit on them), then the run folders.

Exports and MLflow (runs, logged and registered models) are not touched: an export is a
self-contained copy, and MLflow has its own ``mlflow gc``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from conveyor.errors import BadInputError, StoreError
from conveyor.runners.history import created_at, read_json
from conveyor.store import Store

__all__ = ["GcPlan", "RunEntry", "collect", "plan_gc"]

log = logging.getLogger(__name__)


@dataclass
class RunEntry:
    """One run folder and what the plan does with it."""

    run_id: str
    uri: str
    created_at: datetime | None
    status: str  # ok, rejected, failed... (the manifest's), or incomplete
    references: set[str] = field(default_factory=set)  # run ids whose artifacts it uses
    action: str = "delete"  # or keep
    reason: str = ""
    size: int | None = None


@dataclass
class GcPlan:
    """What ``collect`` deletes (runs in ``delete``) and keeps, with the reason for each."""

    pipeline: str
    runs: list[RunEntry]
    cache_entries: list[str]  # cache-index files computed by deleted runs

    @property
    def delete(self) -> list[RunEntry]:
        return [r for r in self.runs if r.action == "delete"]

    @property
    def keep(self) -> list[RunEntry]:
        return [r for r in self.runs if r.action == "keep"]


def _references(store: Store, pipeline_uri: str, run: RunEntry, known: set[str]) -> set[str]:
    """Run ids (other than ``run``'s own) whose folders ``run``'s step records point into."""
    found: set[str] = set()
    prefix = pipeline_uri.rstrip("/") + "/"
    for step in store.list(run.uri):
        if step.startswith((".", "_")) or step == "manifest.json":
            continue
        record = read_json(store, f"{run.uri}/{step}/_record.json")
        if not isinstance(record, dict):
            continue
        for ref in (record.get("outputs") or {}).values():
            uri = str(ref.get("uri", "")) if isinstance(ref, dict) else ""
            if uri.startswith(prefix):
                owner = uri[len(prefix):].split("/", 1)[0]
                if owner != run.run_id and owner in known:
                    found.add(owner)
        cached_from = record.get("cached_from")
        if isinstance(cached_from, str) and cached_from != run.run_id and cached_from in known:
            found.add(cached_from)
    return found


def plan_gc(store: Store, pipeline: str, *, keep: int = 10,
            min_age: timedelta = timedelta(hours=24), now: datetime | None = None,
            sizes: bool = True) -> GcPlan:
    """Decide, without deleting anything, which run folders of ``pipeline`` can go.

    Args:
        keep: how many of the newest runs to keep whatever their status (at least 1).
        min_age: runs created more recently than this are kept (running, or resumable).
        sizes: measure each run folder (one listing per run; off for a quick plan).
    """
    if keep < 1:
        raise BadInputError("keep must be at least 1: the newest run is never collected")
    now = now or datetime.now(UTC)
    pipeline_uri = store.uri(pipeline)
    runs = []
    for name in store.list(pipeline_uri):
        if name.startswith((".", "_")):
            continue
        uri = store.uri(pipeline, name)
        manifest = read_json(store, f"{uri}/manifest.json")
        status = str(manifest.get("status", "ok")) if isinstance(manifest, dict) \
            else "incomplete"
        created = created_at(read_json(store, f"{uri}/_run.json"), manifest)
        runs.append(RunEntry(run_id=name, uri=uri, created_at=created, status=status))
    oldest = datetime.min.replace(tzinfo=UTC)
    runs.sort(key=lambda r: (r.created_at or oldest, r.run_id), reverse=True)
    known = {r.run_id for r in runs}
    by_id = {r.run_id: r for r in runs}
    for index, run in enumerate(runs):
        if index < keep:
            run.action, run.reason = "keep", f"among the newest {keep}"
        elif run.created_at is None:
            run.action, run.reason = "keep", "no creation time recorded"
        elif now - run.created_at < min_age:
            run.action, run.reason = "keep", f"younger than {min_age}"
    for run in runs:
        run.references = _references(store, pipeline_uri, run, known)
    pending = [r for r in runs if r.action == "keep"]
    while pending:
        run = pending.pop()
        for owner in sorted(run.references):
            target = by_id[owner]
            if target.action == "delete":
                target.action, target.reason = "keep", f"its artifacts are used by {run.run_id}"
                pending.append(target)
    for run in runs:
        if run.action == "delete" and not run.reason:
            run.reason = "older than the newest runs, used by no kept run"
    if sizes:
        for run in runs:
            try:
                run.size = store.size(run.uri)
            except StoreError:  # a size is a nicety; the plan stands without it
                run.size = None
    deleted = {r.run_id for r in runs if r.action == "delete"}
    cache_entries = []
    cache_uri = store.uri(pipeline, "_cache")
    for step in store.list(cache_uri):
        if step == "checked":
            continue
        for entry in store.list(f"{cache_uri}/{step}"):
            data = read_json(store, f"{cache_uri}/{step}/{entry}")
            if isinstance(data, dict) and data.get("cached_from") in deleted:
                cache_entries.append(f"{cache_uri}/{step}/{entry}")
    return GcPlan(pipeline=pipeline, runs=runs, cache_entries=cache_entries)


def collect(store: Store, plan: GcPlan) -> int:
    """Carry out ``plan``: cache entries first, then run folders. Returns runs deleted."""
    for uri in plan.cache_entries:
        store.delete(uri)
    for run in plan.delete:
        log.info("gc: deleting run %s (%s)", run.run_id, run.reason)
        store.delete(run.uri)
    return len(plan.delete)
