"""The public Python API, re-exported by :mod:`conveyor`: what the ``conveyor`` command calls.

Each function imports what it needs when it is called, so ``import conveyor`` stays cheap.
Outcomes are the CLI's (docs/decisions/0028): bad input raises a
:class:`~conveyor.errors.BadInputError` (the CLI's exit 2), a failure another
:class:`~conveyor.errors.ConveyorError` (exit 1), and a model the gate rejected is a
:class:`RunResult` with ``status == "rejected"`` (exit 3 when nothing was published;
:meth:`RunResult.raise_for_status` turns it into a
:class:`~conveyor.errors.GateRejectedError`).

Every function takes ``home``: the folder the embedded default writes to (the Store under
``home/artifacts``, MLflow in ``home/mlflow.db``, exports under ``home/exports``). Without it,
``CONVEYOR_HOME`` if set, else the nearest project folder from the spec's folder, as for the
CLI (docs/decisions/0024).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from conveyor.lab.spec import Lab
    from conveyor.lab.watcher import InboxReport
    from conveyor.monitoring.check import MonitorResult
    from conveyor.promotion import PromotionDecision, RollbackResult
    from conveyor.runners.executor import StepRecord
    from conveyor.serving.batch import ScoreResult
    from conveyor.spec import LoadedSpec

__all__ = ["RunResult", "RunStatus", "load_spec", "monitor", "process_inbox", "promote",
           "rollback", "run", "score", "serve", "validate"]
__all__ += ["accept_schema"]  # issue 12: the saved schema of a pipeline

PathLike = str | os.PathLike[str]
#: ``ok`` passed the gate and published; ``rejected`` the gate rejected the model (the run
#: completed); ``partial`` the run stopped as asked (``until``) and can be continued.
RunStatus = Literal["ok", "rejected", "partial"]
#: ``on_event(kind, step, record)``: ``("start", step, None)`` then ``("end", step, record)``.
EventCallback = Callable[[str, str, "StepRecord | None"], None]


@contextlib.contextmanager
def _home(home: PathLike | None, *starts: Path) -> Iterator[None]:
    """The home for the call: ``home``, else the one the CLI would choose from ``starts``.

    Given through :func:`conveyor.store.use_home` (a context variable), never through
    ``os.environ``: two calls with different homes may run at once in two threads.
    """
    from conveyor.store import use_home
    from conveyor.store.artifacts import locate_home

    chosen = Path(home) if home is not None else locate_home(*starts).path
    with use_home(chosen):
        yield


def _folder(path: PathLike) -> list[Path]:
    file = Path(path)
    return [file.resolve().parent] if file.is_file() else []


def load_spec(path: PathLike, overrides: Iterable[str] = (), *,
              profile: str | None = None) -> LoadedSpec:
    """Read, layer and validate a pipeline spec (no data read, nothing written).

    Args:
        path: the spec file (YAML).
        overrides: dotted ``KEY=VALUE`` overrides, applied last (``model.params.C=0.3``).
        profile: overlay ``<stem>.<profile>.yaml`` from the same folder.

    Returns:
        The frozen spec (``.spec``), its ``spec_hash`` and provenance.

    Raises:
        SpecError: the spec is invalid; the message names the file, line and key.

    Example:
        >>> import conveyor
        >>> loaded = conveyor.load_spec("examples/breast_cancer/pipeline.yaml",
        ...                             ["model.params.C=0.5"], profile="sklearn")
        >>> loaded.spec.name, loaded.spec.data.source, loaded.spec.model.params["C"]
        ('breast_cancer', 'sklearn', 0.5)
        >>> conveyor.load_spec("examples/breast_cancer/pipeline.yaml", ["model.nope=1"])
        Traceback (most recent call last):
        ...
        conveyor.errors.SpecError: ...model.nope: unknown key...
    """
    from conveyor.spec import load_spec as _load

    return _load(path, overrides, profile=profile)


def validate(path: PathLike, overrides: Iterable[str] = (), *,
             profile: str | None = None) -> LoadedSpec | Lab:
    """Check a spec as ``conveyor validate`` does: shape, estimator, parameters, data file.

    A lab spec (one with ``watch:``) is checked as a lab and returned as a
    :class:`~conveyor.lab.spec.Lab`.

    Raises:
        SpecError: the spec (or the estimator, its parameters, a missing data file) is wrong.

    Example:
        >>> import conveyor
        >>> conveyor.validate("examples/breast_cancer/pipeline.yaml",
        ...                   profile="sklearn").spec.model.estimator
        'logistic_regression'
        >>> conveyor.validate("examples/iris_lab/lab.yaml").spec.model_name
        'iris_classifier'
    """
    if is_lab_spec(path):
        from conveyor.errors import SpecError
        from conveyor.lab.spec import load_lab

        if list(overrides) or profile:
            raise SpecError("a lab spec takes no overrides or --profile", file=str(path))
        return load_lab(path)
    if _is_collection_spec(path):  # issue 12: a collection spec (collect:), ADR 0045
        from conveyor.errors import SpecError
        from conveyor.sources.collect import load_collection

        if list(overrides) or profile:
            raise SpecError("a collection spec takes no overrides or --profile", file=str(path))
        return load_collection(path)
    from conveyor.steps import check_spec

    loaded = load_spec(path, overrides, profile=profile)
    check_spec(loaded)
    return loaded


def is_lab_spec(path: PathLike) -> bool:
    """A lab spec has ``watch:`` (its inbox) and no pipeline ``model:``; errors are the loaders'."""
    from conveyor.errors import SpecError
    from conveyor.spec import read_yaml

    try:
        data, _ = read_yaml(Path(path))
    except SpecError:
        return False  # the pipeline loader reports it, with file and line
    return isinstance(data, dict) and "watch" in data and "model" not in data


def _is_collection_spec(path: PathLike) -> bool:
    """A collection spec has ``collect:`` and no pipeline ``model:`` (issue 12)."""
    from conveyor.errors import SpecError
    from conveyor.spec import read_yaml

    try:
        data, _ = read_yaml(Path(path))
    except SpecError:
        return False
    return isinstance(data, dict) and "collect" in data and "model" not in data


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` did: one pipeline run, as ``conveyor run`` and ``conveyor show`` see it.

    Attributes:
        run_id: the run's id (``--run-id`` continues it).
        pipeline: the spec's ``name``.
        status: ``ok``, ``rejected`` (the gate's verdict; the run completed) or ``partial``
            (stopped after ``until``; continue with ``run(..., run_id=..., start=...)``).
        metrics: every metric the run computed (``test_f1``, ...).
        model_uri: the registered version (``models:/name/3``), or ``None``.
        manifest_uri: the run's manifest, written last (``None`` for a partial run).
        run_uri: the run's folder in the Store.
        mlflow_run_id: the MLflow run that holds params, metrics and the logged model.
        tracking_uri: the MLflow tracking URI the run used.
        report_uri: the evaluation report (HTML), if evaluate ran.
        export_uri: the exported model folder, or ``None``.
        reason: why the gate rejected the model ("" otherwise).
        aliases: with ``gate.champion``, the aliases on the registered version once the run
            is over (``("challenger", "production")`` after ``gate.promote`` moved
            production to it); empty otherwise.
        steps: the status of each step this call executed (``ok``, ``cached``, ``skipped``).
        manifest: the whole manifest (``None`` for a partial run).
    """

    run_id: str
    pipeline: str
    status: RunStatus
    metrics: Mapping[str, float]
    model_uri: str | None
    manifest_uri: str | None
    run_uri: str
    mlflow_run_id: str | None
    tracking_uri: str | None = None
    report_uri: str | None = None
    export_uri: str | None = None
    reason: str = ""
    steps: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    manifest: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def published(self) -> bool:
        """A model was registered or exported (a rejected one only with
        ``registry.allow_unvalidated``)."""
        return bool(self.model_uri or self.export_uri)

    @property
    def exit_code(self) -> int:
        """What ``conveyor run`` exits with: 3 for a rejected model that was not published."""
        return 3 if self.status == "rejected" and not self.published else 0

    def raise_for_status(self) -> RunResult:
        """Return ``self``, or raise :class:`~conveyor.errors.GateRejectedError` as the CLI
        exits 3: the gate rejected the model and nothing was published."""
        if self.exit_code == 3:
            from conveyor.errors import GateRejectedError

            raise GateRejectedError(f"run {self.run_id}: the gate rejected the model: "
                                    f"{self.reason}; nothing was registered or exported")
        return self


def run(spec: PathLike | LoadedSpec, overrides: Iterable[str] = (), *,
        profile: str | None = None, run_id: str | None = None, start: str | None = None,
        until: str | None = None, only: str | None = None, use_cache: bool = True,
        on_event: EventCallback | None = None, home: PathLike | None = None) -> RunResult:
    """Run a pipeline in this process, as ``conveyor run`` does.

    Args:
        spec: the spec file, or a spec loaded by :func:`load_spec`.
        overrides: dotted ``KEY=VALUE`` overrides (with a file only).
        profile: overlay ``<stem>.<profile>.yaml`` (with a file only).
        run_id: continue or resume this run.
        start: re-run from this step (needs ``run_id``).
        until: stop after this step (the result is ``partial``).
        only: run only this step of ``run_id``.
        use_cache: reuse results of earlier runs with identical inputs and config.
        on_event: called as each step starts and ends (see :data:`EventCallback`).
        home: the embedded default's folder (see the module's documentation).

    Returns:
        The run's outcome; a gate rejection is ``status == "rejected"``, not an exception.

    Raises:
        BadInputError: the spec, the flags or the data are wrong (``conveyor run`` exits 2).
        ConveyorError: the run failed (exit 1); the run is recorded as failed.

    Example:
        >>> import tempfile, conveyor
        >>> home = tempfile.mkdtemp()
        >>> result = conveyor.run("examples/breast_cancer/pipeline.yaml",
        ...                       profile="sklearn", home=home)
        >>> result.status, result.metrics["test_f1"] > 0.9, result.model_uri
        ('ok', True, 'models:/breast_cancer_classifier/1')
        >>> strict = conveyor.run("examples/breast_cancer/pipeline.yaml", ["gate.test_f1=0.999"],
        ...                       profile="sklearn", home=home)
        >>> strict.status, strict.published, strict.exit_code
        ('rejected', False, 3)
    """
    from conveyor.spec import LoadedSpec

    if isinstance(spec, LoadedSpec):
        if list(overrides) or profile:
            from conveyor.errors import SpecError

            raise SpecError("overrides and profile apply when loading: pass the spec's path, "
                            "or load it with them", file=str(spec.path))
        loaded, starts = spec, [spec.base_dir]
    else:
        loaded, starts = None, _folder(spec)
    with _home(home, *starts):
        from conveyor.runners import LocalRunner, store_for

        loaded = loaded or load_spec(spec, overrides, profile=profile)  # type: ignore[arg-type]
        runner = LocalRunner(loaded, use_cache=use_cache, on_event=on_event)
        summary = runner.run(run_id, start=start, until=until, only=only)
        run_uri = store_for(loaded).uri(loaded.spec.name, summary.run_id)
    manifest = summary.manifest
    steps = {name: record.status for name, record in summary.records.items()}
    if manifest is None:
        metrics = {k: v for r in summary.records.values() for k, v in r.metrics.items()}
        return RunResult(run_id=summary.run_id, pipeline=loaded.spec.name, status="partial",
                         metrics=metrics, model_uri=None, manifest_uri=None, run_uri=run_uri,
                         mlflow_run_id=summary.mlflow_run_id, steps=steps)
    info = {name: (step.get("info") or {}) for name, step in manifest.get("steps", {}).items()}
    artifacts = manifest.get("artifacts", {})  # the gate's report (ADR 0041), or evaluate's
    report = (artifacts.get("gate/report") or artifacts.get("evaluate/report") or {}).get("uri")
    status = "rejected" if manifest.get("status") == "rejected" else "ok"
    registered = info.get("register", {})
    aliases: tuple[str, ...] = ()
    if loaded.spec.gate.champion is not None and registered.get("version"):
        # the register step moved them after the manifest (its publish hook): ask the registry
        from conveyor.errors import TrackingError
        from conveyor.tracking import Tracker
        from conveyor.tracking.aliases import version_aliases

        tracker = Tracker(manifest.get("tracking_uri"), loaded.spec.name)
        try:
            aliases = version_aliases(tracker, registered["name"], registered["version"])
        except TrackingError as exc:  # the run is done: a summary line is not worth failing it
            logging.getLogger(__name__).warning("could not read the aliases of %s v%s: %s",
                                                registered["name"], registered["version"], exc)
    return RunResult(
        run_id=summary.run_id, pipeline=loaded.spec.name, status=status,
        metrics=dict(manifest.get("metrics", {})),
        model_uri=info.get("register", {}).get("model_uri"),
        manifest_uri=summary.manifest_ref.uri if summary.manifest_ref else None,
        run_uri=run_uri, mlflow_run_id=summary.mlflow_run_id,
        tracking_uri=manifest.get("tracking_uri"), report_uri=report,
        export_uri=info.get("export", {}).get("model"),
        reason=str(info.get("gate", {}).get("reason", "")) if status == "rejected" else "",
        steps=steps, manifest=manifest, aliases=aliases)


# metric None: f1, or rmse for a regressor (conveyor.promotion.plan_promotion decides)
_RULE_DEFAULTS: dict[str, Any] = {"metric": None, "min_delta": 0.0, "minimums": {},
                                  "check_rows": 10}


def _registry_target(model: str | None, spec: PathLike | None) -> Any:
    """The spec's registry target, checked against a ``model`` also given (or ``None``)."""
    from conveyor.errors import BadInputError

    if spec is None:
        if not model:
            raise BadInputError("name the registered model (conveyor promote MODEL) or give "
                                "its spec (--spec examples/iris_lab/lab.yaml)")
        return None
    from conveyor.lab.promote import registry_target

    target = registry_target(spec)
    if model and model != target.model:
        raise BadInputError(f"{spec} manages the registered model {target.model!r}, not "
                            f"{model!r}; drop MODEL or --spec")
    return target


def _registry(target: Any, tracking_uri: str | None, store: str | None) -> tuple[Any, Any]:
    """The tracker and decision-record store: an argument given, else the spec's."""
    from conveyor.tracking.tracker import Tracker, default_tracking_uri

    uri = tracking_uri or (target.tracking_uri if target else None)
    tracker = Tracker(uri or default_tracking_uri(),
                      target.experiment if target else "conveyor-registry")
    if store:
        from conveyor.store import Store, to_uri

        return tracker, Store(to_uri(store))
    return tracker, target.store if target else None


def promote(model: str | None = None, *, spec: PathLike | None = None,
            metric: str | None = None, min_delta: float | None = None,
            minimums: Mapping[str, float] | None = None, check_rows: int | None = None,
            holdout: str | None = None, holdout_target: str = "target",
            dry_run: bool = False, include_all: bool = False,
            tracking_uri: str | None = None, store: str | None = None,
            home: PathLike | None = None) -> PromotionDecision:
    """Score the candidate versions on a hold-out set and move ``production`` to the best.

    As ``conveyor promote``: a rule given here replaces the spec's (a lab spec's
    ``promotion:``), else the default (``f1``, or ``rmse`` for a regressor; ``min_delta`` 0,
    no minimums, 10 check rows).

    Args:
        model: the registered model's name (optional with ``spec``).
        spec: a lab spec (model, registry, hold-out set and rules) or a pipeline spec
            (``registry.name``; the hold-out set is the one its versions name).
        metric, min_delta, minimums, check_rows: the promotion rules.
        holdout: the hold-out table as ``URI#SHA256`` (default: the one the versions name).
        holdout_target: the hold-out's label column.
        dry_run: decide, change nothing (``action`` ``promote`` or ``keep``).
        include_all: consider every version, not only those new since the last promotion.
        tracking_uri: the MLflow tracking URI (default: the spec's, else the embedded one).
        store: where the decision record goes (default: the spec's store, else the home's).
        home: the embedded default's folder.

    Returns:
        The decision: ``action`` ``promoted``, ``kept`` or ``aborted`` (production moved
        meanwhile; nothing changed, run it again: the CLI exits 1).

    Raises:
        BadInputError: no such model, a bad rule or hold-out set.

    Example:
        >>> import tempfile, conveyor
        >>> home = tempfile.mkdtemp()
        >>> _ = conveyor.run("examples/breast_cancer/pipeline.yaml", profile="sklearn",
        ...                  home=home)
        >>> decision = conveyor.promote(spec="examples/breast_cancer/pipeline.yaml",
        ...                             home=home)
        >>> decision.action, decision.production_after
        ('promoted', '1')
    """
    from conveyor.errors import BadInputError

    starts = _folder(spec) if spec is not None else []
    with _home(home, *starts):
        target = _registry_target(model, spec)
        spec_rules = target.rules if target else {}
        given = {"metric": metric, "min_delta": min_delta,
                 "minimums": dict(minimums) if minimums is not None else None,
                 "check_rows": check_rows}
        rules = {k: given[k] if given[k] is not None else spec_rules.get(k, default)
                 for k, default in _RULE_DEFAULTS.items()}
        if rules["min_delta"] < 0:
            raise BadInputError(f"min_delta must be >= 0, got {rules['min_delta']}")
        chosen = None
        if holdout:
            from conveyor.promotion import load_holdout

            uri, _, sha = holdout.partition("#")
            if not sha:
                raise BadInputError("the hold-out set is URI#SHA256 (the table's content hash)")
            chosen = load_holdout(uri, sha, target=holdout_target)
        elif target is not None and target.lab is not None:
            from conveyor.lab.promote import lab_holdout

            chosen = lab_holdout(target.lab)
        from conveyor.promotion import promote as _promote

        tracker, records = _registry(target, tracking_uri, store)
        return _promote(tracker, target.model if target else model, holdout=chosen,
                        store=records, metric=rules["metric"], min_delta=rules["min_delta"],
                        minimums=rules["minimums"], dry_run=dry_run, include_all=include_all,
                        check_rows=rules["check_rows"])


def rollback(model: str | None = None, *, spec: PathLike | None = None,
             tracking_uri: str | None = None, store: str | None = None,
             home: PathLike | None = None) -> RollbackResult:
    """Move ``production`` back to ``previous_production``, as ``conveyor rollback`` does.

    Idempotent: ``previous_production`` is used once, so a second call finds nothing to roll
    back (``action == "none"``) instead of swinging forward again.

    Raises:
        BadInputError: the model does not exist or has no production version.

    Example:
        >>> import tempfile, conveyor
        >>> home = tempfile.mkdtemp()
        >>> spec = "examples/breast_cancer/pipeline.yaml"
        >>> _ = conveyor.run(spec, profile="sklearn", home=home)
        >>> _ = conveyor.promote(spec=spec, home=home)
        >>> conveyor.rollback(spec=spec, home=home).action
        'none'
    """
    starts = _folder(spec) if spec is not None else []
    with _home(home, *starts):
        target = _registry_target(model, spec)
        from conveyor.promotion import rollback as _rollback

        tracker, records = _registry(target, tracking_uri, store)
        return _rollback(tracker, target.model if target else model, store=records)


def process_inbox(lab: PathLike | Lab, *, owner: str | None = None,
                  home: PathLike | None = None) -> InboxReport:
    """One pass over a lab's watched folder: claim, train and register every new file.

    Each file succeeds (``report.trained``), is rejected and moved to ``rejected/``
    (``report.rejected``: bad in any way) or is released for the next pass
    (``report.failed``: MLflow or the Store failed) on its own. ``conveyor lab run --once``.

    Args:
        lab: the lab spec's path, or a loaded :class:`~conveyor.lab.spec.Lab`.
        owner: who claims the files (default: this host and process).
        home: the embedded default's folder.

    Example:
        >>> import os, pathlib, shutil, tempfile, conveyor
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> spec = shutil.copy("examples/iris_lab/lab.yaml", folder)  # inbox: folder/configs
        >>> (folder / "configs").mkdir()
        >>> dropped = shutil.copy("examples/iris_lab/configs/rf_small.json", folder / "configs")
        >>> os.utime(dropped, (0, 0))  # settled: older than watch.min_age_seconds
        >>> report = conveyor.process_inbox(spec, home=folder / "home")
        >>> report.versions, report.rejected, report.failed
        (['1'], {}, {})
        >>> conveyor.process_inbox(spec, home=folder / "home").versions  # the same bytes again
        []
    """
    from conveyor.lab.spec import Lab

    starts = [] if isinstance(lab, Lab) else _folder(lab)
    with _home(home, *starts):
        from conveyor.lab.spec import load_lab
        from conveyor.lab.watcher import process_inbox as _process

        loaded = lab if isinstance(lab, Lab) else load_lab(lab)
        return _process(loaded, owner=owner)


# --------------------------------------------------------------------------- serving
# (issue 10: the serve-http branch adds ``serve`` here)


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8080, workers: int = 1,
          token_env: str | None = None, poll_seconds: float = 10.0, store: str | None = None,
          max_rows: int = 10_000, max_body_bytes: int = 8 * 1024 * 1024,
          sample_rate: float = 0.1, tracking_uri: str | None = None,
          home: PathLike | None = None,
          on_checked: Callable[[Any], None] | None = None) -> int:
    """Serve ``model`` over HTTP until SIGTERM or Ctrl-C, as ``conveyor serve`` does.

    The URI is checked before the port is bound; the model then loads in the background
    (``/ready`` answers 503 until it is loaded) and the alias is polled every
    ``poll_seconds``. See docs/serving.md.

    Args:
        model: ``models:/name@alias``, ``models:/name/N``, or an export or model folder.
        host, port: where to listen (``127.0.0.1`` by default: put a proxy in front).
        workers: server processes (uvicorn workers; metrics are counted across them).
        token_env: the environment variable holding the bearer token ``/invocations`` and
            ``/predict`` require (default: no auth).
        poll_seconds: how often the alias is checked for a move.
        store: the Store root samples go to and drift verdicts are read from (default: the
            home's).
        max_rows, max_body_bytes: per-request limits.
        sample_rate: the share of requests sampled for monitoring (0 turns it off).
        tracking_uri: the MLflow tracking URI (default: the embedded one).
        home: the embedded default's folder.
        on_checked: called with the resolved model identity once the URI is checked, before
            the port is bound (the CLI prints it).

    Returns:
        The exit code: 0 after a clean shutdown.

    Raises:
        BadInputError: a malformed URI, no such model, a token variable unset, a bad limit.
    """
    from conveyor.store import store_root, to_uri
    from conveyor.tracking.tracker import default_tracking_uri

    with _home(home):
        from conveyor.serving.app import ServerConfig
        from conveyor.serving.server import check, run

        uri = model if model.startswith("models:/") else to_uri(model)
        config = ServerConfig(
            model_uri=uri, tracking_uri=tracking_uri or default_tracking_uri(),
            store_root=to_uri(store) if store else store_root(), token_env=token_env,
            poll_seconds=poll_seconds, max_rows=max_rows, max_body_bytes=max_body_bytes,
            sample_rate=sample_rate)
        if workers < 1:
            from conveyor.errors import BadInputError

            raise BadInputError(f"--workers must be at least 1, got {workers}")
        identity = check(config)
        if on_checked is not None:
            on_checked(identity)
    return run(config, host=host, port=port, workers=workers)



# --------------------------------------------------------------------------- batch scoring


def score(model: str, input: str, output: str, *, id_column: str | None = None,
          chunk_rows: int | None = None, engine: Literal["local", "dask"] = "local",
          scheduler: str | None = None, workers: int = 2, overwrite: bool = False,
          storage_options: Mapping[str, Any] | None = None, tracking_uri: str | None = None,
          on_progress: Callable[[int, int | None, float], None] | None = None,
          home: PathLike | None = None, prediction_column: str = "prediction",
          probabilities: bool = True) -> ScoreResult:
    """Score a CSV or Parquet input with a model into Parquet, as ``conveyor score`` does.

    The model's files are checked against their recorded sha256 before it is loaded; the
    columns are checked against its signature once per file; the output holds the id column
    (``id_column``, or ``id`` when the input has it), ``prediction`` and ``proba_<class>``,
    and is published whole or not at all (docs/scoring.md).

    Args:
        model: ``models:/name@alias``, ``models:/name/N``, or an export or model folder.
        input: a CSV or Parquet file, a glob or a folder (path, ``file://``, ``s3://``).
        output: the Parquet output: one file (``local``) or a folder of parts (``dask``).
        id_column: the column copied beside the predictions.
        chunk_rows: rows per chunk (default 100,000): bounds the local engine's memory.
        engine: ``local`` (in this process) or ``dask`` (dask.distributed).
        scheduler: a Dask scheduler address (default: a LocalCluster of in-process workers).
        workers: the LocalCluster's workers (one thread each, in this process).
        overwrite: replace an existing output (else :class:`BadInputError`).
        storage_options: fsspec options for input and output (no secrets).
        tracking_uri: MLflow tracking URI for ``models:/`` (default: the home's).
        on_progress: ``on_progress(rows_done, rows_total or None, seconds)``.
        home: the embedded default's folder.
        prediction_column: the prediction's column name (``Survived`` for a submission).
        probabilities: write the ``proba_<class>`` columns (a ``.csv`` output is CSV).

    Returns:
        The output's URI, rows, seconds and the model version used.

    Raises:
        BadInputError: missing or unreadable input, a missing column, an existing output.
        ConveyorError: the model was refused (tampered) or the store failed.

    Example:
        >>> import tempfile, pathlib, pandas as pd, conveyor, conveyor.api
        >>> home = pathlib.Path(tempfile.mkdtemp())
        >>> _ = conveyor.run("examples/breast_cancer/pipeline.yaml", profile="sklearn",
        ...                  home=home)
        >>> rows = pd.read_parquet(next((home / "artifacts").rglob("test.parquet")))  # no id
        >>> rows.drop(columns="diagnosis").to_csv(home / "in.csv", index=False)
        >>> result = conveyor.api.score("models:/breast_cancer_classifier/1",
        ...                             str(home / "in.csv"), str(home / "out.parquet"),
        ...                             home=home)
        >>> result.rows == len(rows), list(pd.read_parquet(result.output_uri).columns)
        (True, ['prediction', 'proba_B', 'proba_M'])
    """
    from conveyor.serving.batch import DEFAULT_CHUNK_ROWS
    from conveyor.serving.batch import score as _score

    with _home(home):
        return _score(model, input, output, id_column=id_column,
                      chunk_rows=chunk_rows or DEFAULT_CHUNK_ROWS, engine=engine,
                      scheduler=scheduler, workers=workers, overwrite=overwrite,
                      storage_options=storage_options, tracking_uri=tracking_uri,
                      on_progress=on_progress, prediction_column=prediction_column,
                      probabilities=probabilities)



# --------------------------------------------------------------------------- monitoring
# (issue 10: the monitor branch adds ``monitor`` here)


def monitor(model: str, *, window: str | None = None, input: PathLike | None = None,
            labels: PathLike | None = None, id_column: str | None = None,
            spec: PathLike | LoadedSpec | None = None, store: str | None = None,
            tracking_uri: str | None = None, trigger: Callable[..., dict[str, Any]] | None = None,
            home: PathLike | None = None) -> MonitorResult:
    """Check a model's recent inputs and predictions for drift (docs/monitoring.md).

    Args:
        model: ``models:/<name>@<alias>``, ``models:/<name>/<N>``, or an export folder.
        window: read the server's samples of the last ``30m``/``24h``/``7d``.
        input: a CSV or Parquet batch instead of the samples (scored when it has no
            ``_prediction`` column).
        labels: true labels joined by ``id_column``, for live accuracy, precision, recall, F1.
        spec: the pipeline spec: its ``monitor:`` thresholds, store, tracking, training DAG.
        store: the Store's root URI (default: the spec's, else ``home/artifacts``).
        tracking_uri: MLflow (default: the spec's, else the embedded one).
        trigger: ``trigger(airflow_url, dag_id, conf) -> dict`` starts the training DAG
            (default: Airflow's REST API).
        home: the embedded default's folder.

    Returns:
        The :class:`~conveyor.monitoring.check.MonitorResult`: ``verdict``, ``report``,
        ``exit_code`` (0 no drift, 3 drift).

    Raises:
        BadInputError: a bad URI, window, file, labels file, or a model without a profile.

    Example:
        >>> import tempfile, conveyor, conveyor.api
        >>> from conveyor.sources.bundled import read_sklearn_source
        >>> from conveyor.spec.models import SklearnSource
        >>> home = tempfile.mkdtemp()
        >>> _ = conveyor.run("examples/breast_cancer/pipeline.yaml", profile="sklearn",
        ...                  home=home)
        >>> data, _ = read_sklearn_source(SklearnSource(source="sklearn", name="breast_cancer"))
        >>> batch = f"{home}/batch.csv"
        >>> data.assign(radius_mean=data["radius_mean"] * 1.5).to_csv(batch, index=False)
        >>> result = conveyor.api.monitor("models:/breast_cancer_classifier/1", input=batch,
        ...                               home=home)
        >>> result.exit_code, result.verdict["features_drifted"]
        (3, ['radius_mean'])
    """
    from conveyor.spec.loader import LoadedSpec as _Loaded

    starts = _folder(spec) if spec is not None and not isinstance(spec, _Loaded) else []
    with _home(home, *starts):
        from conveyor.monitoring.check import check

        loaded = spec if spec is None or isinstance(spec, _Loaded) else load_spec(spec)
        return check(model, window=window, input=None if input is None else os.fspath(input),
                     labels=None if labels is None else os.fspath(labels),
                     id_column=id_column, spec=loaded, store=store,
                     tracking_uri=tracking_uri, trigger=trigger)


# --------------------------------------------------------------------------- synthetic data
# (issue 12: the sources branch adds ``synth`` here; ADR 0044)

__all__ += ["SynthResult", "synth"]


@dataclass(frozen=True)
class SynthResult:
    """What :func:`synth` wrote.

    Attributes:
        generator: the generator's name (``temperature``).
        out: the folder holding ``train/`` and ``test/``.
        train: the training files, one a data set.
        test: the test files (other seeds: no data set is in both).
    """

    generator: str
    out: Path
    train: tuple[Path, ...]
    test: tuple[Path, ...]


def synth(generator: str, out: PathLike, *, datasets: int = 1,
          test_datasets: int | None = None, seed: int = 0, **params: Any) -> SynthResult:
    """Write seeded synthetic data sets into ``out/train/`` and ``out/test/``, as
    ``conveyor synth`` does.

    Args:
        generator: ``temperature`` (daily readings with injected anomalies; see
            :mod:`conveyor.sources.temperature`).
        out: the folder to write into (created; files of the same name are replaced).
        datasets: data sets (stations) written to ``train/``.
        test_datasets: data sets written to ``test/`` (default: ``datasets``).
        seed: the first training set's seed; every file follows from it.
        **params: the generator's parameters (``days``, ``noise``, ``anomaly_rate``,
            ``shapes``, ...), checked as the spec's ``data:`` section checks them.

    Returns:
        The files written.

    Raises:
        BadInputError: an unknown generator or a parameter out of range (naming it).

    Example:
        >>> import tempfile, conveyor
        >>> result = conveyor.synth("temperature", tempfile.mkdtemp(), datasets=2, days=60,
        ...                         anomaly_rate=0.1, seed=3)
        >>> [p.name for p in result.train], len(result.test)
        (['station_000.csv', 'station_001.csv'], 2)
    """
    from pydantic import ValidationError

    from conveyor.errors import BadInputError
    from conveyor.sources.synthetic import SyntheticSource
    from conveyor.sources.temperature import write_temperature

    try:
        config = SyntheticSource(source="synthetic", generator=generator, datasets=datasets,
                                 seed=seed, **params)
        if test_datasets is not None and test_datasets < 1:
            raise BadInputError(f"test_datasets must be at least 1, got {test_datasets}")
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "generator"
        raise BadInputError(f"synth {generator}: {where}: {first['msg']} (got "
                            f"{first.get('input')!r})") from None
    written = write_temperature(out, datasets=config.datasets, test_datasets=test_datasets,
                                seed=config.seed, **config.params())
    return SynthResult(generator=generator, out=Path(out), train=tuple(written["train"]),
                       test=tuple(written["test"]))


# --------------------------------------------------------------------------- schema (issue 12)


def accept_schema(spec: PathLike, overrides: Iterable[str] = (), *,
                  profile: str | None = None, home: PathLike | None = None
                  ) -> tuple[str, list[str]]:
    """Save the schema of the spec's data, as it is now, as the pipeline's saved schema.

    Later runs compare their table with it (``validate.drift``, docs/validation.md). The
    data must pass the spec's other checks; the schema it replaces is overwritten.

    Returns:
        (the saved schema's URI, one line per difference from the schema it replaced).

    Raises:
        SpecError: the spec is invalid. DataError: the data fails a check whose policy is
        ``fail``.

    Example:
        >>> import conveyor
        >>> uri, changes = conveyor.accept_schema("examples/breast_cancer/pipeline.yaml",
        ...                                       profile="sklearn")  # doctest: +SKIP
        >>> uri.endswith("/breast_cancer/_schema/schema.json")  # doctest: +SKIP
        True
    """
    from conveyor.runners.executor import store_for
    from conveyor.steps.validate import accept_schema as _accept

    with _home(home, *_folder(spec)):
        loaded = load_spec(spec, overrides, profile=profile)
        return _accept(loaded, store_for(loaded))
# --- issue 12: scheduled collection from an HTTP API (docs/decisions/0045) -----------------
__all__ += ["collect"]


def collect(spec: PathLike, interval: str | tuple[Any, Any] | None = None, *,
            home: PathLike | None = None, sleep: Callable[[float], None] | None = None
            ) -> Any:
    """Collect one interval of a collection spec into its dataset, as ``conveyor collect``.

    Args:
        spec: the collection spec (a YAML file with a ``collect:`` section).
        interval: ``"START/END"`` in ISO 8601, or two aware datetimes; default: the last
            whole hour. Re-collecting an interval replaces its part of the dataset.
        home: the embedded default's folder (the Store under ``home/artifacts``).
        sleep: how retries wait (default ``time.sleep``).

    Returns:
        The :class:`~conveyor.sources.collect.CollectResult` (``fetched``, ``new``,
        ``replaced``, ``skipped``, ``part_uri``, ``dataset_rows``).

    Raises:
        BadInputError: a bad spec or interval, a refused request (quota, key, a loop, an
            off-origin link), the key's variable unset.
        ConveyorRuntimeError: the API stayed unavailable through every retry.
    """
    with _home(home, *_folder(spec)):
        from conveyor.sources.collect import collect as run_collect
        from conveyor.sources.collect import load_collection, parse_interval

        collection = load_collection(spec)
        window = parse_interval(interval) if interval is None or isinstance(
            interval, str) else interval
        return run_collect(collection, window, sleep=sleep)
