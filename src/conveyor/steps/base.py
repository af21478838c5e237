"""What every step is: a contract, a context, a result.

A step is a class with declared inputs and outputs (artifact names). :meth:`BaseStep.run`
owns timing, logging and error wrapping; subclasses write :meth:`BaseStep._run`. Steps read
their inputs from the Store and write their outputs to it; they never call each other and
never know which runner runs them.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from conveyor.errors import ConveyorError, ConveyorRuntimeError
from conveyor.store import ArtifactRef, Store

if TYPE_CHECKING:
    from conveyor.spec import LoadedSpec, Spec
    from conveyor.tracking import Tracker

__all__ = ["BaseStep", "StepContext", "StepResult", "StepStatus"]

log = logging.getLogger(__name__)

StepStatus = Literal["ok", "cached", "skipped"]


_RECORDING = threading.Lock()
_recorders: dict[int, list[warnings.WarningMessage]] = {}  # thread id -> its step's list
_before: tuple[list[Any], Any] | None = None  # filters and showwarning before the first one


def _show(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
          line: Any = None) -> None:
    """``warnings.showwarning`` while a step records: into the list of the step running in
    this thread, or of the only step running (a thread it started: parallel trials), else
    shown as before."""
    with _RECORDING:
        into = _recorders.get(threading.get_ident())
        if into is None and len(_recorders) == 1:
            into = next(iter(_recorders.values()))
        shown_before = _before[1] if _before is not None else None
    if into is not None:
        into.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
    elif shown_before is not None:
        shown_before(message, category, filename, lineno, file, line)


@contextmanager
def recording_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record the warnings raised in this thread while the block runs (ADR 0057).

    ``warnings.catch_warnings`` cannot do it for steps that run at once in two threads (two
    pipelines through the public API): each restores, on leaving, the state it saw on
    entering, so the second to leave put the first's recorder back for good and every later
    warning of the process vanished into it. Here one process-wide hook is installed by the
    first step to record and removed by the last; each thread's warnings go to its own list.
    The filters set before (``ignore``) still apply: ``always`` is appended after them.
    """
    global _before
    caught: list[warnings.WarningMessage] = []
    me = threading.get_ident()
    with _RECORDING:
        if not _recorders:
            _before = (list(warnings.filters), warnings.showwarning)
            warnings.filterwarnings("always", append=True)
            warnings.showwarning = _show
        outer = _recorders.get(me)
        _recorders[me] = caught
    try:
        yield caught
    finally:
        with _RECORDING:
            if outer is None:
                del _recorders[me]
            else:
                _recorders[me] = outer
            if not _recorders and _before is not None:
                filters, shown = _before
                warnings.filters[:] = filters
                warnings._filters_mutated()  # type: ignore[attr-defined]
                if warnings.showwarning is _show:
                    warnings.showwarning = shown
                _before = None


def count_warnings(caught: list[warnings.WarningMessage]) -> list[dict[str, Any]]:
    """Distinct warnings by first appearance: category, the message's first line (at most
    200 characters, no trailing colon) and how many times it came."""
    counted: dict[tuple[str, str], int] = {}
    for item in caught:
        text = str(item.message).strip().splitlines()[0] if str(item.message).strip() else ""
        key = (item.category.__name__, text[:200].rstrip(":"))
        counted[key] = counted.get(key, 0) + 1
    return [{"category": category, "message": message, "count": count}
            for (category, message), count in counted.items()]


@dataclass
class StepResult:
    """What a step hands back: artifact references and a few small facts.

    Attributes:
        outputs: artifact name -> reference in the Store.
        metrics: numbers to log to the tracker (``test_f1``).
        info: small JSON-able facts (rows, hashes, the model URI in MLflow).
        status: ``ok``, or ``skipped`` with a ``reason`` in ``info``.
    """

    outputs: dict[str, ArtifactRef] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    status: StepStatus = "ok"


@dataclass
class StepContext:
    """Everything a step may use. The runner builds it; the step never builds its own.

    Attributes:
        loaded: the validated spec and its provenance.
        run_id: the Conveyor run id (a safe storage key).
        store: the artifact store.
        tracker: MLflow tracking for this run.
        inputs: ``"<step>.<artifact>"`` -> reference, for the step's declared inputs.
        upstream: ``<step>`` -> that step's result info, for the step's upstream steps.
        step: the running step's name.
    """

    loaded: LoadedSpec
    run_id: str
    store: Store
    tracker: Tracker
    inputs: dict[str, ArtifactRef]
    upstream: dict[str, dict[str, Any]]
    step: str

    @property
    def spec(self) -> Spec:
        return self.loaded.spec

    def output_uri(self, name: str) -> str:
        return self.store.uri(self.spec.name, self.run_id, self.step, name)

    def read_table(self, name: str) -> Any:
        return self.store.get_table(self.inputs[name])

    def write_table(self, name: str, frame: Any) -> ArtifactRef:
        return self.store.put_table(self.output_uri(f"{name}.parquet"), frame)

    def read_json(self, name: str) -> Any:
        ref = self.inputs[name]
        return self.store.get_json(ref.uri, sha256=ref.sha256)

    def write_json(self, name: str, data: Any) -> ArtifactRef:
        return self.store.put_json(self.output_uri(f"{name}.json"), data)

    def write_bytes(self, filename: str, data: bytes) -> ArtifactRef:
        return self.store.put_bytes(self.output_uri(filename), data)

    @cached_property
    def scratch(self) -> Path:
        """A private local folder for this step (removed with the process's temp files)."""
        return Path(tempfile.mkdtemp(prefix=f"conveyor-{self.step}-"))

    def load_model(self, name: str = "train.model") -> Any:
        """The model input ``name``: from this process's memo, or from the Store, its folder
        hash-checked before MLflow loads it (RELIABILITY rule 6)."""
        ref = self.inputs[name]
        model = self.store.recall(ref)
        if model is None:
            folder = self.store.get_dir(ref, self.scratch / "model")
            model = self.tracker.load_sklearn_model(folder)
            self.store.remember(ref, model)
        return model


_SHARED_PACKAGES = ("features", "modeling", "sources", "store", "tracking", "validation")
_LIBRARIES = ("scikit-learn", "pandas", "numpy", "pyarrow", "mlflow", "skops", "pandera")


@functools.cache
def _shared_code_hash() -> str:
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for package in _SHARED_PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for name in _LIBRARIES:
        try:
            digest.update(f"{name}=={version(name)}".encode())
        except PackageNotFoundError:
            continue
    return digest.hexdigest()


class BaseStep:
    """A step of a pipeline: everything the runners and the CLI need to know about it.

    Subclasses set :attr:`name`, :attr:`inputs` (``"<step>.<artifact>"``), :attr:`outputs`,
    :attr:`config_keys` (the spec sections their result depends on) and implement
    :meth:`_run`. They may override the hooks the runner calls for every step alike:
    :meth:`tags` and :meth:`summary` (what a record contributes to the MLflow run and to the
    CLI's line), :meth:`outcome` and :meth:`halt` (a result that decides the run's status),
    :meth:`publish` (after the run's manifest) and :meth:`withdraw` (when the run fails).
    A step is registered under its name in the entry-point group ``conveyor.steps``
    (docs/steps.md, docs/decisions/0027-steps-as-plug-ins.md).
    """

    name: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]] = ()
    #: inputs passed (and part of the cache key) when the producer wrote them, else absent
    optional_inputs: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()
    config_keys: ClassVar[tuple[str, ...]] = ()
    #: steps that must run first when they are in the pipeline, without reading their outputs
    after: ClassVar[tuple[str, ...]] = ()
    #: the spec section that puts the step in a pipeline (``None``: the step's name)
    section: ClassVar[str | None] = None
    #: the pydantic model of that section, for a step that brings its own section (a
    #: plug-in); built-in sections are part of :class:`conveyor.spec.Spec`
    config_model: ClassVar[Any] = None
    #: in every pipeline whether or not its section is written (the built-in steps, whose
    #: sections all have defaults); other steps run when their section is present
    default: ClassVar[bool] = False
    cacheable: ClassVar[bool] = True
    #: bump to invalidate caches when behaviour changes without the module's source changing
    version: ClassVar[int] = 1

    def caches(self, spec: Spec) -> bool:
        """Whether this step's result may be reused under ``spec`` (default :attr:`cacheable`);
        a step whose result depends on more than its config and inputs says no."""
        return self.cacheable

    @classmethod
    def section_key(cls) -> str:
        """The spec key that switches this step on."""
        return cls.section or cls.name

    def tags(self, info: Mapping[str, Any]) -> dict[str, str]:
        """MLflow tags this step's record adds to the run (besides ``conveyor.step.<name>``)."""
        return {}

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        """The one-line summary the CLI shows after the step (``569 rows × 32 columns``)."""
        return ""

    def outcome(self, info: Mapping[str, Any]) -> str | None:
        """The run's status this record decides (``rejected``), or ``None`` for ``ok``."""
        return None

    def halt(self, info: Mapping[str, Any], spec: Spec) -> str | None:
        """Why the run must end right after this step (a runner that runs one task per step
        then finishes it and fails the task), or ``None`` to go on."""
        return None

    def publish(self, ctx: StepContext, outputs: Mapping[str, ArtifactRef]) -> None:
        """Make the step's result visible to readers outside the run; called once the run's
        manifest is written (a failure here takes the manifest back)."""

    def withdraw(self, ctx: StepContext, kept: Mapping[str, Any]) -> dict[str, str]:
        """Take back what a failed run published. Never raises for a missing publication.

        Args:
            ctx: the failed run's context (no inputs).
            kept: this step's entry in the run's manifest when an earlier attempt of the run
                completed (``info`` and ``artifacts``: what it published stays), else ``{}``.

        Returns:
            MLflow tags recording what was withdrawn.
        """
        return {}

    @property
    def upstream(self) -> tuple[str, ...]:
        """The steps this one reads from, in declaration order."""
        return tuple(dict.fromkeys(name.split(".", 1)[0] for name in self.inputs))

    def config(self, spec: Spec) -> dict[str, Any]:
        """The part of the spec this step's result depends on."""
        data = spec.dump()
        return {key: data.get(key) for key in self.config_keys}

    @cached_property
    def code_version(self) -> str:
        """Hash of the step's code: its module, the packages steps build on, library versions.

        Cache keys change with any of them (a fix in ``modeling/`` or a scikit-learn upgrade
        invalidates cached models, not only an edit of the step's own module).
        """
        try:
            source = inspect.getsource(inspect.getmodule(type(self)))  # type: ignore[arg-type]
        except (OSError, TypeError):
            source = type(self).__qualname__
        material = f"{self.version}\0{source}\0{_shared_code_hash()}"
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    def run(self, ctx: StepContext) -> StepResult:
        """Run the step: timing, logging, and one wrap of foreign failures."""
        started = time.perf_counter()
        log.info("step %s: started (run %s)", self.name, ctx.run_id)
        # A library's warnings (scikit-learn's ConvergenceWarning: 9 lines per fit, one fit
        # per fold and trial) are counted into the step's info, not printed between the step
        # lines; the filters set before (``ignore``) still apply.
        with recording_warnings() as caught:
            try:
                result = self._run(ctx)
            except ConveyorError:
                raise
            except Exception as exc:  # a foreign failure, wrapped once with its cause
                raise ConveyorRuntimeError(
                    f"step {self.name} failed: {type(exc).__name__}: {exc}"
                ) from exc
            finally:
                noted = count_warnings(caught)
                for note in noted:
                    log.info("step %s: %s ×%d: %s", self.name, note["category"],
                             note["count"], note["message"])
        if noted:
            result.info = {**result.info, "library_warnings": noted}
        missing = [o for o in self.outputs if o not in result.outputs]
        if result.status == "ok" and missing:
            raise ConveyorRuntimeError(
                f"step {self.name} did not write its declared outputs {missing}"
            )
        log.info("step %s: %s in %.2fs", self.name, result.status, time.perf_counter() - started)
        return result

    def reuse(self, ctx: StepContext, cached: StepResult,
              cached_from: str | None) -> dict[str, ArtifactRef]:
        """On a cache hit: the outputs this run must hold in its own folder (default none).

        A hit references the computing run's artifacts (ADR 0004). A step with an output
        that speaks *for a run* (evaluate's report) writes it again for ``ctx.run_id`` from
        the cached artifacts; what it returns replaces those outputs in this run's record.
        """
        return {}

    def _run(self, ctx: StepContext) -> StepResult:  # pragma: no cover - abstract
        raise NotImplementedError
