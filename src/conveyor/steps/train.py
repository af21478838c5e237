"""train: preprocessing and estimator as one sklearn Pipeline, optionally tuned, fitted on the
training split only, saved in MLflow's format to the Store and logged to the MLflow run."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from conveyor.errors import SpecError
from conveyor.features import build_model_pipeline
from conveyor.modeling.training import fit_model, positive_label, split_xy
from conveyor.steps.base import BaseStep, StepContext, StepResult

__all__ = ["TrainStep"]

log = logging.getLogger(__name__)


class TrainStep(BaseStep):
    name = "train"
    inputs = ("split.train", "validate.report")
    outputs = ("model",)
    config_keys = ("schema", "preprocess", "model", "split")
    section = "model"
    default = True

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return str(info.get("estimator", ""))

    def _run(self, ctx: StepContext) -> StepResult:
        spec = ctx.spec
        features = ctx.read_json("validate.report")["features"]
        train = ctx.read_table("split.train")
        X, y = split_xy(train, features, spec.schema_.target)
        try:
            from conveyor.modeling import build_estimator

            estimator = build_estimator(spec.model.estimator, dict(spec.model.params))
            pipeline = build_model_pipeline(features, spec.preprocess, estimator)
            model, facts = fit_model(
                pipeline, X, y, tune=spec.model.tune, seed=spec.split.seed,
                positive=positive_label(spec.schema_.positive_label, y),
                what=spec.model.estimator)
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
