"""A spec's identity: locations resolved to absolute URIs, and what changed between two specs.

Two spellings of the same location (``data.csv``, ``./data.csv``, ``file:///abs/data.csv``)
are one spec (ADR 0023); the Store resolves locations by the same rule (``store.to_uri``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["LOCATION_KEYS", "MISSING", "resolve_location", "resolve_locations", "spec_changes"]

Path_ = tuple[str, ...]
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
