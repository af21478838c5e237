"""The pipeline spec: models, loading, overrides, interpolation."""

from conveyor.spec.loader import LoadedSpec, load_spec, parse_override
from conveyor.spec.models import Spec
from conveyor.spec.reader import load_yaml, read_yaml, short_repr

__all__ = [
    "LoadedSpec",
    "Spec",
    "load_spec",
    "load_yaml",
    "parse_override",
    "read_yaml",
    "short_repr",
]
