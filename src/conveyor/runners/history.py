"""Past runs, read from the Store: a run is complete only if it has a manifest.

An incomplete run says why: ``partial`` (stopped as asked by ``--until``/``--step``),
``failed`` (with the error), ``interrupted`` (Ctrl-C, or its process is gone), or ``running``.
The Store holds the run's records; the reason comes from the MLflow run that ``_run.json``
names (its status and ``conveyor.*`` tags), read only for runs without a manifest.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from datetime import UTC, datetime
from typing import Any

from conveyor.errors import SpecError, StoreError
from conveyor.processes import pid_running
from conveyor.steps import STEP_NAMES
from conveyor.store import Store

__all__ = ["created_at", "describe_run", "find_run", "list_runs", "read_json"]

log = logging.getLogger(__name__)
_OLDEST = datetime.min.replace(tzinfo=UTC)


def read_json(store: Store, uri: str) -> Any:
    """The JSON at ``uri``, or ``None`` when it is missing or unreadable."""
    try:
        return store.get_json(uri)
    except StoreError:
        return None


def _run_ids(store: Store, pipeline: str) -> list[str]:
    try:
        return [n for n in store.list(store.uri(pipeline)) if not n.startswith(("_", "."))]
    except StoreError:
        return []


def created_at(meta: Any, manifest: Any) -> datetime | None:
    """When a run was created: ``_run.json``'s ``created_at``, else the manifest's end.

    Reads every stamp Conveyor has written: to the second (older runs) and to the
    microsecond (:func:`conveyor.ids.now_iso`), with or without a zone (UTC assumed).
    """
    return (_stamp(meta.get("created_at") if isinstance(meta, dict) else None)
            or _stamp(manifest.get("finished_at") if isinstance(manifest, dict) else None))


def _stamp(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _records(store: Store, uri: str) -> dict[str, dict[str, Any]]:
    """The step records of a run folder, in pipeline order."""
    try:
        present = set(store.list(uri))
    except StoreError:
        return {}
    out = {}
    plugins = sorted(n for n in present - set(STEP_NAMES) if not n.startswith("_") and "." not in n)
    for step in [*STEP_NAMES, *plugins]:  # the built-in steps in order, then plug-in ones
        if step in present:
            record = read_json(store, f"{uri}/{step}/_record.json")
            if isinstance(record, dict):
                out[step] = record
    return out


@functools.lru_cache(maxsize=8)
def _client(uri: str) -> Any:
    """One MLflow client per tracking URI for a whole listing."""
    from conveyor.tracking import Tracker

    return Tracker(uri, "conveyor").client


def _tracked(meta: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """(MLflow status, tags) of a run's MLflow run, or ``None`` when it cannot be read."""
    run_id, uri = meta.get("mlflow_run_id"), meta.get("tracking_uri")
    if not run_id or not uri:
        return None
    if str(uri).startswith("sqlite:///") and not os.path.exists(str(uri)[len("sqlite:///"):]):
        return None  # never create a database only to look into it
    try:
        found = _client(str(uri)).get_run(str(run_id))
    except Exception:  # a listing must not fail on one unreadable run
        log.debug("cannot read MLflow run %s at %s", run_id, uri, exc_info=True)
        return None
    return str(found.info.status), dict(found.data.tags)


def _state(meta: dict[str, Any] | None, manifest: dict[str, Any] | None,
           records: dict[str, dict[str, Any]], note: dict[str, Any] | None = None
           ) -> tuple[str, str]:
    """(status, why) of a run: the manifest's status, or why it is incomplete.

    ``note`` is the local runner's ``_status.json``; runs without one (Airflow's, older
    ones) are explained by their MLflow run.
    """
    note = note if isinstance(note, dict) else None
    if manifest:
        status = str(manifest.get("status", "ok"))
        reason = ""
        if status == "rejected":
            gate = manifest.get("steps", {}).get("gate", {}).get("info", {})
            reason = str(gate.get("reason", ""))
        return status, reason
    last = next(reversed(records), None)
    after = f"after {last}" if last else "before any step"
    if note and note.get("status") == "running":
        pid = note.get("pid")
        if (isinstance(pid, int) and note.get("host") == socket.gethostname()
                and not pid_running(pid)):
            return "interrupted", f"its process {pid} is gone; stopped {after}"
        return "running", f"running {after}"
    if note and note.get("status") in ("partial", "failed", "interrupted"):
        return str(note["status"]), str(note.get("reason") or after)
    tracked = _tracked(meta) if meta else None
    if tracked is None:
        return "incomplete", f"stopped {after} (no MLflow run to ask why)"
    status, tags = tracked
    label = tags.get("conveyor.status")
    if label == "partial":
        return "partial", f"stopped as asked {after}"
    if label == "interrupted" or status == "KILLED":
        return "interrupted", f"interrupted {after}"
    if label == "failed" or status == "FAILED":
        error = tags.get("conveyor.error", "").strip().splitlines()
        return "failed", (error[0][:200] if error else f"failed {after}")
    if status == "RUNNING":
        return "running", f"running {after}"
    return "incomplete", f"stopped {after} (MLflow run {status.lower()})"


def _summary(store: Store, pipeline: str, run_id: str, *, detail: bool) -> dict[str, Any]:
    uri = store.uri(pipeline, run_id)
    meta = read_json(store, f"{uri}/_run.json")
    meta = meta if isinstance(meta, dict) else None
    manifest = read_json(store, f"{uri}/manifest.json")
    manifest = manifest if isinstance(manifest, dict) else None
    records = _records(store, uri) if detail else {}
    created = created_at(meta, manifest)
    note = read_json(store, f"{uri}/_status.json") if detail and not manifest else None
    status, reason = _state(meta, manifest, records, note) if detail else ("", "")
    metrics = (manifest or {}).get("metrics") or {
        k: v for r in records.values() for k, v in (r.get("metrics") or {}).items()}
    return {"pipeline": pipeline, "run_id": run_id, "uri": uri,
            "created_at": created.isoformat() if created else None,
            "status": status, "reason": reason, "metrics": metrics,
            "_meta": meta, "_manifest": manifest, "_records": records}


def list_runs(store: Store, pipelines: list[str] | None = None, *, limit: int = 20
              ) -> list[dict[str, Any]]:
    """Newest first by creation time: pipeline, run id, created_at, status, why, metrics, URI.

    ``status`` is the manifest's (``ok``, ``rejected``) or, without one, ``partial``,
    ``failed``, ``interrupted``, ``running`` or ``incomplete``; ``reason`` says why.
    """
    names = pipelines if pipelines is not None else [
        n for n in store.list(store.root) if not n.startswith((".", "_"))]
    found = [_summary(store, pipeline, run_id, detail=False)
             for pipeline in names for run_id in _run_ids(store, pipeline)]
    found.sort(key=lambda r: (_stamp(r["created_at"]) or _OLDEST, r["run_id"]), reverse=True)
    out = []
    for run in found[:limit]:
        records = _records(store, run["uri"]) if run["_manifest"] is None else {}
        note = read_json(store, f"{run['uri']}/_status.json") if run["_manifest"] is None \
            else None
        run["status"], run["reason"] = _state(run["_meta"], run["_manifest"], records, note)
        if run["_manifest"] is None:
            run["metrics"] = {k: v for r in records.values()
                              for k, v in (r.get("metrics") or {}).items()}
        out.append({k: v for k, v in run.items() if not k.startswith("_")})
    return out


def find_run(store: Store, run_id: str, pipelines: list[str] | None = None) -> str:
    """The pipeline that holds ``run_id`` under ``store``.

    Raises:
        SpecError: no pipeline, or more than one, has a run of that id.
    """
    names = pipelines if pipelines is not None else [
        n for n in store.list(store.root) if not n.startswith((".", "_"))]
    holders = [p for p in names if store.exists(store.uri(p, run_id, "_run.json"))
               or store.exists(store.uri(p, run_id, "manifest.json"))]
    if not holders:
        where = f"pipeline {names[0]}" if pipelines and len(names) == 1 else "any pipeline"
        raise SpecError(f"no run {run_id} of {where} under {store.root}; `conveyor runs` "
                        "lists them")
    if len(holders) > 1:
        raise SpecError(f"run {run_id} exists in pipelines {', '.join(holders)}; name the "
                        "spec too: conveyor show RUN SPEC")
    return holders[0]


def describe_run(store: Store, pipeline: str, run_id: str) -> dict[str, Any]:
    """Everything about one run: status and why, steps, metrics, report, model, export."""
    run = _summary(store, pipeline, run_id, detail=True)
    meta, manifest, records = run.pop("_meta") or {}, run.pop("_manifest"), run.pop("_records")
    steps = [{"step": name, "status": r.get("status"), "duration": r.get("duration"),
              "cached_from": r.get("cached_from"), "finished_at": r.get("finished_at"),
              "metrics": r.get("metrics") or {}, "info": r.get("info") or {}}
             for name, r in records.items()]  # a list: pipeline order survives JSON
    # the gate renders the report (ADR 0041); runs from before it have evaluate's
    report = next((ref.get("uri") for step in ("gate", "evaluate")
                   for name, r in records.items() if name == step
                   for artifact, ref in (r.get("outputs") or {}).items()
                   if artifact == "report"), None)
    registered = (records.get("register") or {}).get("info") or {}
    exported = (records.get("export") or {}).get("info") or {}
    return {
        **run,
        "spec_hash": meta.get("spec_hash") or (manifest or {}).get("spec_hash"),
        "overrides": meta.get("overrides", []), "profile": meta.get("profile"),
        "mlflow_run_id": meta.get("mlflow_run_id") or (manifest or {}).get("mlflow_run_id"),
        "tracking_uri": meta.get("tracking_uri") or (manifest or {}).get("tracking_uri"),
        "manifest": f"{run['uri']}/manifest.json" if manifest else None,
        "finished_at": (manifest or {}).get("finished_at"),
        "steps": steps, "report": report,
        "model": ({k: registered[k] for k in ("name", "version", "model_uri", "created")
                   if k in registered} or None),
        "export": ({k: exported[k] for k in ("uri", "model", "metrics") if k in exported}
                   or None),
    }
