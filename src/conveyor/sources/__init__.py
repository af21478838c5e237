"""Data sources: each turns a ``data:`` section into a pandas DataFrame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from conveyor.sources.bundled import read_sklearn_source
from conveyor.sources.files import read_file_source
from conveyor.spec.models import FileSource, SklearnSource

__all__ = ["read_source"]


def read_source(
    source: FileSource | SklearnSource, base_dir: Path
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the table a ``data:`` section names, and facts about where it came from."""
    if isinstance(source, SklearnSource):
        return read_sklearn_source(source)
    return read_file_source(source, base_dir)
