"""What is served and scored: a model found by URI, its files checked against their recorded
sha256 before anything in them is loaded, and its signature as the request schema.

A model URI is one of:

* ``models:/<name>@<alias>`` or ``models:/<name>/<version>``: a registered version; its files
  must match the digest recorded at registration (tag ``conveyor.artifacts_sha256``);
* an export folder (a path, ``file://`` or ``s3://`` URI): the export root holding
  ``latest.json`` (also spelled ``<root>/latest``), one run's export holding
  ``manifest.json``, or a model folder written by the Store (``_conveyor_dir.json``). Each
  file is checked against the chain of hashes from ``latest.json`` or the manifest down.

:func:`resolve` is cheap (no download, no load): it says *which* model the URI names now, and
is what a poller compares to notice an alias move. :func:`load` downloads, verifies and loads.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from conveyor.errors import BadInputError, StoreError, TrackingError
from conveyor.ids import now_iso
from conveyor.store import ArtifactRef, Store, to_uri

__all__ = [
    "Feature",
    "LoadedModel",
    "ModelIdentity",
    "ModelRefusedError",
    "Prediction",
    "load",
    "open_model",
    "resolve",
]

_REGISTRY = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<number>\d+))$")
_METRIC_TAG = "conveyor.metric."


class ModelRefusedError(TrackingError):
    """A model cannot be served: missing, altered (sha256 mismatch) or unloadable."""


@dataclass(frozen=True)
class Feature:
    """One input column of the model's signature.

    Attributes:
        name: the column name.
        dtype: its MLflow signature type (``double``, ``float``, ``long``, ``integer``,
            ``boolean``, ``string``, ``datetime``, ``binary``).
        required: whether a request must carry it.
    """

    name: str
    dtype: str
    required: bool = True


@dataclass(frozen=True)
class ModelIdentity:
    """Which model a URI names right now.

    Attributes:
        uri: the URI as given (``models:/breast_cancer_classifier@production``).
        kind: ``registry`` or ``folder``.
        name: the registered model's name, or the exported pipeline's.
        version: the registry version number (for an export: the version it registered, if any).
        alias: the alias the URI follows, if any.
        run_id: the MLflow run id of a registered version, the Conveyor run id of an export.
        sha256: the digest the model's files must match.
        location: where the files are (``models:/name/N`` or the model folder's URI).
        tags: the registered version's tags (empty for a folder).
        metrics: the test metrics recorded with the model.
        storage: where an embedded registry stores the version's files (a ``file://``
            folder, copied and verified instead of downloaded through MLflow), if known.
    """

    uri: str
    kind: Literal["registry", "folder"]
    name: str
    version: str | None
    alias: str | None
    run_id: str | None
    sha256: str
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    storage: str | None = None

    @property
    def key(self) -> str:
        """What changes when the URI starts naming another model (the poller compares it)."""
        return f"{self.version}:{self.sha256}"


@dataclass(frozen=True)
class Prediction:
    """Predictions for a batch: ``labels`` (n,) and, for classifiers, ``proba`` (n, classes)."""

    labels: Any
    proba: Any | None


@dataclass
class LoadedModel:
    """A verified, loaded model and what a server or scorer needs to know about it.

    Attributes:
        identity: which model this is.
        estimator: the scikit-learn estimator or pipeline.
        features: the signature's input columns, in the order the model expects them.
        classes: the class labels of a classifier (``None`` for a regressor).
        folder: the verified local copy of the model's files.
        loaded_at: when it was loaded (ISO 8601, UTC).
    """

    identity: ModelIdentity
    estimator: Any
    features: tuple[Feature, ...]
    classes: tuple[Any, ...] | None
    folder: Path
    loaded_at: str = field(default_factory=now_iso)
    _keep: Any = field(default=None, repr=False)  # the temporary folder, removed with us

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def predict(self, frame: Any) -> Prediction:
        """Predict for a DataFrame holding (at least) the feature columns.

        A classifier's labels are its ``classes_`` at the arg-max of ``predict_proba`` (what
        scikit-learn's ``predict`` returns for its classifiers); a regressor has no ``proba``.
        """
        import numpy as np

        from conveyor.modeling.threshold import labels_from_proba

        X = frame[self.feature_names]
        if self.classes is not None and hasattr(self.estimator, "predict_proba"):
            proba = np.asarray(self.estimator.predict_proba(X))
            # the arg-max, or the decision threshold saved inside the model (ADR 0041)
            labels = labels_from_proba(self.estimator, proba, self.classes)
            return Prediction(labels=labels, proba=proba)
        return Prediction(labels=np.asarray(self.estimator.predict(X)), proba=None)


# --------------------------------------------------------------------------- resolve


def _tracker(tracking_uri: str | None) -> Any:
    from conveyor.tracking import Tracker

    return Tracker(tracking_uri, "conveyor-serving")


def _metrics(tags: Mapping[str, str]) -> dict[str, float]:
    out = {}
    for key, value in tags.items():
        if key.startswith(_METRIC_TAG):
            try:
                out[key.removeprefix(_METRIC_TAG)] = float(value)
            except ValueError:
                continue
    return out


def resolve(uri: str, *, tracking_uri: str | None = None) -> ModelIdentity:
    """Which model ``uri`` names now (no download, nothing loaded).

    Args:
        uri: ``models:/name@alias``, ``models:/name/N``, or an export or model folder.
        tracking_uri: the MLflow tracking URI for ``models:/`` (default: the embedded one).

    Raises:
        BadInputError: the URI is malformed or names nothing (exit 2).
        ModelRefusedError: the registered version has no recorded sha256.
        TrackingError: MLflow or the Store cannot be reached.
    """
    if uri.startswith("models:/"):
        return _resolve_registry(uri, tracking_uri)
    return _resolve_folder(uri)


def _resolve_registry(uri: str, tracking_uri: str | None) -> ModelIdentity:
    from conveyor.tracking.registry import DIGEST_TAG, VersionRefusedError, get_version

    match = _REGISTRY.match(uri)
    if not match:
        raise BadInputError(f"{uri}: a registered model is models:/<name>@<alias> or "
                            "models:/<name>/<version>")
    name, alias, number = match["name"], match["alias"], match["number"]
    tracker = _tracker(tracking_uri)
    try:
        version = get_version(tracker, name, alias=alias, number=number)
    except VersionRefusedError as exc:
        raise BadInputError(str(exc)) from exc
    tags = dict(version.tags or {})
    if not tags.get(DIGEST_TAG):
        raise ModelRefusedError(f"{uri} (version {version.version}) has no {DIGEST_TAG} tag: "
                                "its files cannot be verified (register it through Conveyor)")
    return ModelIdentity(uri=uri, kind="registry", name=name, version=str(version.version),
                         alias=alias, run_id=version.run_id, sha256=tags[DIGEST_TAG],
                         location=f"models:/{name}/{version.version}", tags=tags,
                         metrics=_metrics(tags),
                         storage=getattr(version, "storage_location", None))


def _resolve_folder(uri: str) -> ModelIdentity:
    location = to_uri(uri).rstrip("/")
    parent, _, leaf = location.rpartition("/")
    store = Store(parent)
    try:
        if leaf == "latest" and not store.exists(location) and store.exists(
                f"{parent}/latest.json"):
            return _from_latest(uri, Store(parent.rpartition("/")[0] or parent), parent)
        if store.exists(f"{location}/latest.json"):
            return _from_latest(uri, store, location)
        if store.exists(f"{location}/manifest.json"):
            manifest = store.get_json(f"{location}/manifest.json")
            return _from_manifest(uri, manifest, location)
        if store.exists(f"{location}/_conveyor_dir.json"):
            index = store.get_json(f"{location}/_conveyor_dir.json")
            return ModelIdentity(uri=uri, kind="folder", name=leaf, version=None, alias=None,
                                 run_id=None, sha256=str(index.get("sha256", "")),
                                 location=location)
        if store.exists(f"{location}/MLmodel"):
            raise ModelRefusedError(f"{uri}: an MLflow model folder without a recorded sha256 "
                                    "(_conveyor_dir.json); serve a Conveyor export or a "
                                    "registered version")
    except StoreError as exc:
        raise ModelRefusedError(f"{uri}: {exc}") from exc
    raise BadInputError(f"{uri}: no model there (expected models:/<name>@<alias>, an export "
                        "folder with latest.json or manifest.json, or a model folder)")


def _from_latest(uri: str, store: Store, root: str) -> ModelIdentity:
    latest = store.get_json(f"{root}/latest.json")
    manifest_uri = str(latest["manifest"])
    manifest = store.get_json(manifest_uri, sha256=latest.get("sha256"))
    return _from_manifest(uri, manifest, manifest_uri.rpartition("/")[0])


def _from_manifest(uri: str, manifest: Mapping[str, Any], run_folder: str) -> ModelIdentity:
    model = (manifest.get("artifacts") or {}).get("model") or {}
    if not model.get("sha256"):
        raise ModelRefusedError(f"{run_folder}/manifest.json records no model sha256")
    registered = str(manifest.get("registered") or "")
    match = _REGISTRY.match(registered)
    return ModelIdentity(
        uri=uri, kind="folder", name=str(manifest.get("pipeline") or run_folder),
        version=match["number"] if match else None, alias=None,
        run_id=manifest.get("run_id"), sha256=str(model["sha256"]),
        location=f"{run_folder}/model", metrics=_export_metrics(run_folder))


def _export_metrics(run_folder: str) -> dict[str, float]:
    try:
        data = Store(run_folder).get_json(f"{run_folder}/metrics.json")
    except (StoreError, OSError, ValueError):  # metrics are shown, never needed to serve
        return {}
    flat = data.get("metrics", data) if isinstance(data, dict) else {}
    return {k: float(v) for k, v in flat.items() if isinstance(v, (int, float))}


# --------------------------------------------------------------------------- load


def load(identity: ModelIdentity, *, tracking_uri: str | None = None,
         workdir: Path | None = None) -> LoadedModel:
    """Download ``identity``'s files, check them against its sha256, then load the model.

    Nothing in a folder whose files do not match is deserialised.

    Args:
        identity: what :func:`resolve` returned.
        tracking_uri: the MLflow tracking URI for a registered version.
        workdir: where the verified copy goes (default: a temporary folder removed with the
            returned object).

    Raises:
        ModelRefusedError: the files are missing, altered or cannot be loaded.
    """
    from conveyor.tracking.model_files import load_sklearn_folder, read_mlmodel, signature_inputs

    keep = None
    if workdir is None:
        keep = tempfile.TemporaryDirectory(prefix="conveyor-model-")
        workdir = Path(keep.name)
    try:
        folder = _fetch(identity, tracking_uri, Path(workdir))
        columns = signature_inputs(read_mlmodel(folder))
        estimator = load_sklearn_folder(folder)
    except ModelRefusedError:
        raise
    except (TrackingError, StoreError) as exc:
        raise ModelRefusedError(f"{identity.uri}: {exc}") from exc
    classes = getattr(estimator, "classes_", None)
    return LoadedModel(
        identity=identity, estimator=estimator,
        features=tuple(Feature(c["name"], c["type"], c["required"]) for c in columns),
        classes=None if classes is None else tuple(
            c.item() if hasattr(c, "item") else c for c in classes),
        folder=folder, _keep=keep)


def _fetch(identity: ModelIdentity, tracking_uri: str | None, workdir: Path) -> Path:
    if identity.kind == "registry":
        from conveyor.tracking.registry import VersionRefusedError, download_verified_version

        name, _, number = identity.location.removeprefix("models:/").rpartition("/")
        version = _Version(number, identity.tags, identity.storage)
        try:
            return download_verified_version(_tracker(tracking_uri), name, version,
                                             workdir / "model")
        except VersionRefusedError as exc:
            raise ModelRefusedError(str(exc)) from exc
    parent = identity.location.rpartition("/")[0]
    try:
        return Store(parent).get_dir(ArtifactRef(uri=identity.location, sha256=identity.sha256,
                                                 size=0), workdir / "model")
    except StoreError as exc:
        raise ModelRefusedError(f"{identity.uri}: {exc}") from exc


@dataclass(frozen=True)
class _Version:
    version: str
    tags: Mapping[str, str]
    storage_location: str | None = None


def open_model(uri: str, *, tracking_uri: str | None = None) -> LoadedModel:
    """:func:`resolve` then :func:`load`: the model ``uri`` names now, verified and loaded."""
    return load(resolve(uri, tracking_uri=tracking_uri), tracking_uri=tracking_uri)
