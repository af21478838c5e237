"""train: preprocessing and estimator as one sklearn Pipeline, optionally tuned, fitted on the
training split only, saved in MLflow's format to the Store and logged to the MLflow run."""

from __future__ import annotations

import logging
from typing import Any

from conveyor.errors import DataError, SpecError
from conveyor.features import build_model_pipeline
from conveyor.steps.base import BaseStep, StepContext, StepResult

__all__ = ["TrainStep", "fit_model", "split_xy"]

log = logging.getLogger(__name__)


def split_xy(frame: Any, features: dict[str, str], target: str) -> tuple[Any, Any]:
    return frame[list(features)], frame[target]


def positive_label(spec: Any, y: Any) -> Any:
    """The positive label in the target's own type (``1`` for an int target, ``"M"`` for text)."""
    label = spec.schema_.positive_label
    if label is None:
        return None
    for value in y.unique():
        if str(value) == str(label):
            return value.item() if hasattr(value, "item") else value
    return label


def fit_model(spec: Any, features: dict[str, str], X: Any, y: Any) -> tuple[Any, dict[str, Any]]:
    """Build, optionally tune, and fit the model pipeline; return it and facts about the fit."""
    from conveyor.modeling import build_estimator, scorer

    estimator = build_estimator(spec.model.estimator, dict(spec.model.params))
    pipeline = build_model_pipeline(features, spec.preprocess, estimator)
    facts: dict[str, Any] = {}
    tune = spec.model.tune
    if tune is not None:
        from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, StratifiedKFold

        grid = {f"model__{k}": v for k, v in tune.params.items()}
        cv = StratifiedKFold(n_splits=tune.cv, shuffle=True, random_state=spec.split.seed)
        score = scorer(tune.metric, positive_label(spec, y))
        if tune.method == "grid":
            search = GridSearchCV(pipeline, grid, cv=cv, scoring=score, n_jobs=1, refit=True)
        else:
            search = RandomizedSearchCV(pipeline, grid, n_iter=tune.n_iter, cv=cv, scoring=score,
                                        random_state=spec.split.seed, n_jobs=1, refit=True)
        try:
            search.fit(X, y)
        except ValueError as exc:
            raise DataError(f"tuning failed: {exc}") from None
        pipeline = search.best_estimator_
        facts["best_params"] = {k.removeprefix("model__"): v
                                for k, v in search.best_params_.items()}
        facts[f"cv_best_{tune.metric}"] = float(search.best_score_)
    else:
        try:
            pipeline.fit(X, y)
        except ValueError as exc:
            raise DataError(f"fitting {spec.model.estimator} failed: {exc}") from None
    return pipeline, facts


class TrainStep(BaseStep):
    name = "train"
    inputs = ("split.train", "validate.report")
    outputs = ("model",)
    config_keys = ("schema", "preprocess", "model", "split")

    def _run(self, ctx: StepContext) -> StepResult:
        spec = ctx.spec
        features = ctx.read_json("validate.report")["features"]
        train = ctx.read_table("split.train")
        X, y = split_xy(train, features, spec.schema_.target)
        try:
            model, facts = fit_model(spec, features, X, y)
        except SpecError as exc:
            raise ctx.loaded.error(exc.key or "model", exc.reason) from None
        example = X.head(5)
        folder = ctx.scratch / "model"
        ctx.tracker.save_sklearn_model(model, example, folder)
        ref = ctx.store.put_dir(ctx.output_uri("model"), folder)
        ctx.store.remember(ref, model)
        logged = ctx.tracker.log_sklearn_model(model, example)
        info = {**facts, **logged, "estimator": type(model[-1]).__name__,
                "classes": [c.item() if hasattr(c, "item") else c for c in model.classes_]}
        metrics = {k: v for k, v in facts.items() if k.startswith("cv_")}
        return StepResult(outputs={"model": ref}, info=info, metrics=metrics)
