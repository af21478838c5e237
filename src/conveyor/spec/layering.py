"""Layer a spec's plain data: a profile over the base, dotted overrides, then ``${ENV}``.

Each layer records where every key it sets came from (file and line, or the command line) in
a :data:`~conveyor.spec.explain.Sources` map, so a later error names the right place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from conveyor.errors import SpecError
from conveyor.spec.explain import locate
from conveyor.spec.reader import parse_value, read_yaml, short_repr

__all__ = ["apply_overrides", "apply_profile", "interpolate", "parse_override"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|ACCESS_KEY|CREDENTIAL)", re.I)
_PROFILE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_COMMAND_LINE = "<command line>"
Path_ = tuple[str, ...]
_Sources = dict[Path_, tuple[str, int | None]]


def apply_profile(data: dict[str, Any], base: Path, profile: str, sources: _Sources) -> Any:
    """Overlay ``<stem>.<profile>.yaml`` from ``base``'s folder on ``data`` (a deep merge).

    A section whose ``source`` changes is replaced whole, not merged.
    """
    if not _PROFILE.fullmatch(profile):
        raise SpecError(f"profile {profile!r} must be letters, digits, '_' or '-'",
                        file=_COMMAND_LINE)
    overlay_path = base.with_name(f"{base.stem}.{profile}{base.suffix or '.yaml'}")
    if not overlay_path.is_file():
        raise SpecError(f"profile {profile!r} needs the file {overlay_path.name} beside "
                        "the spec", file=str(base))
    overlay, overlay_lines = read_yaml(overlay_path)
    if not isinstance(overlay, dict):
        raise SpecError("a profile is a YAML mapping", file=str(overlay_path), line=1)
    return _deep_merge(data, overlay, (), sources, (str(overlay_path), overlay_lines))


def _deep_merge(
    base: Any, overlay: Any, path: Path_, sources: _Sources,
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
            file=_COMMAND_LINE,
        )
    return tuple(key.split(".")), parse_value(value, file=_COMMAND_LINE, key=key)


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], sources: _Sources) -> None:
    """Set each ``key.path=value`` in ``data``, in order; they come from the command line."""
    for text in overrides:
        key_path, value = parse_override(text)
        _set_path(data, key_path, value, text)
        # what was under the key in a file is gone: its items come from the command line
        for stale in [p for p in sources if len(p) > len(key_path)
                      and p[:len(key_path)] == key_path]:
            del sources[stale]
        for end in range(1, len(key_path) + 1):
            sources.setdefault(key_path[:end], (_COMMAND_LINE, None))
        sources[key_path] = (_COMMAND_LINE, None)


def _set_path(data: dict[str, Any], path: Path_, value: Any, text: str) -> None:
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise SpecError(
                f"override {short_repr(text)}: {'.'.join(path[:depth])} is not a mapping",
                file=_COMMAND_LINE,
            )
        node = node.setdefault(part, {})
    if isinstance(node, list) and path[-1].isdigit() and int(path[-1]) < len(node):
        node[int(path[-1])] = value
    elif isinstance(node, dict):
        node[path[-1]] = value
    else:
        raise SpecError(f"override {short_repr(text)}: cannot set a key inside a value",
                        file=_COMMAND_LINE)


def interpolate(
    value: Any, path: Path_, sources: Mapping[Path_, tuple[str, int | None]],
    env: Mapping[str, str],
) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of ``value`` from ``env``.

    A variable whose name looks like a secret is refused: secrets never go through a spec.
    """
    if isinstance(value, dict):
        return {k: interpolate(v, (*path, k), sources, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, (*path, str(i)), sources, env) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if _SECRET_NAME.search(name):
            file, line = locate(sources, path)
            raise SpecError(
                f"${{{name}}} looks like a secret; secrets never go through the spec "
                "(use the environment or a credentials profile read by the client)",
                file=file, line=line, key=".".join(path),
            )
        if name in env:
            return env[name]
        if default is not None:
            return default
        file, line = locate(sources, path)
        raise SpecError(
            f"environment variable {name} is not set (write ${{{name}:-default}} for a default)",
            file=file, line=line, key=".".join(path),
        )

    return _ENV.sub(replace, value)
