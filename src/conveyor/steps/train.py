"""train: preprocessing and estimator as one sklearn Pipeline, optionally tuned, fitted on the
training split only, saved once in MLflow's format, logged to the MLflow run, kept in the Store."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from conveyor.errors import DataError, SpecError
from conveyor.features import build_model_pipeline
from conveyor.modeling.training import fit_model, positive_label, split_xy
from conveyor.monitoring.profile import PROFILE_FILE, build_profile, profile_bytes
from conveyor.steps.base import BaseStep, StepContext, StepResult

__all__ = ["TrainStep"]

log = logging.getLogger(__name__)


def check_labels(estimator: Any, y: Any) -> None:
    """xgboost's classifiers learn only the labels ``0 … n-1``: refuse others before fitting.

    Raises:
        SpecError: naming ``model.estimator``, the target's labels and the way out.
    """
    if not type(estimator).__module__.startswith("xgboost.") or not hasattr(
            estimator, "predict_proba"):
        return
    labels = sorted(y.unique(), key=str)
    if [str(v) for v in labels] != [str(i) for i in range(len(labels))]:
        shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in labels[:5])
        raise SpecError(f"{type(estimator).__name__} learns only the classes 0 … "
                        f"{len(labels) - 1}, but the target holds {shown}; use lightgbm or "
                        "another classifier, or recode the target", key="model.estimator")


class TrainStep(BaseStep):
    name = "train"
    inputs = ("split.train", "validate.report")
    outputs = ("model",)
    config_keys = ("schema", "preprocess", "model", "models", "tune", "split", "derive")
    section = "model"
    default = True
    #: 2: the model folder holds the reference profile (a model cached before has none)
    version = 2

    @cached_property
    def code_version(self) -> str:
        """The base hash and the profile's module: the profile is part of the model folder,
        so a change in how it is built invalidates cached models (ADR 0035)."""
        from conveyor.monitoring import profile as profile_module

        source = Path(profile_module.__file__).read_bytes()
        return hashlib.sha256(super().code_version.encode() + source).hexdigest()[:16]

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        threshold = info.get("threshold")
        at = f", threshold {threshold:.2f}" if isinstance(threshold, (int, float)) else ""
        if info.get("search"):
            stopped = "; stopped by tune.timeout" if info.get("stopped_by") == "timeout" else ""
            tried = (f"best of {info.get('trials')} trials" if info.get("trials") != 1
                     else "1 trial")
            return f"{info.get('estimator', '')} ({info.get('candidate')}, {tried}{stopped}){at}"
        return f"{info.get('estimator', '')}{at}"

    def tags(self, info: Mapping[str, Any]) -> dict[str, str]:
        """The chosen candidate, on the run also when train was cached."""
        return {"conveyor.candidate": str(info["candidate"])} if info.get("candidate") else {}

    def _run(self, ctx: StepContext) -> StepResult:
        spec = ctx.spec
        report = ctx.read_json("validate.report")
        features = report["features"]
        task = report.get("task", "classification")
        train = ctx.read_table("split.train")
        X, y = split_xy(train, features, spec.schema_.target)
        from conveyor.modeling.tasks import check_task

        check_task(ctx.loaded, task, report.get("task_reason", "schema.task"))
        positive = positive_label(spec.schema_.positive_label, y)
        outputs: dict[str, Any] = {}
        if spec.search() is None:  # one model, no search: fitted as before ADR 0039
            model, facts = self._fit(ctx, features, report, X, y, positive, task)
        else:
            model, facts, outputs = self._search(ctx, features, report, X, y, positive, task)
        if spec.model is not None and spec.model.threshold is not None:
            model, decided = self._threshold(ctx, model, X, y)
            facts["threshold"] = decided["threshold"]
            outputs["threshold"] = ctx.write_json("threshold", decided)
        example = X.head(5)
        # The reference profile travels inside the model folder: hashed with it, copied with
        # it by export and registration, found by the server beside the model (ADR 0035).
        classes = getattr(model, "classes_", None) if task == "classification" else None
        profile = build_profile(X, list(X.columns), model.predict(X), classes=classes,
                                target=spec.schema_.target)
        extra = {PROFILE_FILE: profile_bytes(profile)}
        # saved once: the folder logged to MLflow is the one the Store keeps (ADR 0043)
        folder = ctx.scratch / "model"
        logged = ctx.tracker.log_sklearn_model(model, example, extra_files=extra, folder=folder)
        ref = ctx.store.put_dir(ctx.output_uri("model"), folder)
        outputs["model"] = ref
        ctx.store.remember(ref, model)
        from conveyor.modeling.threshold import inner_model

        info = {**facts, **logged, "estimator": type(inner_model(model)[-1]).__name__,
                "task": task}
        if classes is not None:
            info["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
        metrics = facts.pop("metrics", None) or {
            k: v for k, v in facts.items() if k.startswith("cv_")}
        info = {k: v for k, v in info.items() if k != "metrics"}
        return StepResult(outputs=outputs, info=info, metrics=metrics)

    @staticmethod
    def _fit(ctx: StepContext, features: Any, report: Any, X: Any, y: Any,
             positive: Any, task: str) -> tuple[Any, dict[str, Any]]:
        from conveyor.modeling import build_estimator

        spec = ctx.spec
        try:
            estimator = build_estimator(spec.model.estimator, dict(spec.model.params),
                                        task=task)
            check_labels(estimator, y)
            pipeline = build_model_pipeline(features, spec.preprocess, estimator,
                                            derive=spec.derive, derived=report.get("derived"))
            return fit_model(pipeline, X, y, seed=spec.split.seed, positive=positive,
                             what=spec.model.estimator, task=task)
        except SpecError as exc:
            raise ctx.loaded.error(exc.key or "model", exc.reason) from None

    @staticmethod
    def _search(ctx: StepContext, features: Any, report: Any, X: Any, y: Any,
                positive: Any, task: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """Tune every candidate on the same folds, keep the best (ADR 0039); write the search
        record and plot, and log each trial as a child run (ADR 0040)."""
        from conveyor.modeling import build_estimator
        from conveyor.modeling.search import SearchCandidate, history_plot, run_search
        from conveyor.modeling.tasks import default_metric
        from conveyor.tracking import log_search

        spec = ctx.spec
        tune = spec.search()
        if "metric" not in tune.model_fields_set:  # the task's metric (rmse for a regression)
            tune = tune.model_copy(update={"metric": default_metric(task)})
        built = []
        for candidate in spec.candidates():
            try:
                estimator = build_estimator(candidate.estimator, candidate.params,
                                            key=candidate.key, task=task)
                check_labels(estimator, y)
            except SpecError as exc:
                raise ctx.loaded.error(exc.key or candidate.key, exc.reason) from None
            built.append(SearchCandidate(
                name=candidate.name, estimator=candidate.estimator, space=candidate.space,
                pipeline=build_model_pipeline(features, spec.preprocess, estimator,
                                              derive=spec.derive,
                                              derived=report.get("derived"))))
        result = run_search(built, X, y, tune=tune, seed=spec.split.seed, positive=positive)
        record = result.record
        outputs = {"search": ctx.write_json("search", record),
                   "candidates": ctx.write_json("candidates", record["candidates"])}
        try:
            outputs["search_history"] = ctx.write_bytes("search_history.png",
                                                         history_plot(record))
        except Exception as exc:  # noqa: BLE001 - a plot is worth a warning, not the run
            log.warning("the search history plot failed: %s", exc)
        log_search(ctx.tracker, record)
        metric, best = tune.metric, record["best"]
        metrics = {f"cv_best_{metric}": best["cv_mean"], f"cv_best_{metric}_std": best["cv_std"],
                   "search_trials": float(len(record["trials"])),
                   "search_pruned": float(sum(t["state"] == "pruned" for t in record["trials"])),
                   "search_seconds": float(record["seconds"])}
        for row in record["candidates"]:  # the comparison table, as metrics of the run
            if row["cv_mean"] is not None:
                metrics[f"candidate.{row['name']}.cv_{metric}"] = row["cv_mean"]
                metrics[f"candidate.{row['name']}.cv_{metric}_std"] = row["cv_std"]
        facts = {"search": True, "candidate": best["candidate"], "best_params": best["params"],
                 "trials": len(record["trials"]), "stopped_by": record["stopped_by"],
                 "metrics": metrics}
        return result.model, facts, outputs

    @staticmethod
    def _threshold(ctx: StepContext, model: Any, X: Any, y: Any) -> tuple[Any, dict[str, Any]]:
        """Wrap the fitted model in its decision threshold: fixed, or tuned on out-of-fold
        probabilities of the training rows (never the test split)."""
        from conveyor.modeling.evaluation import scoring_positive
        from conveyor.modeling.threshold import threshold_model, tune_threshold

        spec = ctx.spec
        setting = spec.model.threshold
        positive = scoring_positive(spec.schema_.positive_label, y)
        if positive is None:
            raise ctx.loaded.error("model.threshold", "a decision threshold needs a binary "
                                   "target and schema.positive_label (the class it decides)")
        try:
            if isinstance(setting, float):
                decided: dict[str, Any] = {"threshold": setting, "tuned": False}
            else:
                decided = {**tune_threshold(model, X, y, positive=positive,
                                            metric=setting.metric, cv=setting.cv,
                                            seed=spec.split.seed), "tuned": True}
            wrapped = threshold_model(model, decided["threshold"], positive)
        except DataError as exc:
            raise ctx.loaded.error("model.threshold", str(exc).removeprefix(
                "model.threshold: ")) from None
        log.info("decision threshold %.2f for %r", decided["threshold"], positive)
        return wrapped, {**decided, "positive": positive}
