"""Plug-ins: steps and data sources found through entry points, without editing Conveyor.

A distribution registers a step in the group ``conveyor.steps`` and a data source in
``conveyor.sources``, the entry point's name being the step's name or the source's
``data.source`` tag (docs/steps.md). Conveyor's own steps and sources are registered the same
way (pyproject.toml). This module only finds and imports them: the spec layer needs a
plug-in's config model to validate its section, the steps and sources layers the classes.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from conveyor.errors import PluginError

__all__ = ["SOURCE_GROUP", "STEP_GROUP", "find_plugins", "load_plugin"]

STEP_GROUP = "conveyor.steps"
SOURCE_GROUP = "conveyor.sources"


@functools.cache
def _conveyor_entry_points() -> dict[str, list[EntryPoint]]:
    # One scan of the installed distributions' metadata for both groups (it costs about as
    # much as importing a module, once per process; DAG files parse in the same process).
    found = entry_points()
    return {group: list(found.select(group=group)) for group in (STEP_GROUP, SOURCE_GROUP)}


@functools.cache
def find_plugins(group: str) -> dict[str, EntryPoint]:
    """The entry points of ``group`` by name (not imported).

    Raises:
        PluginError: two distributions register different objects under one name.
    """
    found: dict[str, EntryPoint] = {}
    points = _conveyor_entry_points().get(group)
    for point in points if points is not None else entry_points(group=group):
        seen = found.get(point.name)
        if seen is not None and seen.value != point.value:
            raise PluginError(
                f"entry point {point.name!r} of group {group} is registered twice, as "
                f"{seen.value!r} and {point.value!r}; uninstall one of the distributions")
        found[point.name] = point
    return found


@functools.cache
def load_plugin(group: str, name: str) -> Any:
    """Import the object entry point ``name`` of ``group`` names (``None`` if there is none).

    Raises:
        PluginError: the entry point fails to import; the message names it and its target.
    """
    point = find_plugins(group).get(name)
    if point is None:
        return None
    try:
        return point.load()
    except Exception as exc:  # any import failure of foreign code, reported once, with cause
        raise PluginError(
            f"entry point {name!r} = {point.value!r} (group {group}) failed to import: "
            f"{type(exc).__name__}: {exc}; fix or uninstall the distribution that provides it"
        ) from exc
