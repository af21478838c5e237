"""MLflow tracking: one MLflow run per Conveyor run, found again by a tag from any process.

Only this package imports mlflow. Everything goes through an explicit ``MlflowClient`` (no
fluent active-run state), so a local runner, an Airflow task on another worker and a retry
all attach to the same MLflow run.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from conveyor.errors import TrackingError
from conveyor.store import home_dir

__all__ = ["RUN_TAG", "Tracker", "default_tracking_uri", "flatten"]

log = logging.getLogger(__name__)

RUN_TAG = "conveyor.run_id"
_MAX_PARAM = 500


def default_tracking_uri() -> str:
    """The embedded default: a SQLite file under ``CONVEYOR_HOME``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home_dir() / 'mlflow.db'}"


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Flatten nested spec data to ``a.b.c`` -> string, for MLflow params."""
    out: dict[str, str] = {}
    if isinstance(data, dict) and data:
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    else:
        text = data if isinstance(data, str) else json.dumps(data, default=str)
        if len(text) > _MAX_PARAM:
            text = text[: _MAX_PARAM - 3] + "..."
        out[prefix.rstrip(".")] = text
    return out


@contextmanager
def _skops_quietly() -> Iterator[None]:
    """Silence the warnings skops' module scan provokes while it (de)serialises a model.

    To name a function without ``__module__`` (numpy and scipy ufuncs), skops' copy of
    pickle's ``whichmodule`` calls ``getattr(module, name)`` on every module in
    ``sys.modules``. Inside an Airflow task that includes Airflow's deprecated import shims,
    each of which warns: 1,160 warning lines in every ``train`` and ``evaluate`` task log.
    Only warnings attributed to that skops module are dropped.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"skops\.io\._utils")
        yield


def _trusted_types(model: Any) -> list[str]:
    """The skops types of a model *we just trained*, to record as trusted in its flavour.

    skops refuses types it does not know (numpy.dtype for imputers, sklearn's Tree for
    forests) unless the saver lists them. Only models Conveyor trained in this process are
    saved, and every later load checks the content hash recorded at save time first.
    """
    import skops.io

    return sorted({"numpy.dtype", *skops.io.get_untrusted_types(data=skops.io.dumps(model))})


def _pip_requirements(model: Any = None) -> list[str]:
    """Pinned requirements of a model: inferring them costs ~6 s per log_model."""
    from importlib.metadata import version

    packages = ["mlflow", "scikit-learn", "pandas", "numpy", "scipy", "skops"]
    estimator = model[-1] if hasattr(model, "steps") else model
    root = type(estimator).__module__.split(".", 1)[0] if estimator is not None else ""
    if root in ("xgboost", "lightgbm"):
        packages.append(root)
    out = []
    for name in packages:
        try:
            out.append(f"{name}=={version(name)}")
        except Exception:  # noqa: BLE001 - a missing optional package is simply not pinned
            continue
    return out


class Tracker:
    """MLflow tracking and registry for one pipeline.

    Args:
        uri: the tracking URI; ``None`` means the embedded SQLite default.
        experiment: the experiment name.
    """

    def __init__(self, uri: str | None, experiment: str) -> None:
        self.uri = uri or default_tracking_uri()
        self.experiment = experiment
        self.run_id: str | None = None
        # MLflow's defaults take minutes to report an outage: bound them unless the user chose.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        # Models carry explicit pip requirements; MLflow would otherwise copy whatever
        # uv.lock sits in the working folder into every model.
        os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
        os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
        # MLflow 3 reports usage to its maintainers unless told not to (read at each event);
        # MLFLOW_DISABLE_TELEMETRY=false turns it back on.
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    def __repr__(self) -> str:
        return f"Tracker({self.uri!r}, experiment={self.experiment!r})"

    @cached_property
    def client(self) -> Any:
        """The MLflow client, built on first use."""
        import mlflow
        from mlflow import MlflowClient

        # The model flavours log through the fluent API, which reads the global URI.
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        if not self.uri.startswith("sqlite:///"):
            return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        database = Path(self.uri.removeprefix("sqlite:///"))
        database.parent.mkdir(parents=True, exist_ok=True)
        # Two processes creating the SQLite file at once both run MLflow's migrations and one
        # fails ("table alembic_version already exists"), on every retry: serialise the first
        # use with a lock file beside the database.
        with open(f"{database}.lock", "a+b") as handle:
            try:
                import fcntl

                fcntl.flock(handle, fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - no flock on Windows
                pass
            client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        return client

    @cached_property
    def experiment_id(self) -> str:
        client = self.client
        try:
            found = client.get_experiment_by_name(self.experiment)
            if found is not None:
                return found.experiment_id
            location = None
            if self.uri.startswith("sqlite:") or "://" not in self.uri:
                folder = re.sub(r"[^A-Za-z0-9._-]", "_", self.experiment).lstrip(".") or "default"
                location = (home_dir() / "mlartifacts" / folder).as_uri()
            return client.create_experiment(self.experiment, artifact_location=location)
        except Exception as exc:
            if "already exists" in str(exc):  # a concurrent creator won the race
                return client.get_experiment_by_name(self.experiment).experiment_id
            raise TrackingError(f"MLflow at {self.uri} failed: {exc}") from exc

    # ------------------------------------------------------------------ runs
    def attach(self, conveyor_run_id: str, *, tags: dict[str, str]) -> str:
        """Find the MLflow run of ``conveyor_run_id`` by tag, or create it; mark it running."""
        from mlflow.entities import RunStatus

        client = self.client
        try:
            found = client.search_runs(
                [self.experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{conveyor_run_id}'",
                max_results=2, order_by=["attributes.start_time ASC"],
            )
            if found:
                run = found[0]
                if run.info.status != "RUNNING":
                    client.update_run(run.info.run_id, status=RunStatus.to_string(
                        RunStatus.RUNNING))
            else:
                run = client.create_run(
                    self.experiment_id, run_name=conveyor_run_id,
                    tags={RUN_TAG: conveyor_run_id, **tags},
                )
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"MLflow at {self.uri} failed: {exc}") from exc
        self.run_id = run.info.run_id
        return self.run_id

    def _need_run(self) -> str:
        if self.run_id is None:
            raise TrackingError("no MLflow run attached; call attach() first")
        return self.run_id

    def existing_params(self) -> dict[str, str]:
        return dict(self.client.get_run(self._need_run()).data.params)

    def log_params(self, params: dict[str, str]) -> None:
        """Log params not yet logged (MLflow params are immutable; a re-run logs nothing new)."""
        from mlflow.entities import Param

        have = self.existing_params()
        new = [Param(k, v) for k, v in params.items() if k not in have]
        for start in range(0, len(new), 100):
            self.client.log_batch(self._need_run(), params=new[start:start + 100])

    def log_metrics(self, metrics: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(self._need_run(), metrics=batch)

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        if tags:
            self.client.log_batch(self._need_run(),
                                  tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self._need_run(), text, artifact_file)

    def log_bytes(self, data: bytes, artifact_file: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            path.write_bytes(data)
            folder = str(Path(artifact_file).parent)
            self.client.log_artifact(self._need_run(), str(path),
                                     None if folder == "." else folder)

    def log_dataset(self, frame: Any, *, source: str, name: str, digest: str, context: str,
                    targets: str | None = None) -> None:
        """Record a table as an MLflow dataset input of the run."""
        import mlflow.data
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.entities import DatasetInput, InputTag

        if targets is not None and targets not in frame.columns:
            targets = None
        known = source.split("://", 1)[0] in ("file", "s3", "gs", "http", "https", "hf")
        dataset = mlflow.data.from_pandas(
            frame, source=source if known else CodeDatasetSource(tags={"uri": source}),
            name=name, targets=targets, digest=digest[:36])
        self.client.log_inputs(self._need_run(), datasets=[DatasetInput(
            dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)])])

    def end(self, status: str = "FINISHED") -> None:
        """End the MLflow run (FINISHED, FAILED or KILLED)."""
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status=status)

    # ------------------------------------------------------------------ models
    def log_sklearn_model(self, model: Any, example: Any, *, name: str = "model") -> dict[str, str]:
        """Log an sklearn model with signature and input example to the attached run.

        Returns:
            ``model_uri`` (``models:/<model_id>``) and ``model_id``.
        """
        import mlflow.sklearn
        from mlflow.models import infer_signature

        run_id = self._need_run()
        signature = infer_signature(example, model.predict(example))
        try:
            # Created here so the logged model lands in the run's experiment (MLflow would
            # otherwise use the fluent "active" experiment: Default, under ./mlruns).
            logged = self.client.create_logged_model(
                experiment_id=self.experiment_id, name=name, source_run_id=run_id)
            with _skops_quietly():
                info = mlflow.sklearn.log_model(
                    model, name=name, run_id=run_id, model_id=logged.model_id,
                    signature=signature, input_example=example,
                    pip_requirements=_pip_requirements(model),
                    skops_trusted_types=_trusted_types(model),
                )
        except Exception as exc:
            raise TrackingError(f"logging the model to MLflow at {self.uri} failed: {exc}") \
                from exc
        return {"model_uri": info.model_uri, "model_id": info.model_id or ""}

    @staticmethod
    def save_sklearn_model(model: Any, example: Any, path: Path) -> None:
        """Save an sklearn model in MLflow's format to a local folder (for the Store)."""
        import mlflow.sklearn
        from mlflow.models import infer_signature

        signature = infer_signature(example, model.predict(example))
        with _skops_quietly():
            mlflow.sklearn.save_model(
                model, str(path), signature=signature, input_example=example,
                pip_requirements=_pip_requirements(model),
                skops_trusted_types=_trusted_types(model),
            )

    @staticmethod
    def load_sklearn_model(path: Path) -> Any:
        """Load a model saved by :meth:`save_sklearn_model` (its hash checked by the Store)."""
        import mlflow.sklearn

        with _skops_quietly():
            return mlflow.sklearn.load_model(str(path))
