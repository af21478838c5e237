"""The MLflow model registry: one version per trained model, and what promotion needs on it.

Two rules hold for every version Conveyor registers, from a pipeline or from the lab
(docs/decisions/0016-one-version-per-trained-model.md):

* **One trained model, one version.** A registration is found again by its *registration
  key* (tag ``conveyor.registration_key``), the identity of the trained model: a retry, a
  resumed run or a fully cached run that registers the same model gets the existing version;
  a newly trained model gets a new one.
* **Promotable.** A version carries its :class:`PromotionEvidence` as tags: the hold-out set
  every candidate is scored on (URI, sha256, label column), the digest of the model's
  artifacts as the registry serves them (checked before any promotion loads it) and its test
  metrics. :func:`register_model` cannot be called without it.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.errors import StoreError, TrackingError
from conveyor.store import folder_digest
from conveyor.tracking.aliases import CHALLENGER
from conveyor.tracking.sqlite_registry import (
    copy_version_files,
    local_folder,
    read_version,
    versions_tagged,
)
from conveyor.tracking.tracker import RUN_TAG, Tracker, mlflow_scope, one_line

__all__ = [
    "DIGEST_TAG",
    "HOLDOUT_SHA_TAG",
    "HOLDOUT_TARGET_TAG",
    "HOLDOUT_URI_TAG",
    "KEY_TAG",
    "METRIC_TAG_PREFIX",
    "PromotionEvidence",
    "VersionRefusedError",
    "download_verified_version",
    "find_version",
    "get_version",
    "load_served_version",
    "load_verified_version",
    "model_digest",
    "register_model",
    "search_versions",
    "withdraw_versions",
]

log = logging.getLogger(__name__)

KEY_TAG = "conveyor.registration_key"
DIGEST_TAG = "conveyor.artifacts_sha256"
HOLDOUT_URI_TAG = "conveyor.holdout.uri"
HOLDOUT_SHA_TAG = "conveyor.holdout.sha256"
HOLDOUT_TARGET_TAG = "conveyor.holdout.target"
METRIC_TAG_PREFIX = "conveyor.metric."
# files MLflow adds on the caller's side when downloading a registered version
_NOT_DIGESTED = frozenset({"registered_model_meta"})


@dataclass(frozen=True)
class PromotionEvidence:
    """What a promotion needs from a version, recorded on it when it is registered.

    Attributes:
        holdout_uri: the hold-out table (Parquet, features and label) every candidate is
            scored on.
        holdout_sha256: its content hash (checked when it is read).
        holdout_target: its label column.
        metrics: the model's metrics; the ``test_*`` ones become ``conveyor.metric.*`` tags.
    """

    holdout_uri: str
    holdout_sha256: str
    holdout_target: str
    metrics: Mapping[str, float] = field(default_factory=dict)

    def tags(self, digest: str) -> dict[str, str]:
        """The version's tags for this evidence and the model's artifact ``digest``.

        Raises:
            TrackingError: a field is missing (a bug in the caller, not bad input).
        """
        missing = [name for name, value in (("holdout_uri", self.holdout_uri),
                                            ("holdout_sha256", self.holdout_sha256),
                                            ("holdout_target", self.holdout_target),
                                            ("digest", digest)) if not value]
        if missing:
            raise TrackingError(f"a version cannot be registered without {', '.join(missing)}:"
                                " promotion could not score or verify it")
        return {
            DIGEST_TAG: digest,
            HOLDOUT_URI_TAG: self.holdout_uri,
            HOLDOUT_SHA_TAG: self.holdout_sha256,
            HOLDOUT_TARGET_TAG: self.holdout_target,
            **{f"{METRIC_TAG_PREFIX}{k}": f"{float(v):.6f}" for k, v in sorted(
                self.metrics.items()) if k.startswith("test_") and math.isfinite(float(v))},
        }


# --------------------------------------------------------------------------- digests


def _download(tracker: Tracker, model_uri: str, dst: Path) -> Path:
    """Download a logged or registered model (``models:/...``) to a local folder."""
    import mlflow.artifacts

    tracker.client  # noqa: B018 - the SQLite database is created (and migrated) once
    with mlflow_scope(tracker.uri):  # models:/ URIs are resolved through the global registry
        return Path(mlflow.artifacts.download_artifacts(
            artifact_uri=model_uri, dst_path=str(dst), tracking_uri=tracker.uri))


def _digest(folder: Path) -> str:
    try:
        return folder_digest(folder, skip=_NOT_DIGESTED)
    except StoreError as exc:
        raise TrackingError(f"model folder {folder} holds no files") from exc


def model_digest(tracker: Tracker, model_uri: str) -> str:
    """sha256 over a logged model's files (names and contents), as the registry serves them.

    Recorded on each version at registration (tag ``conveyor.artifacts_sha256``) and checked
    before a version is ever loaded for promotion.
    """
    with tempfile.TemporaryDirectory(prefix="conveyor-digest-") as tmp:
        try:
            folder = _download(tracker, model_uri, Path(tmp))
        except Exception as exc:
            raise TrackingError(f"cannot download {model_uri}: {one_line(exc)}") from exc
        return _digest(folder)


class VersionRefusedError(TrackingError):
    """A registered version cannot be used: artifacts missing, altered or unloadable."""


def load_verified_version(tracker: Tracker, name: str, version: Any) -> Any:
    """Load a registered version with ``mlflow.pyfunc`` after checking its artifact digest.

    The version's files are downloaded as the registry serves them and compared with the
    digest recorded at registration (tag ``conveyor.artifacts_sha256``) before anything is
    unpickled.

    Raises:
        VersionRefusedError: no digest tag, the artifacts are missing or do not match, or the
            model cannot be loaded; the message is the reason, in one line.
    """
    import mlflow.pyfunc

    number = str(version.version)
    expected = dict(version.tags or {}).get(DIGEST_TAG)
    if not expected:
        raise VersionRefusedError(f"no {DIGEST_TAG} tag: its artifacts cannot be verified "
                                  "(register versions through Conveyor)")
    with tempfile.TemporaryDirectory(prefix="conveyor-score-") as tmp:
        try:
            folder = _download(tracker, f"models:/{name}/{number}", Path(tmp))
            digest = _digest(folder)
        except Exception as exc:
            raise VersionRefusedError(f"artifacts missing or unreadable: {one_line(exc)}") \
                from exc
        if digest != expected:
            raise VersionRefusedError("artifacts do not match the digest recorded at "
                                      "registration (altered or corrupt)")
        try:
            return mlflow.pyfunc.load_model(str(folder))
        except Exception as exc:
            raise VersionRefusedError(f"cannot load or predict: {one_line(exc)}") from exc


def download_verified_version(tracker: Tracker, name: str, version: Any, dst: Path) -> Path:
    """Download registered ``version`` of ``name`` into ``dst`` and check its files against the
    digest recorded at registration; nothing in them is loaded.

    A ``version`` read by :func:`conveyor.tracking.sqlite_registry.read_version` names its
    local storage folder: its files are copied from there rather than downloaded through
    MLflow, and the copy is checked the same way.

    Returns:
        the local model folder (``MLmodel`` and the model file).

    Raises:
        VersionRefusedError: no digest tag, the artifacts are missing, or they do not match.
    """
    number = str(version.version)
    expected = dict(version.tags or {}).get(DIGEST_TAG)
    if not expected:
        raise VersionRefusedError(f"version {number} of {name} has no {DIGEST_TAG} tag: its "
                                  "artifacts cannot be verified (register versions through "
                                  "Conveyor)")
    stored = local_folder(getattr(version, "storage_location", None))
    try:
        if stored is not None:  # the embedded registry's own folder: copied, no MLflow
            folder = copy_version_files(stored, Path(dst))
        else:
            folder = _download(tracker, f"models:/{name}/{number}", Path(dst))
        digest = _digest(folder)
    except Exception as exc:
        raise VersionRefusedError(f"version {number} of {name}: artifacts missing or "
                                  f"unreadable: {one_line(exc)}") from exc
    if digest != expected:
        raise VersionRefusedError(f"version {number} of {name}: artifacts do not match the "
                                  "sha256 recorded at registration (altered or corrupt)")
    return folder


def load_served_version(tracker: Tracker, name: str, number: str) -> Any:
    """Load ``models:/<name>/<number>``, the path a serving client takes.

    Raises:
        VersionRefusedError: the registry cannot serve it.
    """
    import mlflow.pyfunc

    tracker.client  # noqa: B018 - the SQLite database is created (and migrated) once
    try:
        with mlflow_scope(tracker.uri):
            return mlflow.pyfunc.load_model(f"models:/{name}/{number}")
    except Exception as exc:
        raise VersionRefusedError(f"loading from the registry failed: {one_line(exc)}") from exc


# --------------------------------------------------------------------------- versions


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def search_versions(tracker: Tracker, name: str, *, tag: str | None = None,
                    value: str = "", ready_only: bool = False) -> list[Any]:
    """The versions of registered model ``name``, optionally only those with ``tag=value``.

    The one place versions are looked up. An unknown model has no versions.

    Args:
        tracker: the MLflow connection.
        name: the registered model.
        tag: a version tag to match.
        value: its value.
        ready_only: leave out versions that are not ``READY`` (still being created, failed).
    """
    query = f"name = '{_quote(name)}'"
    if tag is not None:
        query += f" and tags.`{tag}` = '{_quote(value)}'"
    try:
        found = list(tracker.client.search_model_versions(query, max_results=10_000))
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc):
            return []
        raise TrackingError(f"searching model versions of {name!r} failed: {one_line(exc)}") \
            from exc
    if ready_only:
        found = [v for v in found if str(getattr(v, "status", "READY")) == "READY"]
    return found


def get_version(tracker: Tracker, name: str, *, alias: str | None = None,
                number: str | None = None) -> Any:
    """Version ``number`` of registered model ``name``, or the one ``alias`` points to.

    From an embedded SQLite registry the version is read directly (a
    :class:`~conveyor.tracking.sqlite_registry.StoredVersion`: ``version``, ``run_id``,
    ``tags``, ``status``, ``storage_location``) without importing MLflow; every other case,
    errors included, goes through MLflow's client (an MLflow ``ModelVersion``).

    Raises:
        VersionRefusedError: no such model, version or alias (one line naming it).
        TrackingError: MLflow cannot be reached.
    """
    stored = read_version(tracker.uri, name, alias=alias, number=number)
    if stored is not None:
        return stored
    client = tracker.client
    what = f"{name}@{alias}" if alias else f"{name}/{number}"
    try:
        if alias:
            return client.get_model_version_by_alias(name, alias)
        return client.get_model_version(name, str(number))
    except Exception as exc:
        text = str(exc)
        if "RESOURCE_DOES_NOT_EXIST" in text or "not found" in text.lower() \
                or "INVALID_PARAMETER_VALUE" in text:
            raise VersionRefusedError(f"models:/{what} does not exist in the registry at "
                                      f"{tracker.uri}") from exc
        raise TrackingError(f"reading models:/{what} at MLflow {tracker.uri} failed: "
                            f"{one_line(exc)}") from exc


def find_version(tracker: Tracker, name: str, key: str) -> Any | None:
    """The version of ``name`` registered under registration key ``key``, if any (the lowest).

    From an embedded SQLite registry it is read directly (a cached run registers nothing new
    and need not import MLflow, ADR 0049); otherwise MLflow is asked.
    """
    found = versions_tagged(tracker.uri, name, KEY_TAG, key)
    if found is None:
        found = search_versions(tracker, name, tag=KEY_TAG, value=key)
    return min(found, key=lambda v: int(v.version)) if found else None


def register_model(
    tracker: Tracker, model_uri: str, name: str, *, key: str, conveyor_run_id: str,
    evidence: PromotionEvidence, tags: Mapping[str, str],
) -> tuple[Any, bool]:
    """Register ``model_uri`` as a version of ``name``, once per trained model.

    The version found under ``key`` is returned as it is (a retry, a resumed run, a cached
    run: the same model). Otherwise the model's artifacts are digested as the registry serves
    them and a version is created with ``tags``, the evidence's tags, the key and the run.
    Should two attempts race past the lookup, the later version is deleted so exactly one
    remains.

    Args:
        tracker: the MLflow connection (its attached run is the version's source run).
        model_uri: the logged model (``models:/<model_id>``).
        name: the registered model.
        key: the registration key: the trained model's identity.
        conveyor_run_id: the Conveyor run registering it (tag ``conveyor.run_id``).
        evidence: what promotion needs (hold-out set, metrics).
        tags: further tags.

    Returns:
        The model version and whether it was created by this call.
    """
    existing = find_version(tracker, name, key)
    if existing is not None:
        log.info("model %s version %s already registered for this model (key %s)", name,
                 existing.version, key[:16])
        return existing, False
    version_tags = {**tags, **evidence.tags(model_digest(tracker, model_uri)),
                    KEY_TAG: key, RUN_TAG: conveyor_run_id}
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
        # MLflow's SQL registry looks a models:/ source up with a bare MlflowClient(), which
        # reads the global tracking URI (its own TODO in SqlAlchemyStore.create_model_version)
        with mlflow_scope(tracker.uri):
            version = client.create_model_version(name, model_uri, run_id=tracker.run_id,
                                                  tags=version_tags, model_id=model_id)
    except Exception as exc:
        raise TrackingError(f"registering {name!r} failed: {one_line(exc)}") from exc
    winner = find_version(tracker, name, key)
    # MLflow's ModelVersion.version is an int, a StoredVersion's a str
    if winner is not None and str(winner.version) != str(version.version):
        client.delete_model_version(name, version.version)
        return winner, False
    return version, True


def withdraw_versions(tracker: Tracker, name: str, conveyor_run_id: str, *,
                      keep: Iterable[str] = ()) -> list[str]:
    """Delete the versions ``conveyor_run_id`` created, when that run failed afterwards.

    A failed run must leave nothing that looks finished (no new registry version). Only
    versions the run *created* are candidates (tag ``conveyor.run_id``): a version a cached
    run merely reused belongs to the run that trained the model. Versions in ``keep`` (named
    by the run's manifest from an earlier, completed attempt) and versions that carry an
    alias (someone promoted them) are kept.

    Returns:
        The deleted versions.
    """
    kept = {str(v) for v in keep}
    withdrawn = []
    for version in sorted(search_versions(tracker, name, tag=RUN_TAG, value=conveyor_run_id),
                          key=lambda v: int(v.version)):
        number = str(version.version)
        if number in kept:
            continue
        # ``challenger`` is the run's own alias (set when it publishes): it goes with the
        # version; any other alias means someone promoted it
        aliases = [a for a in getattr(version, "aliases", None) or [] if a != CHALLENGER]
        if aliases:
            log.warning("run %s failed but %s v%s already has aliases %s; kept",
                        conveyor_run_id, name, number, aliases)
            continue
        try:
            tracker.client.delete_model_version(name, number)
        except Exception as exc:
            raise TrackingError(f"withdrawing {name} v{number} failed: {one_line(exc)}") \
                from exc
        log.warning("run %s failed after registering: %s v%s withdrawn", conveyor_run_id,
                    name, number)
        withdrawn.append(number)
    return withdrawn
