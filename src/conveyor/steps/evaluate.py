"""evaluate: metrics on the train and test splits (and cross-validation mean ± std on train),
the confusion matrix and the plots (PNG, with a ``plots`` index the report reads)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.modeling.evaluation import score_model, scoring_positive
from conveyor.modeling.training import split_xy
from conveyor.steps.base import BaseStep, StepContext, StepResult

__all__ = ["EvaluateStep"]


def _slug(title: str) -> str:
    return title.split(" (")[0].replace(" ", "_")


def _write_plots(ctx: StepContext, images: dict[str, bytes]) -> dict[str, Any]:
    """Each PNG as an output, and ``plots``: their titles and refs in order, for the report."""
    outputs: dict[str, Any] = {}
    index = []  # a list: the report shows the plots in this order
    for title, png in images.items():
        outputs[_slug(title)] = ref = ctx.write_bytes(f"{_slug(title)}.png", png)
        index.append({"title": title, **ref.to_dict()})
    outputs["plots"] = ctx.write_json("plots", index)
    return outputs


class EvaluateStep(BaseStep):
    """Metrics on train and test, cross-validation mean ± std on train, the confusion matrix
    and the plots. The HTML report is rendered by the gate step, once the verdict is known
    (docs/decisions/0041-evaluation-report-and-threshold.md)."""

    name = "evaluate"
    inputs = ("train.model", "split.train", "split.test", "validate.report")
    optional_inputs = ("train.threshold",)
    # ``confusion`` (confusion.json) too, for a classifier
    outputs = ("metrics", "plots")
    config_keys = ("schema", "evaluate", "model", "models", "tune", "preprocess", "split")
    default = True
    #: 2: cv_<metric>_std, PR/calibration/importance plots, the plots index; no report
    version = 2

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return " ".join(f"{k}={v:.3f}" for k, v in sorted(metrics.items())
                        if k in ("test_accuracy", "test_f1", "test_rmse", "test_r2"))

    def _run(self, ctx: StepContext) -> StepResult:
        from conveyor.modeling import classification_metrics, confusion, positive_scores

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
        pos = scoring_positive(spec.schema_.positive_label, y_train)
        # score_model's train_ then test_ metrics, but the train rows are done with before the
        # test rows are read: one table beside the model's copies of the larger one (ADR 0056)
        metrics = classification_metrics(model, X_train, y_train, split="train",
                                         metrics=list(spec.evaluate.metrics), positive=pos)
        cv = (self._cross_validate(model, X_train, y_train, spec, pos) if spec.evaluate.cv
              else {})
        train_rows = len(X_train)
        del X_train, y_train
        X_test, y_test = split_xy(ctx.read_table("split.test"), features, target)
        metrics.update(classification_metrics(model, X_test, y_test, split="test",
                                              metrics=list(spec.evaluate.metrics),
                                              positive=pos))
        metrics.update(cv)
        matrix = confusion(model, X_test, y_test)
        scores = positive_scores(model, X_test, pos) if pos is not None else None
        decided = (ctx.read_json("train.threshold") if "train.threshold" in ctx.inputs
                   else None)
        images = self._plots(model, X_test, y_test, matrix, scores, pos, metrics, decided)
        outputs = {
            "metrics": ctx.write_json("metrics", metrics),
            "confusion": ctx.write_json("confusion", matrix),
        }
        outputs.update(_write_plots(ctx, images))
        chosen = ctx.upstream.get("train", {}).get("candidate")  # the best of models:
        facts = {"model": spec.model.estimator if spec.model else chosen,
                 "train rows": train_rows, "test rows": len(X_test), "features": len(features),
                 "positive label": pos if pos is not None else "(multiclass, macro average)"}
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
        outputs = {"metrics": ctx.write_json("metrics", metrics), **_write_plots(ctx, images)}
        chosen = ctx.upstream.get("train", {}).get("candidate")  # the best of models:
        facts = {"model": spec.model.estimator if spec.model else chosen, "task": "regression",
                 "train rows": len(X_train), "test rows": len(X_test),
                 "features": len(features), "target": target}
        return StepResult(outputs=outputs, metrics=metrics,
                          info={"facts": facts, "images": list(images)})

    @staticmethod
    def _plots(model: Any, X: Any, y: Any, matrix: dict[str, Any], scores: Any, pos: Any,
               metrics: dict[str, float], decided: dict[str, Any] | None) -> dict[str, bytes]:
        """The evaluation's PNGs by title: the curves of the positive class's scores where
        there are some (binary), and the permutation importance on test."""
        from conveyor.modeling import plots as p

        images = {"confusion matrix (test)": p.confusion_plot(matrix, title="test split")}
        if scores is not None:
            y_true = y.to_numpy()
            images["ROC curve (test)"] = p.roc_plot(y_true, scores, positive=pos,
                                                    title="test split",
                                                    auc=metrics.get("test_roc_auc"))
            images["PR curve (test)"] = p.pr_plot(y_true, scores, positive=pos,
                                                  title="test split",
                                                  auc=metrics.get("test_pr_auc"))
            if scores.min() >= 0 and scores.max() <= 1:  # probabilities, not margins
                images["calibration (test)"] = p.calibration_plot(y_true, scores, positive=pos,
                                                                  title="test split")
        if decided is not None and "curve" in decided:
            images["threshold curve (train folds)"] = p.threshold_plot(
                decided, title="out-of-fold, training split")
        metric = "f1" if pos is not None else "accuracy"
        importance = p.permutation_importance(model, X, y, metric=metric, positive=pos, seed=0)
        images["permutation importance (test)"] = p.importance_plot(
            importance, title=f"test split, {metric}")
        return images

    @staticmethod
    def _cross_validate(model: Any, X: Any, y: Any, spec: Any, pos: Any, *,
                        task: str = "classification",
                        wanted: list[str] | None = None) -> dict[str, float]:
        """``cv_<metric>`` (the mean over the folds) and ``cv_<metric>_std`` on the training
        split; the model is refitted per fold with its final hyper-parameters (and its
        decision threshold, which is part of the model)."""
        import numpy as np
        from sklearn.base import clone
        from sklearn.model_selection import cross_validate

        from conveyor.modeling import scorer
        from conveyor.modeling.lean_median import lean
        from conveyor.modeling.metrics import scorer_sign
        from conveyor.modeling.training import folds

        cv = folds(task, spec.evaluate.cv, spec.split.seed)
        wanted = list(wanted or spec.evaluate.metrics)
        per_fold = clone(model)
        lean(per_fold)  # the folds' fits are thrown away: nothing to settle (ADR 0056)
        result = cross_validate(per_fold, X, y, cv=cv,
                                scoring={m: scorer(m, pos) for m in wanted})
        out: dict[str, float] = {}
        for m in wanted:
            values = result[f"test_{m}"]
            if task == "regression":
                values = scorer_sign(m) * values
            elif scorer(m, pos) == f"neg_{m}":  # sklearn's losses are negated scores
                values = -values
            if np.isnan(values).all():
                continue
            out[f"cv_{m}"] = float(np.nanmean(values))
            out[f"cv_{m}_std"] = float(np.nanstd(values))
        return out
