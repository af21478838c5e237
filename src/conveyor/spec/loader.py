"""Load a spec: safe YAML with line numbers, profiles, ``${ENV}``, dotted overrides, pydantic.

Every failure is a :class:`~conveyor.errors.SpecError` naming the file, the line and the key,
with the nearest valid key for a typo.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from conveyor.errors import SpecError
from conveyor.spec.models import Spec
from conveyor.spec.reader import parse_value, read_yaml, short_repr

__all__ = [
    "LoadedSpec",
    "interpolate",
    "load_spec",
    "parse_override",
    "read_yaml",
    "resolve_location",
    "resolve_locations",
    "spec_changes",
]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|ACCESS_KEY|CREDENTIAL)", re.I)
Path_ = tuple[str, ...]


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and where it came from.

    Attributes:
        spec: the validated spec.
        path: the base spec file.
        base_dir: the folder relative paths in the spec are resolved against.
        resolved: the spec as plain data after profile, interpolation and overrides.
        overrides: the dotted overrides that were applied, in order.
        profile: the profile overlaid on the base, if any.
    """

    spec: Spec
    path: Path
    resolved: dict[str, Any]
    overrides: tuple[str, ...] = ()
    profile: str | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    sources: dict[Path_, tuple[str, int | None]] = field(default_factory=dict, repr=False)

    def error(self, key: str, message: str) -> SpecError:
        """A SpecError for ``key`` (dotted), naming the file and line it came from."""
        path = tuple(key.split("."))
        file, line = _source(self.sources, path) if self.sources else (str(self.path), None)
        return SpecError(message, file=file, line=line, key=key)

    @property
    def identity(self) -> dict[str, Any]:
        """The spec as a run's identity: ``spec.dump()`` with every location resolved.

        ``data.uri``, ``store.root`` and ``export.uri`` become absolute URIs (relative paths
        against :attr:`base_dir`, symlinks followed), so two spellings of the same file are
        the same spec (ADR 0023). What the data *holds* is the ingest step's data hash.
        """
        return resolve_locations(self.spec.dump(), self.base_dir)

    @property
    def spec_hash(self) -> str:
        """sha256 of :attr:`identity` as canonical JSON: the config identity of a run."""
        canonical = json.dumps(self.identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# --------------------------------------------------------------------------- identity

LOCATION_KEYS: tuple[Path_, ...] = (("data", "uri"), ("store", "root"), ("export", "uri"))


def resolve_location(location: str, base_dir: Path) -> str:
    """An absolute URI for a location as spelled in a spec (``store.to_uri``'s rule).

    A bare or ``file://`` path resolves against ``base_dir`` with symlinks followed; a URI
    of another scheme is kept, without a trailing slash.
    """
    if "://" in location:
        scheme, _, rest = location.partition("://")
        if scheme != "file":
            return location.rstrip("/")
        location = rest
    path = Path(location).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return "file://" + str(path.resolve())


def resolve_locations(dumped: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    """A copy of a dumped spec with the :data:`LOCATION_KEYS` resolved (idempotent)."""
    out = json.loads(json.dumps(dumped, default=str))
    for section, key in LOCATION_KEYS:
        holder = out.get(section)
        if isinstance(holder, dict) and isinstance(holder.get(key), str) and holder[key]:
            holder[key] = resolve_location(holder[key], base_dir)
    return out


def spec_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """The dotted keys whose values differ between two dumped specs: (key, old, new).

    A key missing on one side is reported with :data:`MISSING` there; such keys come last.
    """
    flat_old, flat_new = _flat(old), _flat(new)
    changes = [(key, flat_old.get(key, MISSING), flat_new.get(key, MISSING))
               for key in sorted(flat_old.keys() | flat_new.keys())
               if flat_old.get(key, MISSING) != flat_new.get(key, MISSING)]
    # values changed in place first: a swapped section (data.source) adds and drops many keys
    return sorted(changes, key=lambda c: c[1] is MISSING or c[2] is MISSING)


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


# --------------------------------------------------------------------------- layering


def _deep_merge(
    base: Any, overlay: Any, path: Path_, sources: dict[Path_, tuple[str, int | None]],
    origin: tuple[str, dict[Path_, int]],
) -> Any:
    file, lines = origin
    if (
        isinstance(base, dict) and isinstance(overlay, dict)
        and base.get("source", overlay.get("source")) == overlay.get("source", base.get("source"))
    ):  # a section whose ``source`` changes is replaced whole, not merged
        out = dict(base)
        for key, value in overlay.items():
            child = (*path, key)
            sources[child] = (file, lines.get(child))
            out[key] = _deep_merge(base.get(key), value, child, sources, origin)
        return out
    for child_path, line in lines.items():
        if child_path[: len(path)] == path:
            sources[child_path] = (file, line)
    return overlay


def parse_override(text: str) -> tuple[Path_, Any]:
    """Parse one ``a.b.c=value`` override; the value is YAML (``0.3``, ``true``, ``[1, 2]``)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise SpecError(
            f"override {short_repr(text)} is not of the form key.path=value "
            "(e.g. model.params.C=0.3)",
            file="<command line>",
        )
    return tuple(key.split(".")), parse_value(value, file="<command line>", key=key)


def _set_path(data: dict[str, Any], path: Path_, value: Any, text: str) -> None:
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise SpecError(
                f"override {short_repr(text)}: {'.'.join(path[:depth])} is not a mapping",
                file="<command line>",
            )
        node = node.setdefault(part, {})
    if isinstance(node, list) and path[-1].isdigit() and int(path[-1]) < len(node):
        node[int(path[-1])] = value
    elif isinstance(node, dict):
        node[path[-1]] = value
    else:
        raise SpecError(f"override {short_repr(text)}: cannot set a key inside a value",
                        file="<command line>")


def interpolate(
    value: Any, path: Path_, sources: dict[Path_, tuple[str, int | None]],
    env: Mapping[str, str],
) -> Any:
    if isinstance(value, dict):
        return {k: interpolate(v, (*path, k), sources, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, (*path, str(i)), sources, env) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if _SECRET_NAME.search(name):
            file, line = _source(sources, path)
            raise SpecError(
                f"${{{name}}} looks like a secret; secrets never go through the spec "
                "(use the environment or a credentials profile read by the client)",
                file=file, line=line, key=".".join(path),
            )
        if name in env:
            return env[name]
        if default is not None:
            return default
        file, line = _source(sources, path)
        raise SpecError(
            f"environment variable {name} is not set (write ${{{name}:-default}} for a default)",
            file=file, line=line, key=".".join(path),
        )

    return _ENV.sub(replace, value)


def _source(sources: dict[Path_, tuple[str, int | None]], path: Path_) -> tuple[str, int | None]:
    for end in range(len(path), 0, -1):
        if path[:end] in sources:
            return sources[path[:end]]
    return next(iter(sources.values()), ("<spec>", None))


# --------------------------------------------------------------------------- validation


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes an annotation can hold (through Optional, Annotated, unions)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _field_keys(model: type[BaseModel]) -> dict[str, str]:
    """YAML key -> attribute name for a model's fields."""
    return {(f.alias or name): name for name, f in model.model_fields.items()}


def _walk(loc: tuple[Any, ...], *, descend: bool = False) -> tuple[Path_, list[type[BaseModel]]]:
    """Turn a pydantic error location into a YAML key path and the models at its end.

    Without ``descend`` the models are those holding the last key; with it, those the last
    key's value may be.
    """
    models: list[type[BaseModel]] = [Spec]
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
        path.append(part)
        models = []
    return tuple(path), models


def _explain(exc: ValidationError, sources: dict[Path_, tuple[str, int | None]]) -> SpecError:
    errors = exc.errors(include_url=False)
    # a typo of a required key shows up as "missing" *and* "extra": the typo explains both
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    path, _ = _walk(tuple(error["loc"]))
    key = ".".join(path) or None
    file, line = _source(sources, path) if path else next(iter(sources.values()))
    kind = error["type"]
    if kind == "extra_forbidden" and path:
        _, parent_models = _walk(tuple(error["loc"])[:-1], descend=True)
        valid = sorted({k for m in parent_models for k in _field_keys(m)})
        close = difflib.get_close_matches(path[-1], valid, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
        message = f"unknown key {short_repr(path[-1])}; {hint}"
    elif kind == "missing":
        message = "required key is missing"
    elif kind in ("literal_error", "enum"):
        message = f"{error['msg'].lower()}, got {short_repr(error.get('input'))}"
    elif kind == "union_tag_invalid":
        message = error["msg"]
    else:
        text = error["msg"]
        if text.startswith("Value error, "):
            text = text[len("Value error, "):]
        got = error.get("input")
        message = (text if kind == "value_error" or isinstance(got, dict)
                   else f"{text}, got {short_repr(got)}")
    if len(message) > 300:  # a validator may echo a huge value; the error stays one line
        message = message[:300] + "…"
    return SpecError(message, file=file, line=line, key=key)


def load_spec(
    path: str | os.PathLike[str],
    overrides: Iterable[str] = (),
    *,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
) -> LoadedSpec:
    """Load, layer and validate a spec.

    Args:
        path: the base spec file (YAML).
        overrides: dotted ``key.path=value`` overrides, applied last, in order.
        profile: overlay ``<stem>.<profile>.yaml`` from the same folder on the base.
        env: the variables ``${VAR}`` is resolved from; the process environment by default.

    Returns:
        The validated spec and its provenance.

    Raises:
        SpecError: on any problem, naming the file, line and key.
    """
    base = Path(path)
    data, lines = read_yaml(base)
    if not isinstance(data, dict):
        raise SpecError("a spec is a YAML mapping of sections (name, data, schema, model, ...)",
                        file=str(base), line=1)
    sources: dict[Path_, tuple[str, int | None]] = {(): (str(base), 1)}
    sources.update({p: (str(base), ln) for p, ln in lines.items()})
    if profile:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", profile):
            raise SpecError(f"profile {profile!r} must be letters, digits, '_' or '-'",
                            file="<command line>")
        overlay_path = base.with_name(f"{base.stem}.{profile}{base.suffix or '.yaml'}")
        if not overlay_path.is_file():
            raise SpecError(f"profile {profile!r} needs the file {overlay_path.name} beside "
                            "the spec", file=str(base))
        overlay, overlay_lines = read_yaml(overlay_path)
        if not isinstance(overlay, dict):
            raise SpecError("a profile is a YAML mapping", file=str(overlay_path), line=1)
        data = _deep_merge(data, overlay, (), sources, (str(overlay_path), overlay_lines))
    overrides = tuple(overrides)
    for text in overrides:
        key_path, value = parse_override(text)
        _set_path(data, key_path, value, text)
        for end in range(1, len(key_path) + 1):
            sources.setdefault(key_path[:end], ("<command line>", None))
        sources[key_path] = ("<command line>", None)
    data = interpolate(data, (), sources, os.environ if env is None else env)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, sources) from None
    for key_path, message in spec.cross_check():
        file, line = _source(sources, key_path)
        raise SpecError(message, file=file, line=line, key=".".join(key_path))
    return LoadedSpec(
        spec=spec, path=base, resolved=data, overrides=overrides, profile=profile,
        base_dir=base.resolve().parent, sources=sources,
    )
