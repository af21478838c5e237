"""What every data source is: the model of its ``data:`` section and a reader.

A source is registered in the entry-point group ``conveyor.sources`` under its tag, the
value of ``data.source`` that selects it (docs/steps.md). The spec validates a plug-in's
section with :attr:`BaseSource.spec_model`; the ingest step calls :meth:`BaseSource.read`.
Keep the module that defines a source light: the spec imports it to validate a spec (DAG
files parse specs), so heavy libraries are imported inside :meth:`read`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

__all__ = ["BaseSource"]


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
