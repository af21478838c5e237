"""Run one step of one run: the mechanism every runner shares (local, Airflow).

A run is a folder in the Store, ``{root}/{pipeline}/{run_id}/``, holding ``_run.json`` (the
resolved spec and its hash), one ``{step}/_record.json`` per finished step (its outputs with
hashes, metrics, facts), and ``manifest.json``, written last. A run without a manifest is
incomplete by definition.

Caching: a step's cache key is the hash of its code version, its slice of the spec and its
inputs' hashes. A finished step's record is indexed under ``{root}/{pipeline}/_cache/``; a
later run with the same key reuses the record (its artifacts stay where they are).
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import time
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from typing import Any

from conveyor.errors import (
    BadInputError,
    ConveyorError,
    ConveyorRuntimeError,
    SpecError,
    StoreError,
)
from conveyor.ids import new_id, now_iso
from conveyor.processes import release_memory
from conveyor.spec import LoadedSpec, short_repr
from conveyor.spec.loader import MISSING, resolve_locations, spec_changes
from conveyor.steps import BaseStep, StepContext, StepResult, check_spec, pipeline_steps
from conveyor.store import ArtifactRef, Store, check_key, store_root
from conveyor.tracking import Tracker, flatten

__all__ = [
    "Run",
    "StepRecord",
    "check_same_spec",
    "conveyor_version",
    "execute_step",
    "fail_run",
    "finish_run",
    "new_run_id",
    "open_run",
    "store_for",
]

log = logging.getLogger(__name__)
_LOGGED_SUFFIXES = (".json", ".html", ".png")
_MAX_LOGGED_BYTES = 5 * 1024 * 1024


def conveyor_version() -> str:
    try:
        return package_version("conveyor-ml")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "0+unknown"


#: the packages whose installed versions decide whether a spec's estimators and parameters
#: pass ``check_spec`` (the allow-list's modules, and Conveyor itself)
_CHECK_PACKAGES = ("conveyor-ml", "scikit-learn", "xgboost", "lightgbm")


def checked_versions() -> dict[str, str | None]:
    """The installed versions :data:`_CHECK_PACKAGES` (``None``: not installed), read from
    package metadata without importing them (about 2 ms)."""
    from importlib.metadata import PackageNotFoundError

    found: dict[str, str | None] = {}
    for name in _CHECK_PACKAGES:
        try:
            found[name] = package_version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def new_run_id() -> str:
    """A sortable, unique run id: ``20261123T101500123456-3f9a1c`` (:func:`conveyor.ids.new_id`)."""
    return new_id()


@dataclass
class StepRecord:
    """What a finished step left: written to ``{step}/_record.json`` after its outputs."""

    step: str
    status: str
    cache_key: str
    outputs: dict[str, ArtifactRef] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    finished_at: str = ""
    cached_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step, "status": self.status, "cache_key": self.cache_key,
            "outputs": {k: v.to_dict() for k, v in self.outputs.items()},
            "metrics": self.metrics, "info": self.info, "duration": round(self.duration, 4),
            "finished_at": self.finished_at, "cached_from": self.cached_from,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepRecord:
        return cls(
            step=data["step"], status=data["status"], cache_key=data["cache_key"],
            outputs={k: ArtifactRef.from_dict(v) for k, v in data.get("outputs", {}).items()},
            metrics=data.get("metrics", {}), info=data.get("info", {}),
            duration=float(data.get("duration", 0.0)), finished_at=data.get("finished_at", ""),
            cached_from=data.get("cached_from"),
        )


def store_for(loaded: LoadedSpec) -> Store:
    """The artifact store of a spec: ``store.root``, or ``CONVEYOR_HOME/artifacts``."""
    spec = loaded.spec.store
    return Store(store_root(spec.root, loaded.base_dir), spec.storage_options)


@dataclass
class Run:
    """One pipeline run: its spec, id, store and tracker."""

    loaded: LoadedSpec
    run_id: str
    store: Store
    tracker: Tracker
    steps: dict[str, BaseStep]

    @property
    def pipeline(self) -> str:
        return self.loaded.spec.name

    def context(self, step: str) -> StepContext:
        """A context for ``step``'s hooks (publish, withdraw): the run, without inputs."""
        return StepContext(loaded=self.loaded, run_id=self.run_id, store=self.store,
                           tracker=self.tracker, inputs={}, upstream={}, step=step)

    @property
    def uri(self) -> str:
        return self.store.uri(self.pipeline, self.run_id)

    def record_uri(self, step: str) -> str:
        return self.store.uri(self.pipeline, self.run_id, step, "_record.json")

    def read_record(self, step: str) -> StepRecord | None:
        uri = self.record_uri(step)
        if not self.store.exists(uri):
            return None
        return StepRecord.from_dict(self.store.get_json(uri))

    def records(self) -> dict[str, StepRecord]:
        found = {name: self.read_record(name) for name in self.steps}
        return {name: record for name, record in found.items() if record is not None}


def _git_sha(folder: Any) -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True,
                              text=True, timeout=3, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def open_run(
    loaded: LoadedSpec, run_id: str | None = None, *, tags: dict[str, str] | None = None
) -> Run:
    """Create a run, or attach to an existing one with the same spec (any process may call it).

    Raises:
        SpecError: the spec fails a semantic check, or the run exists with another spec.
        BadInputError: ``run_id`` is not a safe name.
    """
    spec = loaded.spec
    try:
        run_id = check_key(run_id or new_run_id(), "run id")
    except StoreError:  # only a run id given by the user can fail: bad input, not a fault
        raise BadInputError(
            f"--run-id {short_repr(run_id)} is not a run id: use 1-128 letters, digits, '.', "
            "'_' or '-', starting with a letter, digit or '_', with no '..'") from None
    store = store_for(loaded)
    # The semantic check imports scikit-learn (~1 s); a spec that passed it once is remembered,
    # with the versions its verdict depends on (ADR 0011, ADR 0049).
    versions = checked_versions()
    key = hashlib.sha256(json.dumps([loaded.spec_hash, versions], sort_keys=True).encode())
    checked = store.uri(spec.name, "_cache", "checked", f"{key.hexdigest()[:40]}.json")
    if not store.exists(checked):
        check_spec(loaded, data=False)  # the data is checked by ingest, on every run
        store.put_json(checked, {"spec_hash": loaded.spec_hash,
                                 "conveyor_version": conveyor_version(), "versions": versions})
    steps = {s.name: s for s in pipeline_steps(loaded)}  # SpecError before anything is made
    tracker = Tracker(spec.tracking.uri, spec.tracking.experiment or spec.name)
    run = Run(loaded=loaded, run_id=run_id, store=store, tracker=tracker, steps=steps)
    meta_uri = store.uri(spec.name, run_id, "_run.json")
    created = not store.exists(meta_uri)
    if not created:
        meta = store.get_json(meta_uri)
        if meta.get("spec_hash") != loaded.spec_hash:
            check_same_spec(loaded, run_id, meta)
    run_tags = {
        "conveyor.pipeline": spec.name,
        "conveyor.spec_hash": loaded.spec_hash,
        "conveyor.version": conveyor_version(),
        "conveyor.spec_path": str(loaded.path),
        **({"conveyor.git_sha": sha} if (sha := _git_sha(loaded.base_dir)) else {}),
        **({"conveyor.profile": loaded.profile} if loaded.profile else {}),
        **(tags or {}),
    }
    mlflow_run_id = tracker.attach(run_id, tags=run_tags)
    if created:
        store.put_json(meta_uri, {
            "pipeline": spec.name, "run_id": run_id, "spec_hash": loaded.spec_hash,
            "spec": loaded.identity, "overrides": list(loaded.overrides),
            "profile": loaded.profile,
            "created_at": now_iso(),
            "conveyor_version": conveyor_version(), "mlflow_run_id": mlflow_run_id,
            "tracking_uri": tracker.uri,
        })
        tracker.log_params(flatten(spec.dump()))
        tracker.log_text(json.dumps(spec.dump(), indent=2), "spec.json")
    return run


def check_same_spec(loaded: LoadedSpec, run_id: str, meta: dict[str, Any]) -> None:
    """Refuse to attach to a run started with another spec, naming every key that differs.

    ``meta`` is the run's ``_run.json``. A run whose stored spec resolves to the same
    identity is accepted: it was hashed by a Conveyor that counted how paths were spelled
    (ADR 0023).

    Raises:
        SpecError: the resolved specs differ; the message lists ``key: old → new``.
    """
    stored = meta.get("spec")
    changes = (spec_changes(resolve_locations(stored, loaded.base_dir), loaded.identity)
               if isinstance(stored, dict) else None)
    if changes == []:
        return
    if changes:
        shown = "; ".join(f"{key}: {_shown(old)} → {_shown(new)}" for key, old, new in changes[:8])
        if len(changes) > 8:
            shown += f"; and {len(changes) - 8} more"
    else:
        shown = f"hash {str(meta.get('spec_hash', ''))[:12]}, now {loaded.spec_hash[:12]}"
    before = [*(meta.get("overrides") or [])]
    how = " ".join([*before, *([f"--profile {meta['profile']}"] if meta.get("profile") else [])])
    raise SpecError(
        f"run {run_id} was started with another spec ({shown}); it was started with "
        f"{how or 'no overrides and no profile'}: resume with the same, or drop --run-id "
        "to start a new run",
        file=str(loaded.path),
    )


def _shown(value: Any) -> str:
    if value is MISSING:
        return "(absent)"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _cache_key(step: BaseStep, config: dict[str, Any], inputs: dict[str, ArtifactRef]) -> str:
    material = {
        "step": step.name, "code": step.code_version,
        "config": config, "inputs": {k: v.sha256 for k, v in sorted(inputs.items())},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _outputs_exist(store: Store, record: StepRecord) -> bool:
    return all(store.exists(ref.uri) for ref in record.outputs.values())


def execute_step(run: Run, name: str, *, use_cache: bool = True, force: bool = False) -> StepRecord:
    """Run step ``name`` of ``run`` (or reuse an identical earlier result) and record it.

    Args:
        run: the run, from :func:`open_run`.
        name: the step.
        use_cache: reuse a result of another run with the same cache key.
        force: run the step even when this run already holds a result with the same key.

    Raises:
        BadInputError: the spec or data is wrong (do not retry).
        ConveyorRuntimeError: anything else (may be retried).
    """
    step = run.steps.get(name)
    if step is None:
        raise SpecError(f"unknown step {name!r}; steps are {', '.join(run.steps)}")
    upstream: dict[str, StepRecord] = {}
    for before in run.steps:
        if before == name:
            break
        record = run.read_record(before)
        if record is not None:
            upstream[before] = record
    inputs: dict[str, ArtifactRef] = {}
    for wanted in step.inputs:
        producer, _, artifact = wanted.partition(".")
        record = upstream.get(producer)
        if record is None or artifact not in record.outputs:
            raise ConveyorRuntimeError(
                f"step {name} needs {wanted}, which run {run.run_id} does not have; "
                f"run step {producer} first"
            )
        inputs[wanted] = record.outputs[artifact]
    for wanted in step.optional_inputs:  # e.g. a separate test set, when the spec has one
        producer, _, artifact = wanted.partition(".")
        if producer in upstream and artifact in upstream[producer].outputs:
            inputs[wanted] = upstream[producer].outputs[artifact]
    key = _cache_key(step, step.config(run.loaded.spec), inputs)

    started = time.perf_counter()
    record = None
    ctx = StepContext(loaded=run.loaded, run_id=run.run_id, store=run.store,
                      tracker=run.tracker, inputs=inputs,
                      upstream={k: v.info for k, v in upstream.items()}, step=name)
    cacheable = step.caches(run.loaded.spec)
    if cacheable and not force:
        own = upstream.get(name) or run.read_record(name)
        if own is not None and own.cache_key == key and _outputs_exist(run.store, own):
            log.info("step %s: already done in run %s", name, run.run_id)
            return own
        if use_cache:
            record = _from_cache(run, step, key)
        if record is not None:
            cached = StepResult(outputs=dict(record.outputs), metrics=record.metrics,
                                info=record.info)
            record.outputs.update(step.reuse(ctx, cached, record.cached_from))
    if record is None:
        try:
            result = step.run(ctx)
        finally:  # the step's tables are gone: their pages go back before the next step
            release_memory()
        record = StepRecord(step=name, status=result.status, cache_key=key,
                            outputs=result.outputs, metrics=result.metrics, info=result.info)
    record.duration = time.perf_counter() - started
    record.finished_at = now_iso()
    _track(run, step, record)
    run.store.put_json(run.record_uri(name), record.to_dict())
    if cacheable and record.status == "ok" and record.cached_from is None:
        run.store.put_json(_cache_uri(run, name, key), {**record.to_dict(),
                                                         "cached_from": run.run_id})
    return record


def _cache_uri(run: Run, step: str, key: str) -> str:
    return run.store.uri(run.pipeline, "_cache", step, f"{key[:40]}.json")


def _from_cache(run: Run, step: BaseStep, key: str) -> StepRecord | None:
    uri = _cache_uri(run, step.name, key)
    if not run.store.exists(uri):
        return None
    record = StepRecord.from_dict(run.store.get_json(uri))
    if record.cache_key != key or not _outputs_exist(run.store, record):
        return None
    record.status = "cached"
    log.info("step %s: cached from run %s", step.name, record.cached_from)
    return record


def _track(run: Run, step: BaseStep, record: StepRecord) -> None:
    """Log a step's metrics, tags and small reports to the MLflow run (cached ones too)."""
    tracker = run.tracker
    if record.metrics:
        tracker.log_metrics(record.metrics)
    tracker.set_tags({f"conveyor.step.{record.step}": record.status, **step.tags(record.info)})
    for ref in record.outputs.values():
        # only the run's own store: export's manifest lives at export.uri, another store
        # with other credentials (its content is in the run's manifest anyway)
        if not ref.uri.startswith(run.store.root + "/"):
            continue
        if ref.uri.endswith(_LOGGED_SUFFIXES) and ref.size <= _MAX_LOGGED_BYTES:
            filename = ref.uri.rsplit("/", 1)[-1]
            if filename.startswith("_"):
                continue
            tracker.log_bytes(run.store.get_bytes(ref.uri, sha256=ref.sha256),
                              f"{record.step}/{filename}")


def finish_run(run: Run) -> tuple[ArtifactRef, dict[str, Any]]:
    """Write the run's manifest, then publish its export's ``latest.json``, then end the
    MLflow run.

    Every MLflow call that can fail comes before the manifest; ``latest.json`` comes after
    it, so it never names a run without one; if ``latest.json`` cannot be written the
    manifest is taken back, so the run is incomplete and :func:`fail_run` withdraws what it
    published (docs/decisions/0015-export-published-last.md).

    Returns:
        The manifest's reference and content. Its ``status`` is ``ok``, or the first status a
        step's record declares (:meth:`BaseStep.outcome`: ``rejected`` when the gate refused
        the model).
    """
    records = run.records()
    missing = [name for name in run.steps if name not in records]
    if missing:
        raise ConveyorRuntimeError(f"run {run.run_id} cannot finish: steps {missing} have "
                                   "not run")
    declared = (run.steps[name].outcome(record.info) for name, record in records.items())
    status = next((s for s in declared if s), "ok")
    manifest = {
        "pipeline": run.pipeline, "run_id": run.run_id, "status": status,
        "spec_hash": run.loaded.spec_hash, "conveyor_version": conveyor_version(),
        "mlflow_run_id": run.tracker.run_id, "tracking_uri": run.tracker.uri,
        "finished_at": now_iso(),
        "metrics": {k: v for r in records.values() for k, v in r.metrics.items()},
        "steps": {name: {"status": r.status, "duration": round(r.duration, 4),
                         "cached_from": r.cached_from, "info": r.info}
                  for name, r in records.items()},
        "artifacts": {f"{name}/{artifact}": ref.to_dict()
                      for name, r in records.items() for artifact, ref in r.outputs.items()},
    }
    uri = f"{run.uri}/manifest.json"
    run.tracker.set_tags({"conveyor.status": status, "conveyor.manifest": uri})
    run.tracker.log_text(json.dumps(manifest, indent=2, sort_keys=True), "manifest.json")
    ref = run.store.put_json(uri, manifest)
    try:
        for name, record in records.items():
            if record.status == "ok":
                run.steps[name].publish(run.context(name), record.outputs)
    except BaseException:
        run.store.delete(uri)
        raise
    run.tracker.end("FINISHED")
    return ref, manifest


def fail_run(run: Run, error: BaseException, *, partial: bool = False) -> None:
    """Mark the MLflow run failed (or, for a deliberately partial run, finished-partial).

    A failed run withdraws what it published (RELIABILITY rule 1, ADR 0010): every step's
    :meth:`BaseStep.withdraw` runs (register deletes the versions the run created, export
    removes its export and hands ``latest.json`` back), each told what the run's manifest
    names — an earlier, completed attempt of the same run — so that it is kept.
    """
    if partial:
        try:
            run.tracker.set_tags({"conveyor.status": "partial"})
            run.tracker.end("FINISHED")
        except Exception:
            log.warning("could not mark MLflow run of %s as partial", run.run_id, exc_info=True)
        return
    completed = _completed_manifest(run)
    withdrawn: dict[str, str] = {}
    for name, step in run.steps.items():
        kept = {"info": completed.get("steps", {}).get(name, {}).get("info", {}),
                "artifacts": {key.split("/", 1)[1]: ref for key, ref
                              in completed.get("artifacts", {}).items()
                              if key.startswith(f"{name}/")}} if completed else {}
        try:
            withdrawn.update(step.withdraw(run.context(name), kept))
        except Exception as exc:  # noqa: BLE001 - the failure being reported matters more
            log.warning("could not withdraw what step %s of failed run %s published: %s",
                        name, run.run_id, exc)
    try:
        run.tracker.set_tags({"conveyor.status": "failed", "conveyor.error": str(error)[:500],
                              **withdrawn})
        run.tracker.end("FAILED")
    except Exception:
        log.warning("could not mark MLflow run of %s as failed", run.run_id, exc_info=True)


def _completed_manifest(run: Run) -> dict[str, Any]:
    """The run's manifest, if an attempt of it completed (what that attempt published)."""
    uri = f"{run.uri}/manifest.json"
    try:
        data = run.store.get_json(uri) if run.store.exists(uri) else {}
    except ConveyorError:
        data = {}
    return data if isinstance(data, dict) else {}
