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

import hashlib
import logging
import math
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.errors import TrackingError
from conveyor.tracking.tracker import RUN_TAG, Tracker

__all__ = [
    "DIGEST_TAG",
    "HOLDOUT_SHA_TAG",
    "HOLDOUT_TARGET_TAG",
    "HOLDOUT_URI_TAG",
    "KEY_TAG",
    "METRIC_TAG_PREFIX",
    "PromotionEvidence",
    "find_version",
    "model_digest",
    "register_model",
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


def _folder_digest(folder: Path) -> str:
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel in _NOT_DIGESTED:
            continue
        lines.append(f"{rel}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n")
    if not lines:
        raise TrackingError(f"model folder {folder} holds no files")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _download(tracker: Tracker, model_uri: str, dst: Path) -> Path:
    import mlflow.artifacts

    tracker.client  # noqa: B018 - sets the tracking and registry URIs the download reads
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dst),
                                                    tracking_uri=tracker.uri))


def model_digest(tracker: Tracker, model_uri: str) -> str:
    """sha256 over a logged model's files (names and contents), as the registry serves them.

    Recorded on each version at registration (tag ``conveyor.artifacts_sha256``) and checked
    before a version is ever loaded for promotion.
    """
    with tempfile.TemporaryDirectory(prefix="conveyor-digest-") as tmp:
        try:
            folder = _download(tracker, model_uri, Path(tmp))
        except Exception as exc:
            raise TrackingError(f"cannot download {model_uri}: {exc}") from exc
        return _folder_digest(folder)


# --------------------------------------------------------------------------- versions


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _search(tracker: Tracker, name: str, tag: str, value: str) -> list[Any]:
    try:
        return list(tracker.client.search_model_versions(
            f"name = '{_quote(name)}' and tags.`{tag}` = '{_quote(value)}'"))
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc):
            return []
        raise TrackingError(f"searching model versions of {name!r} failed: {exc}") from exc


def find_version(tracker: Tracker, name: str, key: str) -> Any | None:
    """The version of ``name`` registered under registration key ``key``, if any (the lowest)."""
    found = _search(tracker, name, KEY_TAG, key)
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
        version = client.create_model_version(name, model_uri, run_id=tracker.run_id,
                                              tags=version_tags, model_id=model_id)
    except Exception as exc:
        raise TrackingError(f"registering {name!r} failed: {exc}") from exc
    winner = find_version(tracker, name, key)
    if winner is not None and winner.version != version.version:
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
    for version in sorted(_search(tracker, name, RUN_TAG, conveyor_run_id),
                          key=lambda v: int(v.version)):
        number = str(version.version)
        if number in kept:
            continue
        if getattr(version, "aliases", None):
            log.warning("run %s failed but %s v%s already has aliases %s; kept",
                        conveyor_run_id, name, number, version.aliases)
            continue
        try:
            tracker.client.delete_model_version(name, number)
        except Exception as exc:
            raise TrackingError(f"withdrawing {name} v{number} failed: {exc}") from exc
        log.warning("run %s failed after registering: %s v%s withdrawn", conveyor_run_id,
                    name, number)
        withdrawn.append(number)
    return withdrawn
