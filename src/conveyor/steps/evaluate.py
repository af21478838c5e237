"""evaluate: metrics on the train and test splits (and cross-validation), the confusion
matrix, plots and an HTML report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.modeling.evaluation import score_model, scoring_positive
from conveyor.modeling.gate import judge
from conveyor.modeling.training import split_xy
from conveyor.steps.base import BaseStep, StepContext, StepResult
from conveyor.store import ArtifactRef

__all__ = ["EvaluateStep"]


def _slug(title: str) -> str:
    return title.split(" (")[0].replace(" ", "_")


def _write_report(ctx: StepContext, metrics: dict[str, float], facts: dict[str, Any],
                  images: dict[str, bytes]) -> ArtifactRef:
    from conveyor.modeling.report import html_report

    # The verdict shown is the gate's judgement of these metrics under this run's spec: it is
    # rendered for every run (fresh or on a cache hit, see ``reuse``), so ``gate`` is not part
    # of evaluate's cache key and a new bound does not re-evaluate the model (ADR 0027).
    spec = ctx.spec
    report = html_report(
        title=f"{spec.name}: evaluation of run {ctx.run_id}", metrics=metrics, facts=facts,
        images=images, gate=judge(metrics, spec.gate) if spec.gate.bounds() else None,
    )
    return ctx.write_bytes("report.html", report.encode())


class EvaluateStep(BaseStep):
    name = "evaluate"
    inputs = ("train.model", "split.train", "split.test", "validate.report")
    # ``confusion`` (confusion.json) too, for a classifier
    outputs = ("metrics", "report")
    config_keys = ("schema", "evaluate", "model", "preprocess", "split")
    default = True

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return " ".join(f"{k}={v:.3f}" for k, v in sorted(metrics.items())
                        if k in ("test_accuracy", "test_f1", "test_rmse", "test_r2"))

    def _run(self, ctx: StepContext) -> StepResult:
        from conveyor.modeling import confusion, positive_scores
        from conveyor.modeling.report import confusion_plot, roc_plot

        spec = ctx.spec
        validated = ctx.read_json("validate.report")
        if validated.get("task") == "regression":
            return self._run_regression(ctx, validated)
        if "task" in validated:
            from conveyor.modeling.tasks import check_task

            check_task(ctx.loaded, validated["task"], validated.get("task_reason", ""))
        model = ctx.load_model()
        features = validated["features"]
        target = spec.schema_.target
        X_train, y_train = split_xy(ctx.read_table("split.train"), features, target)
        X_test, y_test = split_xy(ctx.read_table("split.test"), features, target)
        pos = scoring_positive(spec.schema_.positive_label, y_train)
        binary = pos is not None
        metrics = score_model(model, (X_train, y_train), (X_test, y_test),
                              metrics=spec.evaluate.metrics, positive=pos)
        if spec.evaluate.cv:
            metrics.update(self._cross_validate(model, X_train, y_train, spec, pos))
        matrix = confusion(model, X_test, y_test)
        images = {"confusion matrix (test)": confusion_plot(matrix, title="test split")}
        scores = positive_scores(model, X_test, pos) if binary else None
        if scores is not None:
            images["ROC curve (test)"] = roc_plot(y_test.to_numpy(), scores, positive=pos,
                                                  title="test split")
        outputs = {
            "metrics": ctx.write_json("metrics", metrics),
            "confusion": ctx.write_json("confusion", matrix),
        }
        for title, png in images.items():
            outputs[_slug(title)] = ctx.write_bytes(f"{_slug(title)}.png", png)
        facts = {"model": spec.model.estimator, "train rows": len(X_train),
                 "test rows": len(X_test), "features": len(features),
                 "positive label": pos if pos is not None else "(multiclass, macro average)"}
        outputs["report"] = _write_report(ctx, metrics, facts, images)
        return StepResult(outputs=outputs, metrics=metrics,
                          info={"facts": facts, "images": list(images)})

    def _run_regression(self, ctx: StepContext, validated: dict[str, Any]) -> StepResult:
        """A regressor's metrics (rmse, mae, r2, mape), CV on ``KFold`` and its plots."""
        from conveyor.modeling.regression_plots import regression_images
        from conveyor.modeling.tasks import check_task, spec_metrics

        spec = ctx.spec
        check_task(ctx.loaded, "regression", validated.get("task_reason", "schema.task"))
        wanted = spec_metrics(spec, "regression")
        model = ctx.load_model()
        features = validated["features"]
        target = spec.schema_.target
        X_train, y_train = split_xy(ctx.read_table("split.train"), features, target)
        X_test, y_test = split_xy(ctx.read_table("split.test"), features, target)
        metrics = score_model(model, (X_train, y_train), (X_test, y_test), metrics=wanted,
                              positive=None, task="regression")
        if spec.evaluate.cv:
            metrics.update(self._cross_validate(model, X_train, y_train, spec, None,
                                                task="regression", wanted=wanted))
        images = regression_images(y_test.to_numpy(), model.predict(X_test))
        outputs = {"metrics": ctx.write_json("metrics", metrics)}
        for title, png in images.items():
            outputs[_slug(title)] = ctx.write_bytes(f"{_slug(title)}.png", png)
        facts = {"model": spec.model.estimator, "task": "regression",
                 "train rows": len(X_train), "test rows": len(X_test),
                 "features": len(features), "target": target}
        outputs["report"] = _write_report(ctx, metrics, facts, images)
        return StepResult(outputs=outputs, metrics=metrics,
                          info={"facts": facts, "images": list(images)})

    def reuse(self, ctx: StepContext, cached: StepResult,
              cached_from: str | None) -> dict[str, ArtifactRef]:
        """This run's own report, rendered from the cached metrics and plots (no model load).

        Without it a fully cached run's summary and manifest would name the computing run's
        ``evaluate/report.html``.
        """
        metrics_ref = cached.outputs["metrics"]
        metrics = ctx.store.get_json(metrics_ref.uri, sha256=metrics_ref.sha256)
        images = {}
        for title in cached.info.get("images", []):
            ref = cached.outputs.get(_slug(title))
            if ref is not None:
                images[title] = ctx.store.get_bytes(ref.uri, sha256=ref.sha256)
        facts = {**cached.info.get("facts", {}),
                 "evaluated in": f"run {cached_from} (cached: same model, data and config)"}
        return {"report": _write_report(ctx, metrics, facts, images)}

    @staticmethod
    def _cross_validate(model: Any, X: Any, y: Any, spec: Any, pos: Any, *,
                        task: str = "classification",
                        wanted: list[str] | None = None) -> dict[str, float]:
        from sklearn.base import clone
        from sklearn.model_selection import cross_validate

        from conveyor.modeling import scorer
        from conveyor.modeling.metrics import scorer_sign
        from conveyor.modeling.training import folds

        cv = folds(task, spec.evaluate.cv, spec.split.seed)
        wanted = [m for m in (wanted or spec.evaluate.metrics) if m != "log_loss"]
        result = cross_validate(clone(model), X, y, cv=cv,
                                scoring={m: scorer(m, pos) for m in wanted})
        return {f"cv_{m}": scorer_sign(m) * float(result[f"test_{m}"].mean()) for m in wanted}
