"""Data sources: each turns a ``data:`` section into a pandas DataFrame.

Sources are found through the entry-point group ``conveyor.sources`` (the built-in ``file``
and ``sklearn`` too), by the section's ``source`` tag.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conveyor.errors import PluginError
from conveyor.sources.base import BaseSource
from conveyor.spec.plugins import SOURCE_GROUP, load_plugin

__all__ = ["BaseSource", "read_source", "scan_source", "source_reader"]


def source_reader(tag: str) -> BaseSource:
    """The source registered as ``tag``.

    Raises:
        PluginError: none is, or its entry point fails to import or is not a source.
    """
    found = load_plugin(SOURCE_GROUP, tag)
    if found is None:
        raise PluginError(f"no data source {tag!r} is registered in the entry-point group "
                          f"{SOURCE_GROUP}; install the plug-in that provides it")
    if not (isinstance(found, type) and issubclass(found, BaseSource)):
        raise PluginError(f"entry point {tag!r} (group {SOURCE_GROUP}) names {found!r}, not "
                          "a subclass of conveyor.sources.BaseSource")
    return found()


def read_source(source: Any, base_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Read the table a ``data:`` section names, and facts about where it came from."""
    return source_reader(source.source).read(source, base_dir)


def scan_source(source: Any, base_dir: Path) -> tuple[Iterator[Any], dict[str, Any]]:
    """The table a ``data:`` section names as chunks of rows (:meth:`BaseSource.scan`)."""
    return source_reader(source.source).scan(source, base_dir)
