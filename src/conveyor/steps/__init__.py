"""Steps: one module per step, and the step graph of a pipeline."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from conveyor.steps.base import BaseStep, StepContext, StepResult, StepStatus
from conveyor.steps.registry import (
    default_step_names,
    pipeline_steps,
    registered_steps,
    step_class,
)

if TYPE_CHECKING:
    from conveyor.spec import LoadedSpec

__all__ = [
    "STEP_NAMES",
    "BaseStep",
    "StepContext",
    "StepResult",
    "StepStatus",
    "check_data",
    "check_spec",
    "default_step_names",
    "pipeline_steps",
    "registered_steps",
    "step_class",
]

log = logging.getLogger(__name__)


def __getattr__(name: str) -> object:
    # ``STEP_NAMES``: the default pipeline, read from the entry points when first asked for
    # (a module constant would import every registered step with ``conveyor.steps``).
    if name == "STEP_NAMES":
        return default_step_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_spec(loaded: LoadedSpec, *, data: bool = True) -> None:
    """Checks that need more than the spec's shape: the estimator and its parameters, and
    (with ``data``) that the data file is there.

    The estimator checks depend on the spec alone, so a caller may remember that a spec
    passed them (``open_run`` does, by spec hash). The data check depends on the world: a
    file can disappear or grow, so ``open_run`` passes ``data=False`` and leaves it to the
    ingest step, which reads the source on every run.

    Raises:
        SpecError: naming the file, line and key.
        StoreError: the store holding the data cannot be reached (worth a retry).
    """
    from conveyor.modeling.tasks import declared_task, task_problems

    spec = loaded.spec
    pipeline_steps(loaded)  # an unknown step in ``steps:``, a step without its upstream
    # the task, where the spec fixes it (else the validate step decides it from the target)
    task = declared_task(spec)
    if task is not None:
        for key, message in task_problems(spec, task, why="schema.task" if
                                          spec.schema_.task != "auto" else "evaluate.metrics"):
            raise loaded.error(key, message)
    for candidate in spec.candidates():  # ``model:`` is one candidate (ADR 0039)
        _check_candidate(loaded, candidate, task)
    if spec.model is not None and spec.model.threshold is not None \
            and spec.schema_.positive_label is None:
        raise loaded.error("model.threshold", "a decision threshold needs "
                           "schema.positive_label (the class whose probability it decides)")
    if data:
        check_data(loaded)


def _check_candidate(loaded: LoadedSpec, candidate: Any, task: str | None) -> None:
    """The estimator, its params and its search space: names, then values, before any work."""
    from conveyor.errors import SpecError
    from conveyor.modeling import build_estimator, check_params, resolve_estimator
    from conveyor.spec.models import ParamRange

    try:
        estimator = resolve_estimator(candidate.estimator, task=task)
    except SpecError as exc:
        raise loaded.error(f"{candidate.key}.estimator", exc.reason) from None
    for param, message in check_params(estimator, candidate.params):
        raise loaded.error(f"{candidate.key}.params.{param}", message)
    try:  # values too (C=abc), before any run is created
        built = build_estimator(candidate.estimator, candidate.params, key=candidate.key,
                                task=task)
    except SpecError as exc:
        raise loaded.error(exc.key or f"{candidate.key}.params", exc.reason) from None
    # log loss scores probabilities: a decision function is not one (LinearSVC's, clipped
    # into [0, 1], gave a log loss that meant nothing; a search by it failed every trial)
    tune, evaluate = loaded.spec.search(), loaded.spec.evaluate
    one_vs_rest = loaded.spec.schema_.positive_label is None  # roc_auc_ovr: predict_proba
    # as written (the task's default list keeps leaving out what the model cannot score)
    written = evaluate.metrics if "metrics" in evaluate.model_fields_set else []
    ranks = ("use another metric (roc_auc ranks by the decision function) or an estimator "
             "with probabilities")
    wanted = [(what, hint) for what, hint, asked in (
        ("tune.metric log_loss", ranks, tune is not None and tune.metric == "log_loss"),
        (f"tune.metric {tune.metric if tune else ''} without schema.positive_label "
         "(one-vs-rest)", "set schema.positive_label (a binary target), use another metric, "
         "or an estimator with probabilities", tune is not None and one_vs_rest
         and tune.metric in ("roc_auc", "pr_auc")),
        ("evaluate.metrics has log_loss, which", ranks, "log_loss" in written),
        *((f"evaluate.metrics has {m}, which without schema.positive_label (one-vs-rest)",
           "set schema.positive_label (a binary target), leave it out, or use an estimator "
           "with probabilities", one_vs_rest and m in written) for m in ("roc_auc", "pr_auc")),
    ) if asked]
    if wanted and not hasattr(built, "predict_proba"):
        what, hint = wanted[0]
        raise loaded.error(f"{candidate.key}.estimator", (
            f"{what} scores predicted probabilities, and {type(built).__name__} has no "
            f"predict_proba; {hint}"))
    for param, message in check_params(estimator, candidate.space):
        raise loaded.error(f"{candidate.space_key}.{param}", message)
    for param, space in candidate.space.items():
        values = [space.low, space.high] if isinstance(space, ParamRange) else list(space)
        for value in values:  # each choice (or bound) alone: a combination may still fail
            try:
                build_estimator(candidate.estimator, {**candidate.params, param: value},
                                key=candidate.key, task=task)
            except SpecError as exc:
                raise loaded.error(f"{candidate.space_key}.{param}",
                                   f"{value!r} is refused: {exc.reason}") from None


def check_data(loaded: LoadedSpec) -> None:
    """Check that the file ``data.uri`` names exists, is a file and is within ``max_bytes``.

    One metadata request, never a download. A remote store that cannot be reached within a
    few seconds is reported as a warning, not an error: a spec is often checked where the
    data's store is not reachable (CI without credentials), and a run checks again anyway.

    Raises:
        SpecError: the file is missing, a folder, empty or too large (naming ``data.uri``
            and its line in the spec).
    """
    from conveyor.errors import StoreError
    from conveyor.sources.base import SourceUnreachableError
    from conveyor.sources.files import DataFileError, stat_file_source
    from conveyor.spec.models import FileSource

    source = loaded.spec.data
    if not isinstance(source, FileSource):
        return  # bundled data sets are always there
    try:
        stat_file_source(source, loaded.base_dir, quick=True)
    except DataFileError as exc:
        raise loaded.error(exc.key, exc.reason) from None
    except (StoreError, SourceUnreachableError) as exc:  # no answer: the run tries again
        log.warning("%s: data.uri was not checked: %s", loaded.path, exc)
