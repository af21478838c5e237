"""The MLflow model registry: idempotent registration found again by a tag."""

from __future__ import annotations

import logging
from typing import Any

from conveyor.errors import TrackingError
from conveyor.tracking.tracker import RUN_TAG, Tracker

__all__ = ["find_version", "register_model", "withdraw_version"]

log = logging.getLogger(__name__)


def find_version(tracker: Tracker, name: str, conveyor_run_id: str) -> Any | None:
    """The version of ``name`` registered by ``conveyor_run_id``, if any (the lowest)."""
    try:
        found = tracker.client.search_model_versions(
            f"name = '{name}' and tags.`{RUN_TAG}` = '{conveyor_run_id}'"
        )
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc):
            return None
        raise TrackingError(f"searching model versions of {name!r} failed: {exc}") from exc
    return min(found, key=lambda v: int(v.version)) if found else None


def register_model(
    tracker: Tracker, model_uri: str, name: str, *, conveyor_run_id: str, tags: dict[str, str]
) -> tuple[Any, bool]:
    """Register ``model_uri`` as a version of ``name``, once per Conveyor run.

    A re-run (a retry, a cleared Airflow task, a resumed run) finds its version by the
    ``conveyor.run_id`` tag instead of adding one. Should two attempts race past the lookup,
    the later version is deleted so exactly one remains.

    Returns:
        The model version and whether it was created by this call.
    """
    existing = find_version(tracker, name, conveyor_run_id)
    if existing is not None:
        log.info("model %s version %s already registered by run %s", name, existing.version,
                 conveyor_run_id)
        return existing, False
    client = tracker.client
    try:
        try:
            client.create_registered_model(name)
        except Exception as exc:  # already exists: fine
            if "RESOURCE_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
                raise
        # an MLflow server insists that a models:/<id> source names its logged model
        model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") \
            else None
        version = client.create_model_version(
            name, model_uri, run_id=tracker.run_id,
            tags={RUN_TAG: conveyor_run_id, **tags}, model_id=model_id,
        )
    except Exception as exc:
        raise TrackingError(f"registering {name!r} failed: {exc}") from exc
    winner = find_version(tracker, name, conveyor_run_id)
    if winner is not None and winner.version != version.version:
        client.delete_model_version(name, version.version)
        return winner, False
    return version, True


def withdraw_version(tracker: Tracker, name: str, conveyor_run_id: str) -> str | None:
    """Delete the version ``conveyor_run_id`` registered, when that run failed afterwards.

    A failed run must leave nothing that looks finished (no new registry version). Versions
    that already carry an alias (someone promoted it) are kept and reported instead.

    Returns:
        The deleted version, or None.
    """
    version = find_version(tracker, name, conveyor_run_id)
    if version is None:
        return None
    if getattr(version, "aliases", None):
        log.warning("run %s failed but %s v%s already has aliases %s; kept", conveyor_run_id,
                    name, version.version, version.aliases)
        return None
    try:
        tracker.client.delete_model_version(name, version.version)
    except Exception as exc:
        raise TrackingError(f"withdrawing {name} v{version.version} failed: {exc}") from exc
    log.warning("run %s failed after registering: %s v%s withdrawn", conveyor_run_id, name,
                version.version)
    return str(version.version)
