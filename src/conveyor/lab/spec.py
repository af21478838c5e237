"""The lab spec: which folder is watched, which data set, split, model name and promotion rules.

A lab spec is its own small YAML file (``examples/iris_lab/lab.yaml``): it shares the
pipeline spec's building blocks (split, preprocess, tracking, store, the bundled data set)
and its loading rules (safe YAML, duplicate keys refused, ``${ENV:-default}``, unknown keys
named with the nearest valid one), but describes a folder of many models instead of one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from conveyor.errors import SpecError
from conveyor.spec import read_yaml
from conveyor.spec.explain import explain
from conveyor.spec.layering import interpolate
from conveyor.spec.models import (
    NAME_PATTERN,
    PreprocessSpec,
    SklearnSource,
    SplitSpec,
    StoreSpec,
    TrackingSpec,
    check_storage_options,
)
from conveyor.store import Store, store_root, to_uri

__all__ = ["LAB_METRICS", "Lab", "LabSpec", "PromotionSpec", "WatchSpec", "load_lab"]

LAB_METRICS = ("accuracy", "f1", "precision", "recall")
LabMetric = Literal["accuracy", "f1", "precision", "recall"]
#: Seconds one file may spend being read, checked and fitted (``watch.file_time_limit_seconds``):
#: far above any fit on a bundled data set (milliseconds to seconds), far below the claim's
#: hour, so a file that fits for ever costs one pass five minutes, not the whole inbox an hour.
DEFAULT_FILE_TIME_LIMIT = 300.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WatchSpec(_Model):
    """The watched folder of config files."""

    folder: str = Field(description="A local path (relative to the spec) or an s3:// prefix.")
    storage_options: dict[str, Any] = Field(default_factory=dict)
    min_age_seconds: float = Field(
        default=5.0, ge=0.0,
        description="Ignore files modified more recently than this (may be half-written).",
    )
    max_bytes: int = Field(default=256 * 1024, gt=0, description="Refuse larger config files.")
    claim_ttl_seconds: float = Field(
        default=3600.0, gt=0.0,
        description="A claim with no outcome after this long may be claimed again.",
    )
    file_time_limit_seconds: float = Field(
        default=DEFAULT_FILE_TIME_LIMIT, gt=0.0, le=6 * 3600.0,
        description="Reading, checking and fitting one file's configs must end within this; "
                    "a file that takes longer is stopped and rejected.",
    )

    _no_secrets = field_validator("storage_options")(check_storage_options)

    @model_validator(mode="after")
    def _limit_within_claim(self) -> WatchSpec:
        # a claim that expires while its file is still fitting lets a second watcher take it
        if self.file_time_limit_seconds >= self.claim_ttl_seconds:
            raise ValueError(
                f"file_time_limit_seconds ({self.file_time_limit_seconds:g}) must be shorter "
                f"than claim_ttl_seconds ({self.claim_ttl_seconds:g}): a claim must outlive "
                "the work it covers; lower the one or raise the other")
        return self


class PromotionSpec(_Model):
    """How registered versions are compared and when ``production`` moves."""

    metric: LabMetric = Field(default="f1", description="Macro-averaged for multiclass.")
    min_delta: float = Field(default=0.0, ge=0.0,
                             description="How much the best must beat production by.")
    minimums: dict[LabMetric, float] = Field(
        default_factory=dict, description="Absolute floors, e.g. {f1: 0.9}.")
    check_rows: int = Field(default=10, ge=1,
                            description="Rows scored after loading from the registry.")


class LabSpec(_Model):
    """A lab: a watched folder of classifier configs trained on one bundled data set."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    schedule: str | None = None
    watch: WatchSpec
    data: SklearnSource = Field(
        default_factory=lambda: SklearnSource(source="sklearn", name="iris"))
    split: SplitSpec = Field(default_factory=lambda: SplitSpec(test_size=0.3))
    preprocess: PreprocessSpec = Field(default_factory=PreprocessSpec)
    model_name: str = Field(default="iris_classifier", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$",
                            description="The registered model every config becomes a version of.")
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    store: StoreSpec = Field(default_factory=StoreSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)


@dataclass(frozen=True)
class Lab:
    """A loaded lab spec with every location resolved to a URI.

    Attributes:
        spec: the validated spec.
        path: the spec file (``None`` when built in code).
        inbox_uri: the watched folder (``file://`` or ``s3://``).
        store_root: the artifact store's root URI.
        tracking_uri: the MLflow tracking URI (``None``: the embedded default).
    """

    spec: LabSpec
    path: Path | None
    inbox_uri: str
    store_root: str
    tracking_uri: str | None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def experiment(self) -> str:
        return self.spec.tracking.experiment or self.spec.name

    def store(self) -> Store:
        """The artifact store (a new handle: cheap, and safe to build in any process)."""
        return Store(self.store_root, self.spec.store.storage_options)

    @classmethod
    def from_spec(cls, spec: LabSpec, *, base_dir: Path | None = None,
                  path: Path | None = None) -> Lab:
        base = base_dir or Path.cwd()
        return cls(spec=spec, path=path, inbox_uri=to_uri(spec.watch.folder, base),
                   store_root=store_root(spec.store.root, base), tracking_uri=spec.tracking.uri)


def load_lab(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Lab:
    """Load and validate a lab spec.

    Raises:
        SpecError: on any problem, naming the file, the line and the key.
    """
    file = Path(path)
    data, lines = read_yaml(file, what="lab spec")
    if not isinstance(data, dict):
        raise SpecError("a lab spec is a YAML mapping (name, watch, data, promotion, ...)",
                        file=str(file), line=1)
    sources = {(): (str(file), 1), **{p: (str(file), ln) for p, ln in lines.items()}}
    data = interpolate(data, (), sources, os.environ if env is None else env)
    try:
        spec = LabSpec.model_validate(data)
    except ValidationError as exc:
        # a key with no line of its own (a missing section) names the file, not line 1
        raise explain(exc, {**sources, (): (str(file), None)}, LabSpec) from None
    return Lab.from_spec(spec, base_dir=file.resolve().parent, path=file)
