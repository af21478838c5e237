"""Conveyor: one YAML spec to a tracked, validated, exported model.

The public API (the ``conveyor`` command is a thin layer over it; docs/decisions/0028):

* :func:`load_spec` - read, layer and validate a pipeline spec;
* :func:`validate` - what ``conveyor validate`` checks (a pipeline or a lab spec);
* :func:`run` - run a pipeline in this process; returns a frozen :class:`RunResult`;
* :func:`promote` / :func:`rollback` - move a registered model's ``production`` alias;
* :func:`process_inbox` - one pass of a lab over its watched folder;
* :func:`serve` - serve a model over HTTP (``conveyor serve``; blocks until SIGTERM);
* :func:`score` - batch-score a file with a model; returns a :class:`ScoreResult`;
* :func:`synth` - write seeded synthetic data sets (``conveyor synth``);
* :func:`monitor` - compare served or batch data with the model's reference profile;
  returns a :class:`MonitorResult` (``drifted``, the verdict, the report and its URIs);
* :data:`__version__` and the errors :class:`ConveyorError` (root),
  :class:`BadInputError` (bad spec or data: the CLI's exit 2), :class:`SpecError`,
  :class:`GateRejectedError` (exit 3).

Names are imported on first use (PEP 562), so ``import conveyor`` costs no pandas,
scikit-learn or MLflow import.

Example:
    >>> import conveyor
    >>> conveyor.__version__ != ""
    True
    >>> sorted(conveyor.__all__)[:3]
    ['BadInputError', 'ConveyorError', 'GateRejectedError']
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs more than the rest of `import conveyor`

_EXPORTS = {
    "RunResult": "api", "load_spec": "api", "process_inbox": "api", "promote": "api",
    "rollback": "api", "run": "api", "validate": "api", "serve": "api", "score": "api",
    "monitor": "api", "ScoreResult": "serving.batch", "MonitorResult": "monitoring.check",
    "BadInputError": "errors", "ConveyorError": "errors", "GateRejectedError": "errors",
    "SpecError": "errors",
}
_EXPORTS["accept_schema"] = "api"  # issue 12

__all__ = [
    "BadInputError",
    "ConveyorError",
    "GateRejectedError",
    "MonitorResult",
    "RunResult",
    "ScoreResult",
    "SpecError",
    "__version__",
    "accept_schema",
    "load_spec",
    "monitor",
    "process_inbox",
    "promote",
    "rollback",
    "run",
    "score",
    "serve",
    "validate",
]

# issue 12 (the sources branch): synthetic data sets, as ``conveyor synth`` writes them
_EXPORTS.update({"synth": "api", "SynthResult": "api"})
__all__ += ["SynthResult", "synth"]

if TYPE_CHECKING:
    from typing import Any

    from conveyor.api import (
        RunResult,
        accept_schema,
        load_spec,
        monitor,
        process_inbox,
        promote,
        rollback,
        run,
        score,
        serve,
        validate,
    )
    from conveyor.errors import BadInputError, ConveyorError, GateRejectedError, SpecError
    from conveyor.monitoring.check import MonitorResult
    from conveyor.serving.batch import ScoreResult

    __version__: str


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("conveyor-ml")
    except PackageNotFoundError:  # a source tree without installed metadata
        return "0+unknown"


def __getattr__(name: str) -> Any:
    import importlib

    if name == "__version__":
        value: Any = _version()
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(f"conveyor.{_EXPORTS[name]}"), name)
    else:
        raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
