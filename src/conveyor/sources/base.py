"""What every data source is: the model of its ``data:`` section and a reader.

A source is registered in the entry-point group ``conveyor.sources`` under its tag, the
value of ``data.source`` that selects it (docs/steps.md). The spec validates a plug-in's
section with :attr:`BaseSource.spec_model`; the ingest step calls :meth:`BaseSource.read`.
Keep the module that defines a source light: the spec imports it to validate a spec (DAG
files parse specs), so heavy libraries are imported inside :meth:`read`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from conveyor.errors import ConveyorRuntimeError, DataError

__all__ = ["BaseSource", "KeyedMessage", "SourceError", "SourceUnreachableError"]


class BaseSource:
    """A data source.

    Attributes:
        name: the ``data.source`` tag (and the entry point's name).
        spec_model: the pydantic model of the ``data:`` section; it must have a field
            ``source: Literal["<name>"]`` and forbid unknown keys.
    """

    name: ClassVar[str]
    spec_model: ClassVar[Any]

    def read(self, config: Any, base_dir: Path) -> tuple[Any, dict[str, Any]]:
        """Read the table.

        Args:
            config: the validated ``data:`` section (a :attr:`spec_model` instance).
            base_dir: the spec's folder, for relative locations.

        Returns:
            A pandas DataFrame and facts: ``uri`` (where the rows came from) is required;
            ``first_line`` and ``lines`` (where each row starts, for error messages) may be
            ``None``.
        """
        raise NotImplementedError

    def scan(self, config: Any, base_dir: Path) -> tuple[Iterator[Any], dict[str, Any]]:
        """The table as chunks of rows, for sources that can be read in bounded memory.

        The ingest step calls this and writes each chunk to the Store as it comes (ADR 0044).
        The default reads the whole table with :meth:`read` and hands it over as one chunk.

        Returns:
            An iterator of pandas DataFrames with the same columns, and the facts of
            :meth:`read`, complete once the iterator is exhausted (a chunked reader learns
            the line map as it goes).
        """
        frame, facts = self.read(config, base_dir)
        return iter([frame]), facts


class KeyedMessage:
    """A mixin for the errors of sources: the message ends with the spec key to look at,
    ``<reason> (<key>)``, and ``reason`` and ``key`` are kept apart for ``LoadedSpec.error``.

    Args:
        reason: what is wrong.
        key: the spec key (``data.url``, ``data.uri``).
    """

    def __init__(self, reason: str, *, key: str) -> None:
        self.reason = reason
        self.key = key
        super().__init__(f"{reason} ({key})")


class SourceError(KeyedMessage, DataError):
    """A source's server answered and refused: bad query, missing data set, unknown database
    or role, a 404, ...

    Retrying cannot help until the spec (or the environment it names) is fixed, so it is bad
    input (exit 2). The message names the key to change. A server that does not answer at all
    is :class:`SourceUnreachableError` (ADR 0053).

    Args:
        reason: what is wrong.
        key: the spec key to change (``data.query``, ``data.url``).
    """


class SourceUnreachableError(KeyedMessage, ConveyorRuntimeError):
    """A source's server did not answer: connection refused, a timeout, a name that does not
    resolve.

    That may pass (a database restarting, a network fault), so it is a failure worth a retry:
    exit 1, and Airflow retries the task with backoff (ADR 0053). The message still names the
    key that says where the server is, in case the spec names the wrong one.

    Args:
        reason: what was tried and what the connection said.
        key: the spec key that locates the server (``data.url``, ``data.uri``).
    """

