"""Pydantic models of a pipeline spec: the whole truth of a pipeline.

One stem per idea: the YAML key ``split:`` is :class:`SplitSpec`, run by ``steps/split.py``.
Every model forbids unknown keys, so a typo is an error that names the key and the nearest
valid one (see :mod:`conveyor.spec.loader`).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from conveyor.errors import PluginError
from conveyor.spec.plugins import SOURCE_GROUP, STEP_GROUP, find_plugins, load_plugin
from conveyor.spec.space import ParamRange, SpaceValue, parse_timeout

__all__ = [
    "CLASSIFICATION_METRICS",
    "LOWER_IS_BETTER",
    "METRIC_RANGES",
    "REGRESSION_METRICS",
    "ROW_CHECKS",
    "SECRET_OPTION_KEYS",
    "Candidate",
    "CandidateSpec",
    "ChampionSpec",
    "ColumnRule",
    "DataSpec",
    "DeriveFunction",
    "DriftSpec",
    "EvaluateSpec",
    "ExportSpec",
    "FileSource",
    "GateSpec",
    "MetricName",
    "ModelSpec",
    "MonitorSpec",
    "ParamRange",
    "PreprocessSpec",
    "RegistrySpec",
    "SchemaSpec",
    "SklearnSource",
    "Spec",
    "SplitSpec",
    "StoreSpec",
    "ThresholdSpec",
    "TrackingSpec",
    "TuneSpec",
    "ValidateSpec",
    "check_storage_options",
    "derived_columns",
]

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
# fsspec storage options that carry secrets: they come from the environment or a profile.
SECRET_OPTION_KEYS = frozenset(
    {"key", "secret", "token", "password", "aws_access_key_id", "aws_secret_access_key",
     "aws_session_token", "session_token", "access_key", "secret_key", "sas_token"}
)
# The values each metric can take. A gate bound outside its metric's range is a mistake in
# the spec (a minimum of 1.5 can never pass, a minimum of -0.1 always passes), not a gate.
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "accuracy": (0.0, 1.0), "precision": (0.0, 1.0), "recall": (0.0, 1.0), "f1": (0.0, 1.0),
    "roc_auc": (0.0, 1.0), "log_loss": (0.0, math.inf),
    "pr_auc": (0.0, 1.0), "specificity": (0.0, 1.0), "balanced_accuracy": (0.0, 1.0),
    "rmse": (0.0, math.inf), "mae": (0.0, math.inf), "r2": (-math.inf, 1.0),
    "mape": (0.0, math.inf),
}
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss",
                          "pr_auc", "specificity", "balanced_accuracy")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
#: Metrics where a smaller value is a better model (a gate ``min_delta`` and a search's
#: direction follow this); every other metric is better when larger.
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mape"})
MetricName = Literal["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "pr_auc",
                     "specificity", "balanced_accuracy", "rmse", "mae", "r2", "mape"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_storage_options(options: dict[str, Any]) -> dict[str, Any]:
    for key in options:
        if key.lower() in SECRET_OPTION_KEYS:
            raise ValueError(
                f"inline secret {key!r} is not allowed in a spec; set it in the environment "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or an fsspec/AWS profile"
            )
    return options


class FileSource(_Model):
    """A table in a file reachable through fsspec (``file://``, ``s3://``, or a local path)."""

    source: Literal["file"] = "file"
    uri: str = Field(description="Where the file is; a path relative to the spec is allowed.")
    format: Literal["csv", "parquet", "jsonl"] | None = Field(
        default=None, description="Defaults to the file's extension (csv for unknown ones)."
    )
    header: bool = True
    columns: list[str] | None = Field(
        default=None, description="Column names, for files without a header row."
    )
    separator: str = ","
    na_values: list[str] = Field(default_factory=lambda: ["", "NA", "NaN", "N/A", "null", "?"])
    max_bytes: int = Field(default=2 * 1024**3, gt=0, description="Refuse larger files.")
    storage_options: dict[str, Any] = Field(default_factory=dict)
    # -- chunked and partitioned reading (issue 12, ADR 0044)
    chunk_rows: int = Field(default=50_000, gt=0,
                            description="Rows read at a time (memory is bounded by a chunk).")
    partitioning: Literal["hive"] | None = Field(
        default=None, description="hive: key=value folders of a folder or glob become "
                                  "columns (text).")

    _no_secrets = field_validator("storage_options")(check_storage_options)

    @model_validator(mode="after")
    def _columns_need_no_header(self) -> FileSource:
        if self.columns is not None and len(set(self.columns)) != len(self.columns):
            dup = sorted({c for c in self.columns if self.columns.count(c) > 1})
            raise ValueError(f"duplicate column names: {', '.join(dup)}")
        return self


class SklearnSource(_Model):
    """A data set bundled with scikit-learn (no download)."""

    source: Literal["sklearn"]
    name: Literal["breast_cancer", "iris", "wine", "digits", "diabetes"]


_BUILTIN_SOURCES = ("file", "sklearn")


def _validate_under(model: type[BaseModel], value: Any, *where: str) -> BaseModel:
    """``model.model_validate(value)`` whose errors are located under the key path ``where``
    (a plug-in's model is validated from inside the spec's, which would lose the path)."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        details = [{"type": e["type"], "loc": (*where, *e["loc"]), "input": e.get("input"),
                    **({"ctx": e["ctx"]} if "ctx" in e else {})}
                   for e in exc.errors(include_url=False)]
        raise ValidationError.from_exception_data("Spec", details) from None  # type: ignore[arg-type]


def _plugin_source(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A ``data:`` whose ``source`` names a plug-in is validated by the plug-in's model.

    The built-in sources keep pydantic's discriminated union (and its messages); a tag that
    is neither built in nor registered in ``conveyor.sources`` fails there as before.
    """
    tag = value.get("source") if isinstance(value, dict) else None
    if isinstance(tag, str) and tag not in _BUILTIN_SOURCES and tag in find_plugins(
            SOURCE_GROUP):
        try:
            plugin = load_plugin(SOURCE_GROUP, tag)
        except PluginError as exc:
            raise ValueError(str(exc)) from None
        model = getattr(plugin, "spec_model", None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ValueError(f"source plug-in {tag!r} has no spec_model (a pydantic model of "
                             "its data: section)")
        # pydantic puts it under ``data`` itself; the tag in the location tells the error
        # explainer which model's keys are valid (as a discriminated union's tag does)
        return _validate_under(model, value, tag)
    return handler(value)


DataSpec = Annotated[FileSource | SklearnSource, Field(discriminator="source"),
                     WrapValidator(_plugin_source)]


class SchemaSpec(_Model):
    """What the columns mean: the target, its positive label, the id, the features."""

    target: str
    positive_label: str | int | None = Field(
        default=None, description="The positive class of a binary target (precision, recall, F1)."
    )
    id: str | None = None
    features: Literal["infer"] | list[str] | dict[str, Literal["numeric", "categorical"]] = (
        "infer"
    )
    drop: list[str] = Field(default_factory=list, description="Columns never used as features.")
    # issue 11 (regression): the task; ``auto`` is decided from the target by the validate
    # step (conveyor.modeling.tasks.infer_task, ADR 0038)
    task: Literal["auto", "classification", "regression"] = Field(
        default="auto", description="classification, regression, or auto: from the target.")

    @model_validator(mode="after")
    def _target_not_a_feature(self) -> SchemaSpec:
        named = self.features if isinstance(self.features, (list, dict)) else []
        for column in (self.target, self.id):
            if column is not None and column in named:
                raise ValueError(f"column {column!r} is the target or id; it cannot be a feature")
        return self


# --------------------------------------------------------------------------- validate (issue 12)
#: What a check does when it finds a problem: stop the run, drop the offending rows (row
#: checks only; counted and reported), record a warning, or skip the check.
Policy = Literal["fail", "drop", "warn", "off"]
#: Checks that find rows (a ``drop`` removes them); the others judge whole columns.
ROW_CHECKS = frozenset({"types", "values", "duplicate_ids", "target_values"})


class ColumnRule(_Model):
    """``validate.columns.<name>``: what one column may hold (checked with pandera)."""

    dtype: Literal["numeric", "integer", "categorical", "bool"] | None = Field(
        default=None, description="The kind of values; numeric text is coerced first.")
    min: float | None = Field(default=None, description="Smallest allowed value.")
    max: float | None = Field(default=None, description="Largest allowed value.")
    allowed: list[str | int | float | bool] | None = Field(
        default=None, min_length=1, description="The only values allowed (a target's classes).")
    nullable: bool = Field(default=True, description="Whether a value may be missing.")
    policy: Policy | None = Field(
        default=None, description="This column's policy; default validate.values.")

    @model_validator(mode="after")
    def _bounds(self) -> ColumnRule:
        for name in ("min", "max"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}: no value can pass")
        if self.dtype == "bool" and (self.min is not None or self.max is not None):
            raise ValueError("min and max do not apply to a bool column")
        return self


class DriftSpec(_Model):
    """``validate.drift``: the comparison with the pipeline's saved schema (TFX-style)."""

    policy: Policy = Field(default="warn", description="fail, warn or off (no rows to drop).")

    @field_validator("policy")
    @classmethod
    def _no_drop(cls, value: str) -> str:
        if value == "drop":
            raise ValueError("drop applies to rows; drift judges whole columns: use fail, "
                             "warn or off")
        return value
    max_out_of_range_share: float = Field(
        default=0.01, ge=0, le=1,
        description="Share of a column's values outside the saved range or categories.")
    max_missing_increase: float = Field(
        default=0.1, ge=0, le=1,
        description="How much a column's missing share may grow over the saved one.")


_NEW_VALIDATE_KEYS = ("values", "drift", "columns")


class ValidateSpec(_Model):
    """Data checks and what each does when it finds a problem."""

    missing_columns: Policy = "fail"
    types: Policy = "fail"
    empty_columns: Policy = "fail"
    target_values: Policy = "fail"
    duplicate_ids: Policy = "fail"
    single_class: Policy = "fail"
    leakage: Policy = "fail"
    min_rows: int = Field(default=10, ge=1)
    max_missing_fraction: float = Field(default=1.0, ge=0.0, le=1.0)
    min_class_rows: int = Field(default=2, ge=1)
    # issue 12: per-column rules (pandera) and the comparison with the saved schema
    values: Policy = Field(default="fail", description="Policy of validate.columns rules.")
    drift: DriftSpec = Field(default_factory=DriftSpec)
    columns: dict[str, ColumnRule] = Field(default_factory=dict)

    @field_validator("missing_columns", "empty_columns", "single_class", "leakage")
    @classmethod
    def _drop_needs_rows(cls, value: str) -> str:
        if value == "drop":
            raise ValueError(f"drop applies to the checks that find rows "
                             f"({', '.join(sorted(ROW_CHECKS))}); use fail, warn or off")
        return value

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The keys issue 12 added are left out at their defaults, so a spec written before
        # them keeps its hash (its runs stay resumable and its cache keys valid; ADR 0046).
        data = handler(self)
        default = type(self)()
        for name in _NEW_VALIDATE_KEYS:
            if getattr(self, name) == getattr(default, name):
                data.pop(name, None)
        return data


class SplitSpec(_Model):
    """Hold-out split of the validated table."""

    test_size: float = Field(default=0.2, gt=0.0, lt=1.0)
    stratify: bool = True
    seed: int = 42
    # -- a separate test set (issue 12, ADR 0044): every validated row trains, these test
    test_data: DataSpec | None = Field(
        default=None, description="A data source of its own for the test set (then "
                                  "test_size, stratify and seed are not used).")


Impute = Literal["mean", "median", "most_frequent", "constant", "none"]
Scale = Literal["standard", "minmax", "robust", "none"]
Clip = Literal["iqr", "zscore", "none"]


class NumericSpec(_Model):
    impute: Impute = "median"
    fill_value: float = Field(default=0.0, description="The value of ``impute: constant``.")
    indicator: bool = Field(default=False,
                            description="Add a 0/1 column per feature that had missing values.")
    scale: Scale = "standard"
    clip: Clip = Field(default="none", description="Clip outliers to bounds learnt on train.")
    clip_factor: float | None = Field(
        default=None, gt=0, description="IQR multiple (default 1.5) or z-score (default 3).")


class CategoricalSpec(_Model):
    impute: Literal["most_frequent", "constant", "none"] = "most_frequent"
    fill_value: str = Field(default="missing",
                            description="The category of ``impute: constant``.")
    indicator: bool = False
    encode: Literal["onehot", "ordinal"] = "onehot"
    unknown: Literal["infrequent", "ignore", "error"] = Field(
        default="infrequent", description="A category unseen in training: the infrequent "
        "bucket (or all zeros), all zeros, or an error at prediction.")
    max_categories: int | None = Field(default=20, ge=2)


class ColumnPreprocessSpec(_Model):
    """One column's own preprocessing: any key left out comes from its kind's section."""

    impute: Literal["mean", "median", "most_frequent", "constant", "none"] | None = None
    fill_value: float | str | None = None
    indicator: bool | None = None
    scale: Scale | None = None
    clip: Clip | None = None
    clip_factor: float | None = Field(default=None, gt=0)
    encode: Literal["onehot", "ordinal"] | None = None
    unknown: Literal["infrequent", "ignore", "error"] | None = None
    max_categories: int | None = Field(default=None, ge=2)


class PreprocessSpec(_Model):
    """Preprocessing, built into a ColumnTransformer fitted on the training split only."""

    numeric: NumericSpec = Field(default_factory=NumericSpec)
    categorical: CategoricalSpec = Field(default_factory=CategoricalSpec)
    columns: dict[str, ColumnPreprocessSpec] = Field(
        default_factory=dict, description="Per-column settings over the kind's defaults.")


class DeriveFunction(_Model):
    """A derived column computed by the user's own Python function (by import path, from a
    package ``CONVEYOR_FEATURE_MODULES`` allows): ``fn(frame[columns]) -> values``."""

    function: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
    columns: list[str] = Field(default_factory=list,
                               description="The columns it reads (default: all).")


def _check_expression(value: Any) -> Any:
    if isinstance(value, str):
        from conveyor.spec.expressions import parse

        parse(value)  # ExpressionError is a ValueError: pydantic locates it under the key
    return value


DeriveRule = Annotated[str | DeriveFunction, WrapValidator(
    lambda value, handler: handler(_check_expression(value)))]


def derived_columns(derive: dict[str, Any]) -> list[str]:
    """The names ``derive:`` adds, in order."""
    return list(derive)


#: A range under grid search: a grid needs a finite list of points.
RANGE_NEEDS = "a range needs {key}: random or optuna; grid search takes a list of values"


class TuneSpec(_Model):
    """Hyper-parameter search with cross-validation on the training split.

    ``grid`` and ``random`` are scikit-learn's searches (grid over lists only; random draws
    from lists and from ranges, as scipy.stats distributions); ``optuna`` is a Bayesian
    search (TPE) over lists and ranges with a trial and a time budget and pruning
    (docs/training.md, ADR 0039). Under ``model:`` the space is ``params``; beside a
    ``models:`` list this is the top-level ``tune:`` and each candidate has its own ``space``.
    """

    method: Literal["grid", "random", "optuna"] = "grid"
    params: dict[str, SpaceValue] = Field(default_factory=dict)
    cv: int = Field(default=5, ge=2)
    metric: str = "f1"
    n_iter: int = Field(default=20, ge=1)
    # --- optuna only (ADR 0039)
    stratify: bool = Field(default=True, description="Stratified folds (else shuffled k-fold).")
    n_trials: int = Field(default=50, ge=1, description="Trials in all, over every candidate.")
    timeout: float | None = Field(default=None, description="Time budget: seconds or '2m'.")
    pruning: bool = Field(default=True, description="Stop a trial whose folds lag the median.")
    n_jobs: int = Field(default=1, ge=-1, description="Parallel trials; only 1 is repeatable.")
    seed: int | None = Field(default=None, description="The sampler's seed; default split.seed.")

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float | None:
        return parse_timeout(value)

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        # one of the metrics evaluate knows (the task's fit is checked by modeling.tasks);
        # anything else reached scikit-learn's get_scorer in the middle of the run
        known = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
        if value not in known:
            close = difflib.get_close_matches(value, known, n=1, cutoff=0.4)
            hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(known)}"
            raise ValueError(f"unknown metric {value!r}; {hint}")
        return value

    @field_validator("n_jobs")
    @classmethod
    def _jobs(cls, value: int) -> int:
        if value == 0:
            raise ValueError("n_jobs must be 1 or more, or -1 for every core")
        return value

    def check(self) -> list[tuple[tuple[str, ...], str]]:
        """Problems of the method with its options: (key path under ``tune``, message)."""
        problems: list[tuple[tuple[str, ...], str]] = []
        if self.method != "optuna":
            for key in ("n_trials", "timeout", "pruning", "n_jobs", "stratify", "seed"):
                if key in self.model_fields_set:
                    problems.append(((key,), f"{key} applies to method: optuna, not "
                                     f"{self.method}"))
            if self.method == "grid":
                problems += [(("params", name), RANGE_NEEDS.format(key="method"))
                             for name, value in self.params.items()
                             if isinstance(value, ParamRange)]
        elif "n_iter" in self.model_fields_set:
            problems.append((("n_iter",), "n_iter is for method: random; optuna's budget is "
                             "n_trials (and timeout)"))
        return problems


class ThresholdSpec(_Model):
    """A decision threshold tuned on out-of-fold probabilities of the training split.

    ``model.threshold: 0.3`` fixes it instead. Either way the threshold is saved inside the
    model (docs/decisions/0041-evaluation-report-and-threshold.md).
    """

    metric: Literal["f1", "precision", "recall", "accuracy", "balanced_accuracy",
                    "specificity"] = Field(
        default="f1", description="The label metric the threshold maximises on the folds.")
    cv: int = Field(default=5, ge=2, description="Stratified folds of the training split.")


class ModelSpec(_Model):
    """The estimator: an allow-listed short name or import path, and its parameters."""

    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    tune: TuneSpec | None = None
    threshold: float | ThresholdSpec | None = Field(
        default=None, description="Binary only: a fixed probability threshold of the positive "
        "class, or {metric, cv} to tune it on folds of the training split.")

    @field_validator("threshold", mode="wrap")
    @classmethod
    def _one_threshold(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # one message for each shape, not pydantic's error for every member of the union
        if value is None or isinstance(value, ThresholdSpec):
            return value
        if isinstance(value, dict):
            return ThresholdSpec.model_validate(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0.0 < float(value) < 1.0):
            raise ValueError(f"expected a probability between 0 and 1 (exclusive), or "
                             f"{{metric: f1, cv: 5}} to tune it; got {value!r}")
        return float(value)


# ----------------------------------------------------------------- candidates (ADR 0039)
class CandidateSpec(_Model):
    """One entry of ``models:``: an estimator, its fixed params and its own search space."""

    name: str | None = Field(default=None, pattern=NAME_PATTERN,
                             description="Default: the estimator's name.")
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    space: dict[str, SpaceValue] = Field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """A model the train step may fit, from ``model:`` or one entry of ``models:``.

    Attributes:
        name: unique within the spec (the estimator's name by default).
        estimator: the short name or import path.
        params: fixed parameters.
        space: hyper-parameter -> list of choices or :class:`ParamRange`.
        key: the spec key of the entry (``model`` or ``models.1``), for errors.
        space_key: the spec key of the space (``model.tune.params``, ``models.1.space``).
    """

    name: str
    estimator: str
    params: dict[str, Any]
    space: dict[str, Any]
    key: str
    space_key: str


class EvaluateSpec(_Model):
    # The default list is the task's (classification: accuracy … roc_auc; regression: rmse,
    # mae, r2, mape): the issue-11 helpers decide where a task's default is filled in.
    metrics: list[MetricName] = (
        Field(default_factory=lambda: ["accuracy", "precision", "recall", "f1", "roc_auc"])
    )
    cv: int | None = Field(default=None, ge=2, description="Also cross-validate on train.")


class Bound(_Model):
    min: float | None = None
    max: float | None = None


_GATE_KEY = re.compile(r"^(test|train|cv)_[a-z_0-9]+$")
_ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"


# --- gate against the champion (issue 11, docs/decisions/0042-gate-against-the-champion.md)
class ChampionSpec(_Model):
    """``gate.champion``: the candidate must beat the registered model's current champion
    (the version ``alias`` points at), scored on this run's test rows, by ``min_delta``."""

    metric: str = Field(description="The metric compared, on the test split: test_<metric>.")
    min_delta: float = Field(
        default=0.0, description="How much better than the champion the candidate must be "
        "(in the metric's units, either direction); a tie keeps the champion.")
    alias: str = Field(default="production", pattern=_ALIAS_PATTERN,
                       description="The alias naming the champion.")

    @field_validator("min_delta")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"min_delta must be a finite number >= 0 (how much the candidate "
                             f"must beat the champion by), got {value:g}")
        return value

    def check(self, computed: set[str]) -> list[tuple[tuple[str, ...], str]]:
        """Problems with ``gate.champion`` given the metrics evaluate computes."""
        split, _, metric = self.metric.partition("_")
        if split == "test" and metric in computed:
            return []
        close = difflib.get_close_matches(metric, sorted(computed), n=1)
        hint = f"did you mean 'test_{close[0]}'?" if close else (
            f"evaluate.metrics has {', '.join(sorted(computed))}")
        return [(("champion", "metric"), f"unknown metric {self.metric!r}: the champion is "
                 f"compared on a test_<metric> that evaluate computes; {hint}")]


_GATE_OPTIONS = ("champion", "promote")
# --- end gate against the champion


class GateSpec(_Model):
    """Minimum (or maximum) metric values a model must reach to be registered, and the
    champion it must beat (``champion:``, ``promote:``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    champion: ChampionSpec | None = Field(
        default=None, description="Compare with the registered model's champion.")
    promote: bool = Field(
        default=False, description="Move production to a candidate that beat the champion.")

    # gate keys written as a bare number (``test_f1: 0.9``), so errors name the key itself
    _scalars: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="wrap")
    @classmethod
    def _normalise(cls, data: Any, handler: ModelWrapValidatorHandler[GateSpec]) -> GateSpec:
        if not isinstance(data, dict):
            return handler(data)
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key in _GATE_OPTIONS:
                out[key] = value
                continue
            if not isinstance(key, str) or not _GATE_KEY.match(key):
                close = difflib.get_close_matches(str(key), _GATE_OPTIONS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else (
                    f", or one of {', '.join(_GATE_OPTIONS)}")
                raise ValueError(
                    f"gate key {key!r} is not a metric name like 'test_f1' "
                    f"(<split>_<metric>, split one of test, train, cv){hint}"
                )
            out[key] = value if isinstance(value, dict) else {"min": value}
        gate = handler(out)
        gate._scalars = frozenset(k for k, v in data.items()
                                  if k not in _GATE_OPTIONS and not isinstance(v, dict))
        return gate

    def bounds(self) -> dict[str, Bound]:
        """Each gated metric and its bounds (after :meth:`check` found no problem)."""
        return {k: Bound.model_validate(v) for k, v in (self.model_extra or {}).items()}

    def check(self, computed: set[str], *, cv: bool) -> list[tuple[tuple[str, ...], str]]:
        """Problems with the gate: (key path under ``gate``, message) for each.

        Args:
            computed: the metric names the evaluate step computes (``f1``).
            cv: whether evaluate cross-validates (``cv_`` metrics exist).
        """
        problems: list[tuple[tuple[str, ...], str]] = []
        for key, value in (self.model_extra or {}).items():
            split, _, metric = key.partition("_")
            if split == "cv" and not cv:
                problems.append(((key,), "a cv_ metric needs evaluate.cv to be set"))
            elif metric not in computed:
                close = difflib.get_close_matches(metric, sorted(computed), n=1)
                hint = f"did you mean '{split}_{close[0]}'?" if close else (
                    f"evaluate.metrics has {', '.join(sorted(computed))}")
                problems.append(((key,), f"metric {metric!r} is not computed; {hint}"))
            else:
                problems.extend(_check_bound(key, metric, value,
                                             scalar=key in self._scalars))
        if self.champion is not None:
            problems.extend(self.champion.check(computed))
        return problems


def _check_bound(
    key: str, metric: str, bounds: dict[str, Any], *, scalar: bool
) -> list[tuple[tuple[str, ...], str]]:
    """Problems with one gate entry: ``{min: x}`` (or a bare number) and/or ``{max: y}``."""
    low, high = METRIC_RANGES.get(metric, (-math.inf, math.inf))
    span = f"[{low:g}, {'inf' if math.isinf(high) else f'{high:g}'}]"
    problems: list[tuple[tuple[str, ...], str]] = []
    for name, bound in bounds.items():
        path = (key,) if scalar else (key, name)
        if name not in ("min", "max"):
            close = difflib.get_close_matches(name, ["min", "max"], n=1)
            hint = f"did you mean {close[0]!r}?" if close else "valid keys: max, min"
            problems.append((path, f"unknown key {name!r}; {hint}"))
            continue
        if bound is None:
            continue
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            what = "a minimum like 0.9" if scalar else f"the {name}imum value of {metric}"
            problems.append((path, f"expected a number ({what}), got {bound!r}"))
        elif not math.isfinite(bound):
            problems.append((path, f"expected a finite number, got {bound}"))
        elif not low <= bound <= high:
            effect = ("can never pass" if (name == "min" and bound > high)
                      or (name == "max" and bound < low) else "always passes")
            problems.append((path, f"{bound:g} is outside the range of {metric} {span}: a "
                             f"{name}imum of {bound:g} {effect}"))
    if problems:
        return problems
    if all(bounds.get(name) is None for name in ("min", "max")):
        problems.append(((key,), "a gate needs min, max or both (e.g. "
                         f"{key}: 0.9 or {key}: {{min: 0.9}})"))
    elif bounds.get("min") is not None and bounds.get("max") is not None \
            and bounds["min"] > bounds["max"]:
        problems.append(((key,), f"min {bounds['min']:g} is above max {bounds['max']:g}: no "
                         "value can pass"))
    return problems


class TrackingSpec(_Model):
    uri: str | None = Field(default=None, description="MLflow tracking URI; default embedded.")
    experiment: str | None = Field(default=None, description="Defaults to the pipeline name.")


class RegistrySpec(_Model):
    name: str | None = Field(default=None, description="Registered model name; None skips.")
    allow_unvalidated: bool = Field(
        default=False, description="Register even when the gate rejected the model."
    )


class ExportSpec(_Model):
    uri: str | None = Field(default=None, description="Default: CONVEYOR_HOME/exports/<name>.")
    storage_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("uri")
    @classmethod
    def _empty_is_default(cls, value: str | None) -> str | None:
        return value or None  # ${CONVEYOR_EXPORT_URI:-} leaves the default

    _no_secrets = field_validator("storage_options")(check_storage_options)


class MonitorSpec(_Model):
    """``monitor:``: how ``conveyor monitor`` judges drift and what it does about it
    (docs/monitoring.md)."""

    model: str | None = Field(
        default=None, description="The model to watch; default models:/<registry.name>@production.")
    window: str = Field(default="24h", pattern=r"^[1-9][0-9]{0,4}[mhd]$",
                        description="How far back the scheduled check reads samples.")
    schedule: str | None = Field(default="@hourly",
                                 description="The <name>_monitor DAG's schedule.")
    psi: float = Field(default=0.2, gt=0, description="A feature drifted at PSI >= this.")
    ks_pvalue: float = Field(default=0.001, gt=0, lt=1,
                             description="A numeric feature drifted at a KS p-value below this.")
    max_missing_share: float = Field(default=0.2, ge=0, le=1,
                                     description="Drift when more of a feature is missing.")
    max_out_of_range_share: float = Field(
        default=0.1, ge=0, le=1,
        description="Drift when more values fall outside the training range (or categories).")
    min_rows: int = Field(default=30, ge=1, description="Fewer rows: not computable.")
    retrain: bool = Field(default=True, description="Trigger the training DAG on drift.")
    webhook_url_env: str = Field(
        default="CONVEYOR_WEBHOOK_URL", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$",
        description="The environment variable holding the alert webhook's URL.")
    airflow_url: str | None = Field(
        default=None, pattern=r"^https?://[^@/\s]+(/[^@\s]*)?$",
        description="Airflow's base URL; without it a retrain is only recorded.")


class StoreSpec(_Model):
    root: str | None = Field(default=None, description="Artifact root; default CONVEYOR_HOME.")
    storage_options: dict[str, Any] = Field(default_factory=dict)

    _no_secrets = field_validator("storage_options")(check_storage_options)


class Spec(_Model):
    """A whole pipeline."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    schedule: str | None = None
    tags: list[str] = Field(default_factory=list)
    data: DataSpec
    schema_: SchemaSpec = Field(alias="schema")
    validate_: ValidateSpec = Field(default_factory=ValidateSpec, alias="validate")
    split: SplitSpec = Field(default_factory=SplitSpec)
    preprocess: PreprocessSpec = Field(default_factory=PreprocessSpec)
    derive: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")], DeriveRule] = (
        Field(default_factory=dict, description="Derived columns: name -> expression "
              "(docs/features.md), computed inside the model."))
    model: ModelSpec | None = None
    models: list[CandidateSpec] | None = Field(
        default=None, min_length=1, description="Candidate models; the alternative to model:.")
    tune: TuneSpec | None = Field(default=None, description="The search over models:.")
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    gate: GateSpec = Field(default_factory=GateSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    registry: RegistrySpec = Field(default_factory=RegistrySpec)
    export: ExportSpec = Field(default_factory=ExportSpec)
    store: StoreSpec = Field(default_factory=StoreSpec)
    monitor: MonitorSpec = Field(default_factory=MonitorSpec)
    steps: list[Annotated[str, Field(pattern=NAME_PATTERN)]] | None = Field(
        default=None, description="The steps to run; default: every step whose section is "
        "present (the built-in ones always).")

    # sections of plug-in steps (``conveyor.steps`` entry points), validated by their models
    _plugin_sections: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _plugin_steps(cls, data: Any, handler: ModelWrapValidatorHandler[Spec]) -> Spec:
        if not isinstance(data, dict):
            return handler(data)
        known = {f.alias or name for name, f in cls.model_fields.items()} | set(
            cls.model_fields)
        plugins = find_plugins(STEP_GROUP)
        sections: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        for key, value in data.items():
            if key in known or key not in plugins:
                rest[key] = value  # an unknown key stays, to be refused with a hint
                continue
            try:
                step = load_plugin(STEP_GROUP, key)
            except PluginError as exc:
                raise ValueError(str(exc)) from None
            if getattr(step, "section", None) not in (None, key):
                rest[key] = value  # a step configured elsewhere (ingest: data) has no section
                continue
            model = getattr(step, "config_model", None)
            sections[key] = _validate_under(model, value if value is not None else {}, key) \
                if model is not None else value
        spec = handler(rest)
        spec._plugin_sections = sections
        return spec

    @field_serializer("data")
    def _dump_data(self, data: BaseModel) -> dict[str, Any]:
        return data.model_dump(mode="json", by_alias=True)

    @model_validator(mode="after")
    def _one_model_section(self) -> Spec:
        if (self.model is None) == (self.models is None):
            raise ValueError("a spec has either model: (one estimator) or models: (a list of "
                             "candidates), " + ("not both" if self.model else "and has neither"))
        return self

    def candidates(self) -> list[Candidate]:
        """The models to fit: ``model:`` as one candidate, or each entry of ``models:``."""
        if self.model is not None:
            tune = self.model.tune
            return [Candidate(name=_short_name(self.model.estimator),
                              estimator=self.model.estimator, params=dict(self.model.params),
                              space=dict(tune.params) if tune else {}, key="model",
                              space_key="model.tune.params")]
        return [Candidate(name=entry.name or _short_name(entry.estimator),
                          estimator=entry.estimator, params=dict(entry.params),
                          space=dict(entry.space), key=f"models.{i}",
                          space_key=f"models.{i}.space")
                for i, entry in enumerate(self.models or [])]

    def search(self) -> TuneSpec | None:
        """The search settings: ``model.tune`` or, with ``models:``, ``tune:`` (its defaults
        when absent: the candidates are compared by cross-validation)."""
        if self.model is not None:
            return self.model.tune
        return self.tune or TuneSpec()

    def present(self) -> set[str]:
        """The sections written in the spec (YAML keys), plug-in sections included."""
        fields = type(self).model_fields
        return {fields[name].alias or name for name in self.model_fields_set} | set(
            self._plugin_sections)

    def section(self, key: str) -> Any:
        """A plug-in step's section (its model instance), or ``None`` when absent."""
        return self._plugin_sections.get(key)

    def cross_check(self) -> list[tuple[tuple[str, ...], str]]:
        """Checks that span sections: (key path, message) for each problem found."""
        problems = self.gate.check(self._computed_metrics(), cv=self.evaluate.cv is not None)
        problems.extend(self._champion_problems())
        found = [(("gate", *path), message) for path, message in problems]
        return self._task_check() + found + self._check_search()

    # --- the task (issue 11, regression; ADR 0038) -------------------------------------
    def _computed_metrics(self) -> set[str]:
        """The metrics evaluate computes: ``evaluate.metrics`` as written, else the task's
        defaults (both tasks' while the task is decided from the data)."""
        if "metrics" in self.evaluate.model_fields_set:
            return set(self.evaluate.metrics)
        defaults = {"classification": {"accuracy", "precision", "recall", "f1", "roc_auc"},
                    "regression": {"rmse", "mae", "r2", "mape"}}
        return defaults.get(self.schema_.task, defaults["classification"] | defaults[
            "regression"])

    def _task_check(self) -> list[tuple[tuple[str, ...], str]]:
        task = self.schema_.task
        if task == "auto":
            return []
        other = REGRESSION_METRICS if task == "classification" else CLASSIFICATION_METRICS
        problems: list[tuple[tuple[str, ...], str]] = []
        if "metrics" in self.evaluate.model_fields_set:
            problems += [(("evaluate", "metrics", str(i)), f"{m} is not a {task} metric "
                          "(schema.task)") for i, m in enumerate(self.evaluate.metrics)
                         if m in other]
        if task == "regression" and self.schema_.positive_label is not None:
            problems.append((("schema", "positive_label"), "a regression target has no "
                             "positive label; remove it or set schema.task: classification"))
        return problems

    def _champion_problems(self) -> list[tuple[tuple[str, ...], str]]:
        """``gate.champion`` and ``gate.promote`` need a registered model (issue 11)."""
        gate = self.gate
        if gate.champion is not None and not self.registry.name:
            return [(("champion",), "a champion check needs registry.name: the champion is "
                     f"the version of the registered model that alias "
                     f"{gate.champion.alias!r} points at")]
        if gate.promote and gate.champion is None:
            return [(("promote",), "gate.promote needs gate.champion: production moves only "
                     "to a candidate that beat it (e.g. champion: {metric: test_f1})")]
        if gate.promote and gate.champion is not None and gate.champion.alias != "production":
            return [(("promote",), "gate.promote moves 'production', so the champion must be "
                     f"production: remove gate.champion.alias ({gate.champion.alias!r})")]
        return []

    def _check_search(self) -> list[tuple[tuple[str, ...], str]]:
        """``model:``/``models:`` with ``tune:``: where each setting may stand (ADR 0039)."""
        found: list[tuple[tuple[str, ...], str]] = []
        if self.model is not None and self.tune is not None:
            found.append((("tune",), "tune: goes with models:; with model:, write the search "
                          "under model.tune"))
        if self.model is not None and self.model.tune is not None:
            found += [(("model", "tune", *p), m) for p, m in self.model.tune.check()]
        if self.models is not None:
            tune = self.search()
            if self.tune is not None:
                found += [(("tune", *p), m) for p, m in self.tune.check()
                          if p[0] != "params"]
                if self.tune.params:
                    found.append((("tune", "params"), "with models:, each candidate has its "
                                  "own space: write it under models[i].space"))
            seen: dict[str, int] = {}
            for i, candidate in enumerate(self.candidates()):
                if candidate.name in seen:
                    found.append((("models", str(i), "name"), f"candidate name "
                                  f"{candidate.name!r} is also models.{seen[candidate.name]}'s; "
                                  "give each candidate its own name"))
                seen.setdefault(candidate.name, i)
                if tune is not None and tune.method == "grid":
                    found += [(("models", str(i), "space", name),
                               RANGE_NEEDS.format(key="tune.method"))
                              for name, value in candidate.space.items()
                              if isinstance(value, ParamRange)]
        return found

    def dump(self) -> dict[str, Any]:
        """The spec as plain data, with YAML key names (``schema``, ``validate``)."""
        # absent sections stay absent, so a spec's hash does not change with new optional ones
        absent = {key for key in ("steps", "model", "models", "tune")
                  if getattr(self, key) is None} | ({"derive"} if not self.derive else set())
        data = self.model_dump(mode="json", by_alias=True, exclude=absent or None)
        for key, value in self._plugin_sections.items():
            data[key] = value.model_dump(mode="json", by_alias=True) if isinstance(
                value, BaseModel) else value
        return data


def _short_name(estimator: str) -> str:
    """A candidate's default name: its short name, or an import path's class name."""
    return estimator.rpartition(".")[2] if "." in estimator else estimator
