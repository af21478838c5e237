"""Train the configs of one file on the lab's data set; log and register each in MLflow.

Reading, checking and fitting a file's configs depend only on its bytes and run in a child
process under the lab's per-file time limit (:mod:`conveyor.lab.worker`); logging and
registering talk to MLflow and the Store and run here, after every config of the file was
fitted: a file whose third config fails to fit (or runs out of time) registers nothing.
Each config is one MLflow run and one version of the lab's registered model, whose
registration key is derived from the config's hash and the split (training is deterministic:
the same config on the same split is the same model): a retry, a re-run or the same config
dropped again finds its version instead of adding one (see
:func:`conveyor.tracking.register_model`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from conveyor.errors import ConveyorError, TrackingError
from conveyor.lab.configs import ClassifierConfig
from conveyor.lab.spec import Lab
from conveyor.lab.worker import FitError, Fitted, FitWorker, TimeLimitError
from conveyor.modeling.training import split_table, split_xy
from conveyor.monitoring.profile import PROFILE_FILE, build_profile, profile_bytes
from conveyor.sources.bundled import read_sklearn_source
from conveyor.store import ArtifactRef
from conveyor.tracking import (
    PromotionEvidence,
    Tracker,
    find_version,
    flatten,
    register_model,
)

__all__ = ["FitError", "LabSplit", "TimeLimitError", "TrainResult", "TrainedConfig",
           "fit_worker", "lab_split", "publish_holdout", "train_file"]

log = logging.getLogger(__name__)
TARGET = "target"


@dataclass(frozen=True)
class LabSplit:
    """The lab's stratified train/test split (the test part is the promotion's hold-out)."""

    X_train: Any
    X_test: Any
    y_train: Any
    y_test: Any
    key: str
    seed: int = 0

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
    """Load the lab's bundled data set and split it as a pipeline's ``split`` step would.

    :func:`conveyor.modeling.training.split_table` with the lab's ``split:`` (stratified,
    seeded), so a pipeline spec with the same data and split trains and tests on the same rows.
    """
    frame, _ = read_sklearn_source(lab.spec.data)
    features = [c for c in frame.columns if c != TARGET]
    train, test = split_table(frame, TARGET, lab.spec.split)
    X_train, y_train = split_xy(train, features, TARGET)
    X_test, y_test = split_xy(test, features, TARGET)
    key_data = {"data": lab.spec.data.model_dump(mode="json"),
                "split": lab.spec.split.model_dump(mode="json"),
                "preprocess": lab.spec.preprocess.model_dump(mode="json")}
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()
    return LabSplit(X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test, key=key,
                    seed=lab.spec.split.seed)


def publish_holdout(lab: Lab, split: LabSplit) -> ArtifactRef:
    """Write the hold-out set to the Store once (``{lab}/_holdout/<split key>.parquet``).

    Every version trained with this split is tagged with its URI and hash, so a promotion
    scores all of them on the same rows.
    """
    store = lab.store()
    frame = split.X_test.assign(**{TARGET: split.y_test.to_numpy()}).reset_index(drop=True)
    return store.put_table_once(store.uri(lab.name, "_holdout", f"{split.key[:24]}.parquet"),
                                frame)


def _run_key(lab: Lab, config: ClassifierConfig, split: LabSplit) -> str:
    return f"{lab.name}-{config.config_hash[:20]}-{split.key[:8]}"


def fit_worker(lab: Lab) -> FitWorker:
    """A :class:`~conveyor.lab.worker.FitWorker` with the lab's per-file time limit."""
    return FitWorker(time_limit=lab.spec.watch.file_time_limit_seconds)


@contextlib.contextmanager
def _worker(lab: Lab, given: FitWorker | None) -> Iterator[FitWorker]:
    if given is not None:
        yield given
        return
    with fit_worker(lab) as worker:
        yield worker


@contextlib.contextmanager
def _mlflow(what: str) -> Iterator[None]:
    """Turn a foreign exception from MLflow or the Store into a retryable TrackingError.

    Whatever fails here is not the config's fault (it was fitted and scored already): the
    file must not be rejected for it.
    """
    try:
        yield
    except ConveyorError:
        raise
    except Exception as exc:
        raise TrackingError(f"{what} failed: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class _Prepared:
    split: LabSplit
    holdout: ArtifactRef
    tracker: Tracker


def _prepare(lab: Lab, split: LabSplit | None) -> _Prepared:
    """The split, its hold-out in the Store and a connected tracker.

    Done before the first request to the child, so that MLflow's import and connection here
    overlap the child's own start (scikit-learn, pandas) instead of following it.
    """
    split = split or lab_split(lab)
    holdout = publish_holdout(lab, split)
    tracker = Tracker(lab.tracking_uri, lab.experiment)
    with _mlflow(f"connecting to MLflow at {tracker.uri}"):
        _ = tracker.experiment_id
    return _Prepared(split=split, holdout=holdout, tracker=tracker)


def _train(lab: Lab, configs: list[ClassifierConfig], prepared: _Prepared, *, file: str,
           sha256: str, worker: FitWorker) -> TrainResult:
    split, holdout, tracker = prepared.split, prepared.holdout, prepared.tracker
    model_name = lab.spec.model_name
    pending: list[tuple[ClassifierConfig, Fitted]] = []
    done: dict[str, TrainedConfig] = {}
    for config in configs:
        key = _run_key(lab, config, split)
        with _mlflow(f"looking up {model_name!r} in the MLflow registry"):
            existing = find_version(tracker, model_name, key)
        if existing is not None:  # a retry, or the same config dropped again
            done[config.name] = TrainedConfig(
                name=config.name, estimator=config.estimator, version=str(existing.version),
                created=False, run_id=existing.run_id or "", conveyor_run_id=key,
                model_uri=f"models:/{model_name}/{existing.version}")
            continue
        pending.append((config, worker.fit(config, split, lab.spec.preprocess)))
    for config, fitted in pending:
        with _mlflow(f"logging config {config.name!r} of {file} to MLflow"):
            done[config.name] = _log_and_register(
                lab, tracker, config, fitted.model, fitted.metrics, fitted.notes, split=split,
                holdout=holdout, file=file, sha256=sha256)
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
        # the reference profile for monitoring, inside the logged model (ADR 0035)
        profile = build_profile(split.X_train, list(split.X_train.columns),
                                model.predict(split.X_train),
                                classes=getattr(model, "classes_", None), target=TARGET)
        logged = tracker.log_sklearn_model(model, split.X_train.head(5),
                                           extra_files={PROFILE_FILE: profile_bytes(profile)})
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


def train_file(lab: Lab, data: bytes, filename: str, *, split: LabSplit | None = None,
               worker: FitWorker | None = None) -> TrainResult:
    """Parse, check, fit, log and register every config in one file's bytes.

    Reading, checking and fitting run in ``worker`` (a child process; one is started for
    this call when omitted) and together may take at most the lab's
    ``watch.file_time_limit_seconds``.

    Raises:
        ConfigError: the file is not a valid config file (names file, line, key).
        FitError: a config failed to fit.
        TimeLimitError: reading and fitting took longer than the lab's per-file limit.
        TrackingError: MLflow failed.
    """
    with _worker(lab, worker) as fitter:
        fitter.start()  # it imports while this process connects to MLflow
        fitter.start_file(filename)
        prepared = _prepare(lab, split)
        configs = fitter.read(data, filename)
        return _train(lab, configs, prepared, file=filename,
                      sha256=hashlib.sha256(data).hexdigest(), worker=fitter)
