"""Conveyor's own data sources, registered by entry point like any plug-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conveyor.sources.base import BaseSource
from conveyor.spec.models import FileSource, SklearnSource

__all__ = ["FileSourceReader", "SklearnSourceReader"]


class FileSourceReader(BaseSource):
    """A CSV, Parquet or JSON-lines file through fsspec (``data.source: file``)."""

    name = "file"
    spec_model = FileSource

    def read(self, config: Any, base_dir: Path) -> tuple[Any, dict[str, Any]]:
        from conveyor.sources.files import read_file_source

        return read_file_source(config, base_dir)

    def scan(self, config: Any, base_dir: Path) -> tuple[Iterator[Any], dict[str, Any]]:
        from conveyor.sources.files import scan_file_source

        return scan_file_source(config, base_dir)


class SklearnSourceReader(BaseSource):
    """A data set bundled with scikit-learn (``data.source: sklearn``)."""

    name = "sklearn"
    spec_model = SklearnSource

    def read(self, config: Any, base_dir: Path) -> tuple[Any, dict[str, Any]]:
        from conveyor.sources.bundled import read_sklearn_source

        return read_sklearn_source(config)
