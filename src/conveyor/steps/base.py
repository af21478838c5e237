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
import time
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


_SHARED_PACKAGES = ("features", "modeling", "sources", "store", "tracking")
_LIBRARIES = ("scikit-learn", "pandas", "numpy", "pyarrow", "mlflow", "skops")


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
    """A step of a pipeline.

    Subclasses set :attr:`name`, :attr:`inputs` (``"<step>.<artifact>"``), :attr:`outputs`,
    :attr:`config_keys` (the spec sections their result depends on) and implement
    :meth:`_run`.
    """

    name: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()
    config_keys: ClassVar[tuple[str, ...]] = ()
    cacheable: ClassVar[bool] = True
    #: bump to invalidate caches when behaviour changes without the module's source changing
    version: ClassVar[int] = 1

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
        try:
            result = self._run(ctx)
        except ConveyorError:
            raise
        except Exception as exc:  # a foreign failure, wrapped once with its cause
            raise ConveyorRuntimeError(
                f"step {self.name} failed: {type(exc).__name__}: {exc}"
            ) from exc
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
