"""MLflow tracking: one MLflow run per Conveyor run, found again by a tag from any process.

Only this package imports mlflow. Everything goes through an explicit ``MlflowClient`` (no
fluent active-run state), so a local runner, an Airflow task on another worker and a retry
all attach to the same MLflow run. MLflow's process-wide tracking and registry URIs are never
left set: the few flavour calls that read them run inside :func:`mlflow_scope`, which sets
them and restores them afterwards (docs/decisions/0026-promotion-layer-and-scoped-mlflow.md).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import sqlite3
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from conveyor.errors import TrackingError
from conveyor.processes import restore_environ
from conveyor.store import home_dir
from conveyor.tracking.sqlite_tracking import (
    SqliteRunWriter,
    Unsupported,
    dataset_row,
    open_writer,
)
from conveyor.tracking.template import seed_database

__all__ = ["RUN_TAG", "Tracker", "dataset_schema", "default_tracking_uri", "flatten",
           "import_skops", "mlflow_scope", "one_line"]

log = logging.getLogger(__name__)

RUN_TAG = "conveyor.run_id"
_MAX_PARAM = 500
# One flavour call at a time may point MLflow's globals somewhere (see mlflow_scope).
_GLOBALS_LOCK = threading.RLock()
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
# Models carry explicit pip requirements; MLflow would otherwise copy whatever uv.lock sits
# in the working folder into every model. Read only while a model is logged or saved.
_FLAVOUR_ENV = {"MLFLOW_UV_AUTO_DETECT": "false", "MLFLOW_LOG_UV_FILES": "false"}
# Conveyor's defaults for MLflow's client, unless the user chose: MLflow's HTTP defaults take
# minutes to report an outage, and MLflow 3 reports usage to its maintainers unless told not
# to when it is first imported (MLFLOW_DISABLE_TELEMETRY=false turns it back on). MLflow reads
# them from os.environ at each request, so they are there only while a Conveyor call runs
# (see _client_env).
# MLflow's artifact progress bar (tqdm on stderr) would break into Conveyor's own step lines
# when register downloads the version it checks; a user who sets the variable keeps theirs.
_CLIENT_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
                    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
                    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
_ENV_LOCK = threading.Lock()
_env_users = 0
_env_saved: dict[str, str | None] = {}


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
def _client_env() -> Iterator[None]:
    """Put :data:`_CLIENT_DEFAULTS` in ``os.environ`` while at least one Conveyor call runs.

    Counted, so that calls in several threads overlap freely: the first to enter sets the
    defaults the user did not set, the last to leave puts ``os.environ`` back as it was.
    """
    global _env_users, _env_saved
    with _ENV_LOCK:
        if _env_users == 0:
            _env_saved = {name: os.environ.get(name) for name in _CLIENT_DEFAULTS}
            for name, value in _CLIENT_DEFAULTS.items():
                os.environ.setdefault(name, value)
        _env_users += 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            _env_users -= 1
            if _env_users == 0:
                restore_environ(_env_saved)




def _import_mlflow() -> None:
    """Import mlflow with telemetry off (decided once, at import), unless it is imported."""
    if "mlflow" not in sys.modules:
        with _client_env():
            import mlflow  # noqa: F401


class _ScopedClient:
    """An ``MlflowClient`` whose every call runs with Conveyor's client defaults."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            with _client_env():
                return attribute(*args, **kwargs)

        return call

    def __repr__(self) -> str:
        return f"_ScopedClient({self._client!r})"


@contextmanager
def mlflow_scope(uri: str | None = None) -> Iterator[None]:
    """Run one MLflow flavour call that reads MLflow's process-wide state, then restore it.

    ``mlflow.sklearn.log_model``, ``mlflow.pyfunc.load_model("models:/...")`` and artifact
    downloads of ``models:/`` URIs read the global tracking and registry URIs;
    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI`` (and the registry its
    variable). Inside this block both URIs are ``uri`` (when given) and the flavour's
    environment (:data:`_FLAVOUR_ENV`, unless the user set it) is set; on leaving, the
    previous URIs and the previous values of those variables (or their absence) are put back.
    A process-wide lock keeps two threads from interleaving, so two pipelines with different
    registries can run at once.
    """
    _import_mlflow()
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _GLOBALS_LOCK, _client_env():
        names = (*_URI_VARIABLES, *_FLAVOUR_ENV)
        saved_env = {name: os.environ.get(name) for name in names}
        # MLflow has no getter for "not set" (get_tracking_uri() resolves a default)
        saved_tracking = tracking_utils._tracking_uri
        saved_registry = registry_utils._registry_uri
        try:
            for name, value in _FLAVOUR_ENV.items():
                os.environ.setdefault(name, value)  # a user's own choice wins
            if uri is not None:
                mlflow.set_tracking_uri(uri)
                mlflow.set_registry_uri(uri)
            yield
        finally:
            if uri is not None:
                if tracking_utils._tracking_uri != saved_tracking:
                    mlflow.set_tracking_uri(saved_tracking)  # also resets the tracer's URI
                registry_utils._registry_uri = saved_registry
            restore_environ(saved_env)


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


# Importing skops.io builds its list of trusted scikit-learn types with sklearn's
# all_estimators(), which walks every sklearn package and so imports pytest (through
# sklearn.utils._testing) and dask.array (sklearn.externals.array_api_compat.dask): about 40 %
# of skops' import, ~0.7 s here, and the list needs neither. See import_skops.
_SKOPS_UNNEEDED = ("pytest", "dask")
_SKOPS_LOCK = threading.Lock()


def import_skops() -> Any:
    """``skops.io``, imported without the packages its type scan drags in but does not need.

    While ``skops.io`` is first imported, those of :data:`_SKOPS_UNNEEDED` not imported yet are
    unimportable (``sys.modules[name] = None``): ``pkgutil.walk_packages`` skips a package that
    fails to import and sklearn's testing helpers do without pytest, so skops' list of
    trusted types is the same (tests/unit/test_library_slow_paths.py checks it). They are importable
    again as soon as skops is loaded; a process that already uses them is left alone.
    """
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    with _SKOPS_LOCK:
        blocked = [name for name in _SKOPS_UNNEEDED if name not in sys.modules]
        for name in blocked:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            import skops.io
        finally:
            for name in blocked:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]
    return skops.io


def _trusted_types(model: Any) -> list[str]:
    """The skops types of a model *we just trained*, to record as trusted in its flavour.

    skops refuses types it does not know (numpy.dtype for imputers, sklearn's Tree for
    forests) unless the saver lists them. Only models Conveyor trained in this process are
    saved, and every later load checks the content hash recorded at save time first.
    """
    skops_io = import_skops()
    return sorted({"numpy.dtype", *skops_io.get_untrusted_types(data=skops_io.dumps(model))})


def dataset_schema(frame: Any) -> Any:
    """The MLflow schema of a table, as ``mlflow.data.from_pandas`` infers it, in vectorised
    time.

    MLflow decides whether each column is ``required`` (has no missing value) by calling a
    Python function on every cell: about 10 µs a cell here, a minute for 1M rows × 20
    columns, the largest cost of a big run. ``Series.isna().any()`` gives the same answer
    (None, NaN, ``pd.NA`` and ``NaT`` count as missing in both); each column's type is still
    MLflow's own inference.
    """
    from mlflow.types import ColSpec, Schema
    from mlflow.types.utils import _infer_pandas_column

    return Schema([ColSpec(type=_infer_pandas_column(frame[column]), name=column,
                           required=not bool(frame[column].isna().any()))
                   for column in frame.columns])


def _pip_requirements(model: Any = None) -> list[str]:
    """Pinned requirements of a model: inferring them costs ~6 s per log_model.

    The estimator's library is pinned by its installed distribution, which may be named
    otherwise than the module (``import xgboost`` from ``xgboost-cpu``).
    """
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    packages = ["mlflow", "scikit-learn", "pandas", "numpy", "scipy", "skops"]
    inner = getattr(model, "estimator", None)  # a decision-threshold wrapper (ADR 0041)
    if inner is not None and hasattr(inner, "steps"):
        model = inner
    estimator = model[-1] if hasattr(model, "steps") else model
    root = type(estimator).__module__.split(".", 1)[0] if estimator is not None else ""
    if root in ("xgboost", "lightgbm"):
        try:
            version(root)
            packages.append(root)
        except PackageNotFoundError:  # scanning every distribution costs ~0.2 s: only then
            packages += packages_distributions().get(root, [])[:1]
    out = []
    for name in packages:
        try:
            out.append(f"{name}=={version(name)}")
        except Exception:  # noqa: BLE001 - a missing optional package is simply not pinned
            continue
    return out


@contextmanager
def _pins_unchecked() -> Iterator[None]:
    """Skip MLflow's check that the installed packages satisfy the model's requirements while
    a model is saved: :func:`_pip_requirements` pins each one to the version installed here,
    so the check compares a version with itself. It lists every installed distribution to map
    modules to packages (``importlib.metadata.packages_distributions``): ~0.35 s of each
    saved model, and only a warning can come of it (ADR 0052). If MLflow no longer has the
    hook the save runs as before, check included."""
    from mlflow.utils import environment

    check = getattr(environment, "warn_dependency_requirement_mismatches", None)
    if check is None or check is _no_check:  # gone from MLflow, or another save has it off
        yield
        return
    environment.warn_dependency_requirement_mismatches = _no_check
    try:
        yield
    finally:
        environment.warn_dependency_requirement_mismatches = check


def _no_check(model_requirements: list[str]) -> None:
    """Stands in for MLflow's requirement check while a model is saved."""


class _NoPipVersionNotice(logging.Filter):
    """Drops MLflow's "Failed to resolve installed pip version" warning, logged on every saved
    model in an environment without pip (uv's virtual environments have none): the model's
    ``conda.yaml`` and ``python_env.yaml`` then list ``pip`` without a version, which is all
    the warning says, once per run, from the Python API where the CLI's quieting does not
    apply."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to resolve installed pip version")


def _quiet_pip_notice() -> None:
    logger = logging.getLogger("mlflow.utils.environment")
    if not any(isinstance(f, _NoPipVersionNotice) for f in logger.filters):
        logger.addFilter(_NoPipVersionNotice())


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

    def __repr__(self) -> str:
        return f"Tracker({self.uri!r}, experiment={self.experiment!r})"

    def _database(self) -> Path | None:
        """The embedded database's file, created first (seeded from the template, ADR 0043)
        under a lock beside it; ``None`` for any other store."""
        if not self.uri.startswith("sqlite:///"):
            return None
        database = Path(self.uri.removeprefix("sqlite:///"))
        database.parent.mkdir(parents=True, exist_ok=True)
        return database

    @contextmanager
    def _database_lock(self, database: Path) -> Iterator[None]:
        # Two processes creating the SQLite file at once both run MLflow's migrations and one
        # fails ("table alembic_version already exists"), on every retry: serialise the first
        # use with a lock file beside the database.
        with open(f"{database}.lock", "a+b") as handle:
            try:
                import fcntl

                fcntl.flock(handle, fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - no flock on Windows
                pass
            yield

    @cached_property
    def client(self) -> Any:
        """The MLflow client, built on first use (MLflow's global URIs are left alone)."""
        _import_mlflow()
        from mlflow import MlflowClient

        database = self._database()
        if database is None:
            return _ScopedClient(MlflowClient(tracking_uri=self.uri, registry_uri=self.uri))
        with self._database_lock(database):
            # A new database starts as a copy of the migrated template (ADR 0043), not by
            # running MLflow's migrations again in every home.
            seed_database(database)
            client = _ScopedClient(MlflowClient(tracking_uri=self.uri, registry_uri=self.uri))
            try:
                client.search_experiments(max_results=1)
                client.search_registered_models(max_results=1)
            except Exception as exc:
                raise TrackingError(f"MLflow at {self.uri} failed: {one_line(exc)}") from exc
        return client

    @cached_property
    def _writer(self) -> SqliteRunWriter | None:
        """The stdlib writer of the run-level calls on an embedded store at a schema revision
        it knows, or ``None``: then every call goes through :attr:`client` (ADR 0049)."""
        database = self._database()
        if database is None:
            return None
        if not database.is_file():
            with self._database_lock(database):
                seed_database(database)
        return open_writer(self.uri)

    def _direct(self, what: str, direct: Any, through_client: Any) -> Any:
        """``direct(writer)`` on the embedded store when the writer takes the call, else
        ``through_client()``; a SQLite failure becomes a one-line :class:`TrackingError`."""
        writer = self._writer
        if writer is not None:
            try:
                return direct(writer)
            except Unsupported as why:
                log.debug("%s through MlflowClient: %s", what, why)
            except sqlite3.Error as exc:
                raise TrackingError(f"{what} at MLflow {self.uri} failed: "
                                    f"{one_line(exc)}") from exc
        return through_client()

    def _artifact_root(self) -> str | None:
        """Where a new experiment keeps its artifacts: beside a SQLite database.

        ``mlartifacts/`` sits next to ``mlflow.db`` (``CONVEYOR_HOME`` for the default), so
        two registries in one process never share an artifact folder. Other stores decide.
        """
        folder = re.sub(r"[^A-Za-z0-9._-]", "_", self.experiment).lstrip(".") or "default"
        if self.uri.startswith("sqlite:///"):
            base = Path(self.uri.removeprefix("sqlite:///")).parent
        elif self.uri.startswith("sqlite:") or "://" not in self.uri:
            base = home_dir()
        else:
            return None
        return (base / "mlartifacts" / folder).as_uri()

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call the client; an MLflow failure becomes a one-line :class:`TrackingError`."""
        try:
            return fn(*args, **kwargs)
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"{what} at MLflow {self.uri} failed: {one_line(exc)}") from exc

    @cached_property
    def experiment_id(self) -> str:
        return self._direct("reading the experiment",
                            lambda w: w.experiment_id(self.experiment, self._artifact_root()),
                            self._client_experiment_id)

    def _client_experiment_id(self) -> str:
        client = self.client
        try:
            found = client.get_experiment_by_name(self.experiment)
            if found is not None:
                return found.experiment_id
            return client.create_experiment(self.experiment,
                                            artifact_location=self._artifact_root())
        except Exception as exc:
            if "already exists" in str(exc):  # a concurrent creator won the race
                return self._call("reading the experiment", lambda: client.get_experiment_by_name(
                    self.experiment).experiment_id)
            raise TrackingError(f"MLflow at {self.uri} failed: {one_line(exc)}") from exc

    # ------------------------------------------------------------------ runs
    def attach(self, conveyor_run_id: str, *, tags: dict[str, str]) -> str:
        """Find the MLflow run of ``conveyor_run_id`` by tag, or create it; mark it running."""
        self.run_id = self._direct("attaching the run",
                                   lambda w: self._attach_direct(w, conveyor_run_id, tags),
                                   lambda: self._attach_client(conveyor_run_id, tags))
        return self.run_id

    def _attach_direct(self, writer: SqliteRunWriter, conveyor_run_id: str,
                       tags: dict[str, str]) -> str:
        experiment_id = self.experiment_id
        found = writer.find_run(experiment_id, RUN_TAG, conveyor_run_id)
        if found is None:
            return writer.create_run(experiment_id, conveyor_run_id,
                                     {RUN_TAG: conveyor_run_id, **tags})
        run_id, status = found
        if status != "RUNNING":
            writer.set_status(run_id, "RUNNING")
        return run_id

    def _attach_client(self, conveyor_run_id: str, tags: dict[str, str]) -> str:
        client = self.client
        from mlflow.entities import RunStatus

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
            raise TrackingError(f"MLflow at {self.uri} failed: {one_line(exc)}") from exc
        return run.info.run_id

    def _need_run(self) -> str:
        if self.run_id is None:
            raise TrackingError("no MLflow run attached; call attach() first")
        return self.run_id

    def existing_params(self) -> dict[str, str]:
        run_id = self._need_run()
        return self._direct("reading the run", lambda w: w.params(run_id),
                            lambda: dict(self._call("reading the run", self.client.get_run,
                                                    run_id).data.params))

    def log_params(self, params: dict[str, str]) -> None:
        """Log params not yet logged (MLflow params are immutable; a re-run logs nothing new)."""
        have = self.existing_params()
        new = [(k, v) for k, v in params.items() if k not in have]
        for start in range(0, len(new), 100):
            self._log_params(dict(new[start:start + 100]))

    def _log_params(self, params: dict[str, str]) -> None:
        def through_client() -> None:
            from mlflow.entities import Param

            self._call("logging params", self.client.log_batch, run_id,
                       params=[Param(k, v) for k, v in params.items()])

        run_id = self._need_run()
        self._direct("logging params", lambda w: w.log_params(run_id, params), through_client)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        import time

        def through_client() -> None:
            from mlflow.entities import Metric

            batch = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
            self._call("logging metrics", self.client.log_batch, run_id, metrics=batch)

        if not metrics:
            return
        run_id = self._need_run()
        now = int(time.time() * 1000)
        self._direct("logging metrics",
                     lambda w: w.log_metrics(run_id, metrics, timestamp=now), through_client)

    def set_tags(self, tags: dict[str, str]) -> None:
        def through_client() -> None:
            from mlflow.entities import RunTag

            self._call("setting tags", self.client.log_batch, run_id,
                       tags=[RunTag(k, str(v)) for k, v in tags.items()])

        if not tags:
            return
        run_id = self._need_run()
        self._direct("setting tags", lambda w: w.set_tags(run_id, tags), through_client)

    def log_text(self, text: str, artifact_file: str) -> None:
        run_id = self._need_run()
        self._direct(f"logging {artifact_file}",
                     lambda w: w.log_artifact_bytes(run_id, text.encode("utf-8"), artifact_file),
                     lambda: self._call(f"logging {artifact_file}", self.client.log_text,
                                        run_id, text, artifact_file))

    def log_bytes(self, data: bytes, artifact_file: str) -> None:
        def through_client() -> None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / Path(artifact_file).name
                path.write_bytes(data)
                folder = str(Path(artifact_file).parent)
                self._call(f"logging {artifact_file}", self.client.log_artifact, run_id,
                           str(path), None if folder == "." else folder)

        run_id = self._need_run()
        self._direct(f"logging {artifact_file}",
                     lambda w: w.log_artifact_bytes(run_id, data, artifact_file),
                     through_client)

    def log_dataset(self, frame: Any, *, source: str, name: str, digest: str, context: str,
                    targets: str | None = None, rows: int | None = None) -> None:
        """Record a table as an MLflow dataset input of the run.

        ``frame`` may be the first rows only (a table read in chunks); ``rows`` is then the
        whole table's count, which the dataset's profile reports. On the embedded store a
        dataset already in the experiment (a re-run on the same data) is linked without
        describing it again, so MLflow is not imported (ADR 0049).
        """
        def describe() -> Any:
            return self._dataset_entity(frame, source=source, name=name, digest=digest,
                                        targets=targets, rows=rows)

        def through_client() -> None:
            from mlflow.entities import DatasetInput, InputTag

            self._call("logging the dataset", self.client.log_inputs, run_id,
                       datasets=[DatasetInput(describe(), tags=[
                           InputTag("mlflow.data.context", context)])])

        run_id = self._need_run()
        self._direct("logging the dataset", lambda w: w.log_dataset(
            run_id, name=name, digest=digest[:36], context=context,
            describe=lambda: dataset_row(describe())), through_client)

    @staticmethod
    def _dataset_entity(frame: Any, *, source: str, name: str, digest: str,
                        targets: str | None, rows: int | None) -> Any:
        """MLflow's dataset entity of ``frame`` (its schema inferred in vectorised time)."""
        _import_mlflow()
        import mlflow.data
        from mlflow.data.code_dataset_source import CodeDatasetSource

        if targets is not None and targets not in frame.columns:
            targets = None
        known = source.split("://", 1)[0] in ("file", "s3", "gs", "http", "https", "hf")
        try:
            dataset = mlflow.data.from_pandas(
                frame, source=source if known else CodeDatasetSource(tags={"uri": source}),
                name=name, targets=targets, digest=digest[:36])
            dataset.__dict__["schema"] = dataset_schema(frame)  # its cached_property, filled
            entity = dataset._to_mlflow_entity()
            if rows is not None:
                entity._profile = json.dumps(
                    {"num_rows": rows, "num_elements": rows * len(frame.columns)})
        except Exception as exc:
            raise TrackingError(f"describing dataset {name!r} for MLflow failed: "
                                f"{one_line(exc)}") from exc
        return entity

    def end(self, status: str = "FINISHED") -> None:
        """End the MLflow run (FINISHED, FAILED or KILLED)."""
        import time

        run_id = self.run_id
        if run_id is not None:
            self._direct("ending the run", lambda w: w.set_status(
                run_id, status, end_time=int(time.time() * 1000)),
                lambda: self._call("ending the run", self.client.set_terminated, run_id,
                                   status=status))

    # ------------------------------------------------------------------ models
    def log_sklearn_model(self, model: Any, example: Any, *, name: str = "model",
                          extra_files: Mapping[str, bytes] | None = None,
                          folder: Path | None = None) -> dict[str, str]:
        """Save an sklearn model once, in MLflow's format, and log that folder to the run.

        The model is serialised once (skops, signature, input example, explicit
        requirements) into ``folder`` with the logged model's ids in its ``MLmodel``, and the
        same files become the run's logged model: a caller that keeps ``folder`` (train puts
        it in the Store) holds byte for byte what the registry serves
        (docs/decisions/0043-first-run-cost.md; it replaces 0009's second save).
        ``extra_files`` (file name -> bytes) are written into the folder, so a registered
        version downloads them with the model and its digest covers them (the reference
        profile, docs/decisions/0035).

        Args:
            folder: where to save the model (must not exist); a temporary folder if ``None``.

        Returns:
            ``model_uri`` (``models:/<model_id>``) and ``model_id``.
        """
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus
        from mlflow.models import Model

        run_id = self._need_run()
        client = self.client
        try:
            # Created here so the logged model lands in the run's experiment (MLflow would
            # otherwise use the fluent "active" experiment: Default, under ./mlruns).
            logged = client.create_logged_model(
                experiment_id=self.experiment_id, name=name, source_run_id=run_id)
        except Exception as exc:
            raise TrackingError(f"logging the model to MLflow at {self.uri} failed: "
                                f"{one_line(exc)}") from exc
        model_id = logged.model_id
        try:
            with contextlib.ExitStack() as stack:
                if folder is None:
                    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(
                        prefix="conveyor-model-"))) / name
                # what mlflow.sklearn.log_model records in MLmodel, written once
                described = Model(artifact_path=logged.artifact_location, model_uuid=model_id,
                                  run_id=run_id, model_id=model_id)
                self.save_sklearn_model(model, example, Path(folder), extra_files=extra_files,
                                        mlflow_model=described)
                client.log_outputs(run_id, [LoggedModelOutput(model_id, step=0)])
                client.log_model_artifacts(model_id, str(folder))
        except Exception as exc:
            with contextlib.suppress(Exception):  # the failure below is the one to report
                client.finalize_logged_model(model_id, LoggedModelStatus.FAILED)
            if isinstance(exc, TrackingError):
                raise
            raise TrackingError(f"logging the model to MLflow at {self.uri} failed: "
                                f"{one_line(exc)}") from exc
        self._call("finishing the logged model", client.finalize_logged_model, model_id,
                   LoggedModelStatus.READY)
        return {"model_uri": f"models:/{model_id}", "model_id": model_id}

    @staticmethod
    def save_sklearn_model(model: Any, example: Any, path: Path,
                           extra_files: Mapping[str, bytes] | None = None, *,
                           mlflow_model: Any = None) -> None:
        """Save an sklearn model in MLflow's format to a local folder, with ``extra_files``
        (file name -> bytes) beside its files; ``mlflow_model`` (an ``mlflow.models.Model``)
        carries the ids of a logged model into ``MLmodel``."""
        _import_mlflow()
        import mlflow.sklearn
        from mlflow.models import infer_signature

        signature = infer_signature(example, model.predict(example))
        _quiet_pip_notice()
        try:
            with mlflow_scope(), _skops_quietly(), _pins_unchecked():
                mlflow.sklearn.save_model(
                    model, str(path), mlflow_model=mlflow_model, signature=signature,
                    input_example=example,
                    pip_requirements=_pip_requirements(model),
                    skops_trusted_types=_trusted_types(model),
                )
        except Exception as exc:
            raise TrackingError(f"saving the model to {path} failed: {one_line(exc)}") from exc
        for file_name, data in (extra_files or {}).items():
            (Path(path) / file_name).write_bytes(data)

    @staticmethod
    def load_sklearn_model(path: Path) -> Any:
        """Load a model saved by :meth:`save_sklearn_model` (its hash checked by the Store)."""
        _import_mlflow()
        import mlflow.sklearn

        try:
            with _skops_quietly():
                return mlflow.sklearn.load_model(str(path))
        except Exception as exc:
            raise TrackingError(f"loading the model from {path} failed: {one_line(exc)}") \
                from exc


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first 300 characters of its message."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"
