"""Load a spec: read the YAML, layer profile, overrides and ``${ENV}``, validate with pydantic.

The jobs live in one module each: :mod:`~conveyor.spec.reader` (safe, bounded YAML with line
numbers), :mod:`~conveyor.spec.layering` (profile, overrides, interpolation),
:mod:`~conveyor.spec.explain` (a pydantic error as ``file:line: key: message``) and
:mod:`~conveyor.spec.identity` (resolved locations, the spec hash's input). This module puts
them in order. Every failure is a :class:`~conveyor.errors.SpecError` naming the file, the
line and the key, with the nearest valid key for a typo.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from conveyor.errors import SpecError
from conveyor.spec.explain import explain, locate
from conveyor.spec.identity import (
    MISSING,
    resolve_location,
    resolve_locations,
    spec_changes,
)
from conveyor.spec.layering import apply_overrides, apply_profile, interpolate, parse_override
from conveyor.spec.models import Spec
from conveyor.spec.reader import read_yaml

__all__ = [
    "MISSING",
    "LoadedSpec",
    "interpolate",
    "load_spec",
    "parse_override",
    "read_yaml",
    "resolve_location",
    "resolve_locations",
    "spec_changes",
]

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
        file, line = locate(self.sources, path) if self.sources else (str(self.path), None)
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
        data = apply_profile(data, base, profile, sources)
    overrides = tuple(overrides)
    apply_overrides(data, overrides, sources)
    data = interpolate(data, (), sources, os.environ if env is None else env)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, sources, Spec) from None
    for key_path, message in spec.cross_check():
        file, line = locate(sources, key_path)
        raise SpecError(message, file=file, line=line, key=".".join(key_path))
    return LoadedSpec(
        spec=spec, path=base, resolved=data, overrides=overrides, profile=profile,
        base_dir=base.resolve().parent, sources=sources,
    )
