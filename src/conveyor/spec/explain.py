"""Explain a validation failure as ``file:line: key: message``, one line, with the nearest key.

Shared by every YAML file Conveyor validates with pydantic (the pipeline spec, the lab spec)
and by the lab's classifier configs, so a typo, a missing key or a bad value reads the same
everywhere: the file and line the key came from, the dotted key, what was wrong and, for an
unknown key, the nearest valid one.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from conveyor.errors import SpecError
from conveyor.spec.reader import short_repr

__all__ = ["Sources", "explain", "locate", "unknown_key_message"]

Path_ = tuple[str, ...]
#: key path -> (file, line) it came from; ``()`` is the whole document
Sources = Mapping[Path_, tuple[str, int | None]]
_MAX_MESSAGE = 300  # a validator may echo a huge value; the error stays one line


def locate(sources: Sources, path: Path_) -> tuple[str, int | None]:
    """The file and line of ``path``, or of its nearest ancestor that has one."""
    for end in range(len(path), -1, -1):
        if path[:end] in sources:
            return sources[path[:end]]
    return next(iter(sources.values()), ("<spec>", None))


def unknown_key_message(key: str, valid: Sequence[str]) -> str:
    """``unknown key 'x'; did you mean 'y'?`` (or the list of valid keys when none is near)."""
    if not valid:
        return f"unknown key {short_repr(key)}"
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
    return f"unknown key {short_repr(key)}; {hint}"


def explain(exc: ValidationError, sources: Sources, model: type[BaseModel]) -> SpecError:
    """One :class:`SpecError` for a failed ``model.model_validate`` of a YAML document.

    Args:
        exc: pydantic's error.
        sources: where each key path came from (``read_yaml``'s lines, profiles, overrides).
        model: the model the document was validated as (its fields name the valid keys).
    """
    errors = exc.errors(include_url=False)
    # a typo of a required key shows up as "missing" *and* "extra": the typo explains both
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    path, _ = _walk(model, tuple(error["loc"]))
    file, line = locate(sources, path)
    kind = error["type"]
    if kind == "extra_forbidden" and path:
        _, parent_models = _walk(model, tuple(error["loc"])[:-1], descend=True)
        if not parent_models and path[:-1]:  # inside a plug-in step's own section
            parent_models = _plugin_models(tuple(error["loc"])[:-1])
        message = unknown_key_message(
            path[-1], sorted({k for m in parent_models for k in _field_keys(m)}))
    elif kind == "missing":
        message = "required key is missing"
    elif kind in ("literal_error", "enum"):
        message = f"{error['msg'].lower()}, got {short_repr(error.get('input'))}"
    elif kind == "union_tag_invalid":
        message = error["msg"]
    elif kind == "model_type" and path:  # a value where a section goes
        _, held = _walk(model, tuple(error["loc"]), descend=True)
        keys = sorted({k for m in held for k in _field_keys(m)})
        message = (f"expected a mapping with the keys {', '.join(keys)}, "
                   f"got {short_repr(error.get('input'))}") if keys else error["msg"]
    else:
        text = error["msg"].removeprefix("Value error, ")
        got = error.get("input")
        message = (text if kind == "value_error" or isinstance(got, dict)
                   else f"{text}, got {short_repr(got)}")
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "…"
    return SpecError(message, file=file, line=line, key=".".join(path) or None)


def _plugin_models(loc: tuple[Any, ...]) -> list[type[BaseModel]]:
    """The models at ``loc`` when its first key is a plug-in step's section (``score:``)."""
    from conveyor.errors import PluginError
    from conveyor.spec.plugins import STEP_GROUP, find_plugins, load_plugin

    section = str(loc[0])
    if section not in find_plugins(STEP_GROUP):
        return []
    try:
        model = getattr(load_plugin(STEP_GROUP, section), "config_model", None)
    except PluginError:
        return []
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return _walk(model, loc[1:], descend=True)[1] if loc[1:] else [model]


def _plugin_source_model(tag: str) -> type[BaseModel] | None:
    """The ``spec_model`` of the source plug-in registered as ``tag``, or ``None``."""
    from conveyor.errors import PluginError
    from conveyor.spec.plugins import SOURCE_GROUP, find_plugins, load_plugin

    if tag not in find_plugins(SOURCE_GROUP):
        return None
    try:
        model = getattr(load_plugin(SOURCE_GROUP, tag), "spec_model", None)
    except PluginError:
        return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> list[type[BaseModel]]:
    """The model classes an annotation can hold (through Optional, Annotated, unions)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg)]
    if origin is list:  # ``models:``: the items' models, reached through an index
        return _unwrap(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _field_keys(model: type[BaseModel]) -> dict[str, str]:
    """YAML key -> attribute name for a model's fields."""
    return {(f.alias or name): name for name, f in model.model_fields.items()}


def _walk(root: type[BaseModel], loc: tuple[Any, ...], *,
          descend: bool = False) -> tuple[Path_, list[type[BaseModel]]]:
    """Turn a pydantic error location into a YAML key path and the models at its end.

    Without ``descend`` the models are those holding the last key; with it, those the last
    key's value may be.
    """
    models: list[type[BaseModel]] = [root]
    path: list[str] = []
    for index, part in enumerate(loc):
        part = str(part)
        matched = [m for m in models if part in _field_keys(m)]
        if matched:
            path.append(part)
            if index == len(loc) - 1 and not descend:
                break
            model = matched[0]
            attr = _field_keys(model)[part]
            models = _unwrap(model.model_fields[attr].annotation)
            continue
        tagged = [m for m in models if "source" in m.model_fields
                  and part in typing.get_args(m.model_fields["source"].annotation)]
        if tagged:  # a discriminated-union tag in the location, not a key of the YAML
            models = tagged
            continue
        plugin = _plugin_source_model(part) if any(
            "source" in m.model_fields for m in models) else None
        if plugin is not None:  # a plug-in source's tag (models._plugin_source puts it there)
            models = [plugin]
            continue
        path.append(part)
        if not (part.isdigit() and models):  # an index keeps the list items' models
            models = []
    return tuple(path), models
