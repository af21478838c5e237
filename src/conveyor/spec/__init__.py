"""The pipeline spec: models, loading, overrides, interpolation."""

from conveyor.spec.loader import LoadedSpec, load_spec, parse_override, read_yaml
from conveyor.spec.models import Spec

__all__ = ["LoadedSpec", "Spec", "load_spec", "parse_override", "read_yaml"]
