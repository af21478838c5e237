"""The one exception hierarchy of Conveyor.

Every error Conveyor raises on purpose derives from :class:`ConveyorError`. Two families
matter to callers:

* :class:`BadInputError` (spec or data is wrong): retrying cannot help, the CLI exits 2 and
  Airflow fails the task at once without retries.
* everything else (:class:`ConveyorRuntimeError` and foreign exceptions): a failure that may
  be transient; the CLI exits 1 and Airflow retries with backoff.

Messages say what was wrong, where (file, line, key, column, row), what was expected and how
to fix it, in one or two lines.
"""

from __future__ import annotations

__all__ = [
    "BadInputError",
    "ConveyorError",
    "ConveyorRuntimeError",
    "DataError",
    "GateRejectedError",
    "SpecError",
    "StoreError",
    "TrackingError",
]


class ConveyorError(Exception):
    """Root of every error Conveyor raises on purpose."""

    exit_code = 1


class BadInputError(ConveyorError):
    """The user's spec or data is wrong: retrying cannot help."""

    exit_code = 2


class SpecError(BadInputError):
    """A pipeline spec is invalid.

    Args:
        message: what is wrong and how to fix it.
        file: the spec file, when known.
        line: the 1-based line in ``file``, when known.
        key: the dotted key path, when known (``model.params.C``).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.reason = message
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        if key:
            where += f"{key}: "
        super().__init__(f"{where}{message}")


class DataError(BadInputError):
    """The data does not meet the spec (missing column, bad value, single class, ...)."""


class ConveyorRuntimeError(ConveyorError):
    """A failure that is not the user's input: possibly transient, worth a retry."""


class StoreError(ConveyorRuntimeError):
    """The artifact store refused or lost an operation."""


class TrackingError(ConveyorRuntimeError):
    """MLflow tracking or the model registry failed."""


class PluginError(ConveyorRuntimeError):
    """A step or source registered by entry point cannot be loaded or breaks the contract."""


class GateRejectedError(ConveyorError):
    """The model did not pass the quality gate; nothing was registered."""

    exit_code = 3
