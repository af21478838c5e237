"""Train the configs of one file on the lab's data set; log and register each in MLflow.

Every config of a file is checked and fitted before anything is logged, so a file whose
third config fails to fit registers nothing. Each config is one MLflow run and one version
of the lab's registered model, whose registration key is derived from the config's hash and
the split (training is deterministic: the same config on the same split is the same model): a
retry, a re-run or the same config dropped again finds its version instead of adding one (see
:func:`conveyor.tracking.register_model`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

from conveyor.errors import BadInputError
from conveyor.features import build_model_pipeline
from conveyor.lab.configs import ClassifierConfig, parse_config_bytes
from conveyor.lab.spec import LAB_METRICS, Lab
from conveyor.modeling import classification_metrics
from conveyor.sources.bundled import read_sklearn_source
from conveyor.store import ArtifactRef
from conveyor.tracking import (
    PromotionEvidence,
    Tracker,
    find_version,
    flatten,
    register_model,
)

__all__ = ["FitError", "LabSplit", "TrainResult", "TrainedConfig", "lab_split",
           "publish_holdout", "train_configs", "train_file"]

log = logging.getLogger(__name__)
TARGET = "target"


class FitError(BadInputError):
    """A config passed every check but its estimator failed to fit (retrying cannot help)."""


@dataclass(frozen=True)
class LabSplit:
    """The lab's stratified train/test split (the test part is the promotion's hold-out)."""

    X_train: Any
    X_test: Any
    y_train: Any
    y_test: Any
    key: str

    @property
    def features(self) -> dict[str, str]:
        return dict.fromkeys(self.X_train.columns, "numeric")


@dataclass(frozen=True)
class TrainedConfig:
    """One config's MLflow run and registry version."""

    name: str
    estimator: str
    version: str
    created: bool
    run_id: str
    conveyor_run_id: str
    model_uri: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """What training one file produced (JSON-able through :meth:`to_dict`)."""

    file: str
    sha256: str
    model_name: str
    configs: list[TrainedConfig]

    @property
    def versions(self) -> list[str]:
        return [c.version for c in self.configs]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lab_split(lab: Lab) -> LabSplit:
    """Load the lab's bundled data set and split it (stratified, the spec's seed)."""
    from sklearn.model_selection import train_test_split

    frame, _ = read_sklearn_source(lab.spec.data)
    X, y = frame.drop(columns=[TARGET]), frame[TARGET]
    split = lab.spec.split
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=split.test_size, random_state=split.seed,
        stratify=y if split.stratify else None,
    )
    key_data = {"data": lab.spec.data.model_dump(mode="json"),
                "split": split.model_dump(mode="json"),
                "preprocess": lab.spec.preprocess.model_dump(mode="json")}
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()
    return LabSplit(X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test, key=key)


def publish_holdout(lab: Lab, split: LabSplit) -> ArtifactRef:
    """Write the hold-out set to the Store once (``{lab}/_holdout/<split key>.parquet``).

    Every version trained with this split is tagged with its URI and hash, so a promotion
    scores all of them on the same rows.
    """
    store = lab.store()
    uri = store.uri(lab.name, "_holdout", f"{split.key[:24]}.parquet")
    if store.exists(uri):
        data = store.get_bytes(uri)
        return ArtifactRef(uri=uri, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    frame = split.X_test.copy()
    frame[TARGET] = split.y_test.to_numpy()
    return store.put_table(uri, frame.reset_index(drop=True))


def _fit(lab: Lab, config: ClassifierConfig, split: LabSplit) -> tuple[Any, dict[str, float],
                                                                        list[str]]:
    estimator = config.build()
    model = build_model_pipeline(split.features, lab.spec.preprocess, estimator)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(split.X_train, split.y_train)
        except Exception as exc:  # any failure of the user-chosen estimator code
            raise FitError(f"{config.source}: config {config.name!r}: "
                           f"{type(estimator).__name__} failed to fit: {exc}") from exc
    notes = sorted({f"{w.category.__name__}: {str(w.message)[:200]}" for w in caught})
    metrics = classification_metrics(model, split.X_test, split.y_test, split="test",
                                     metrics=list(LAB_METRICS), positive=None)
    metrics.update(classification_metrics(model, split.X_train, split.y_train, split="train",
                                          metrics=["accuracy", "f1"], positive=None))
    return model, metrics, notes


def _run_key(lab: Lab, config: ClassifierConfig, split: LabSplit) -> str:
    return f"{lab.name}-{config.config_hash[:20]}-{split.key[:8]}"


def train_configs(
    lab: Lab, configs: list[ClassifierConfig], *, file: str, sha256: str,
    split: LabSplit | None = None,
) -> TrainResult:
    """Fit every config, then log and register each (one MLflow run and version per config).

    Args:
        lab: the lab.
        configs: the file's configs (already parsed and checked).
        file: the config file's name (a tag, never a key).
        sha256: the file's content hash (a tag).
        split: the split to use; computed from the lab when omitted.

    Raises:
        FitError: a config failed to fit; nothing of this file was logged or registered.
        TrackingError: MLflow failed (transient: worth a retry).
    """
    split = split or lab_split(lab)
    holdout = publish_holdout(lab, split)
    tracker = Tracker(lab.tracking_uri, lab.experiment)
    model_name = lab.spec.model_name
    pending: list[tuple[ClassifierConfig, Any, dict[str, float], list[str]]] = []
    done: dict[str, TrainedConfig] = {}
    for config in configs:
        key = _run_key(lab, config, split)
        existing = find_version(tracker, model_name, key)
        if existing is not None:  # a retry, or the same config dropped again
            done[config.name] = TrainedConfig(
                name=config.name, estimator=config.estimator, version=str(existing.version),
                created=False, run_id=existing.run_id or "", conveyor_run_id=key,
                model_uri=f"models:/{model_name}/{existing.version}")
            continue
        pending.append((config, *_fit(lab, config, split)))
    for config, model, metrics, notes in pending:
        done[config.name] = _log_and_register(
            lab, tracker, config, model, metrics, notes, split=split, holdout=holdout,
            file=file, sha256=sha256)
    return TrainResult(file=file, sha256=sha256, model_name=model_name,
                       configs=[done[c.name] for c in configs])


def _log_and_register(
    lab: Lab, tracker: Tracker, config: ClassifierConfig, model: Any,
    metrics: dict[str, float], notes: list[str], *, split: LabSplit, holdout: ArtifactRef,
    file: str, sha256: str,
) -> TrainedConfig:
    key = _run_key(lab, config, split)
    tags = {"conveyor.lab": lab.name, "conveyor.config.file": file,
            "conveyor.config.sha256": sha256, "conveyor.config.name": config.name,
            "conveyor.config.hash": config.config_hash, "conveyor.estimator": config.estimator}
    run_id = tracker.attach(key, tags=tags)
    status = "FAILED"
    try:
        tracker.set_tags({"mlflow.runName": f"{lab.name}-{config.name}"})
        tracker.log_params(flatten({"estimator": config.estimator, "params": config.params,
                                    "split": lab.spec.split.model_dump(mode="json")}))
        tracker.log_metrics(metrics)
        if notes:
            tracker.log_text("\n".join(notes) + "\n", "fit_warnings.txt")
        tracker.log_text(json.dumps(config.model_dump(mode="json"), indent=2, sort_keys=True),
                         "config.json")
        test = split.X_test.assign(**{TARGET: split.y_test.to_numpy()})
        tracker.log_dataset(test, source=holdout.uri, name=f"{lab.spec.data.name}-test",
                            digest=holdout.sha256, context="test", targets=TARGET)
        logged = tracker.log_sklearn_model(model, split.X_train.head(5))
        # the same evidence as a pipeline's register step (conveyor.tracking.registry)
        version, created = register_model(
            tracker, logged["model_uri"], lab.spec.model_name, key=key, conveyor_run_id=key,
            evidence=PromotionEvidence(holdout_uri=holdout.uri, holdout_sha256=holdout.sha256,
                                       holdout_target=TARGET, metrics=metrics),
            tags=tags,
        )
        status = "FINISHED"
    finally:
        tracker.end(status)
    log.info("%s: config %s -> %s version %s", file, config.name, lab.spec.model_name,
             version.version)
    return TrainedConfig(name=config.name, estimator=config.estimator,
                         version=str(version.version), created=created, run_id=run_id,
                         conveyor_run_id=key,
                         model_uri=f"models:/{lab.spec.model_name}/{version.version}",
                         metrics=metrics)


def train_file(lab: Lab, data: bytes, filename: str, *,
               split: LabSplit | None = None) -> TrainResult:
    """Parse, check, fit, log and register every config in one file's bytes.

    Raises:
        ConfigError: the file is not a valid config file (names file, line, key).
        FitError: a config failed to fit.
        TrackingError: MLflow failed.
    """
    configs = parse_config_bytes(data, filename)
    return train_configs(lab, configs, file=filename, sha256=hashlib.sha256(data).hexdigest(),
                         split=split)
