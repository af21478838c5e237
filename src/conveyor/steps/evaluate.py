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


class EvaluateStep(BaseStep):
    """Metrics on train and test, cross-validation mean ± std on train, the confusion matrix
    and the plots. The HTML report is rendered by the gate step, once the verdict is known
    (docs/decisions/0041-evaluation-report-and-threshold.md)."""

    name = "evaluate"
    inputs = ("train.model", "split.train", "split.test", "validate.report")
    optional_inputs = ("train.threshold",)
    outputs = ("metrics", "confusion", "plots")
    config_keys = ("schema", "evaluate", "model", "preprocess", "split")
    default = True
    #: 2: cv_<metric>_std, PR/calibration/importance plots, the plots index; no report
    version = 2

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        return " ".join(f"{k}={v:.3f}" for k, v in sorted(metrics.items())
                        if k in ("test_accuracy", "test_f1"))

    def _run(self, ctx: StepContext) -> StepResult:
        from conveyor.modeling import confusion, positive_scores

        spec = ctx.spec
        model = ctx.load_model()
        features = ctx.read_json("validate.report")["features"]
        target = spec.schema_.target
        X_train, y_train = split_xy(ctx.read_table("split.train"), features, target)
        X_test, y_test = split_xy(ctx.read_table("split.test"), features, target)
        pos = scoring_positive(spec.schema_.positive_label, y_train)
        metrics = score_model(model, (X_train, y_train), (X_test, y_test),
                              metrics=spec.evaluate.metrics, positive=pos)
        if spec.evaluate.cv:
            metrics.update(self._cross_validate(model, X_train, y_train, spec, pos))
        matrix = confusion(model, X_test, y_test)
        scores = positive_scores(model, X_test, pos) if pos is not None else None
        decided = (ctx.read_json("train.threshold") if "train.threshold" in ctx.inputs
                   else None)
        images = self._plots(model, X_test, y_test, matrix, scores, pos, metrics, decided)
        outputs = {
            "metrics": ctx.write_json("metrics", metrics),
            "confusion": ctx.write_json("confusion", matrix),
        }
        index = []  # a list: the report shows the plots in this order
        for title, png in images.items():
            outputs[_slug(title)] = ref = ctx.write_bytes(f"{_slug(title)}.png", png)
            index.append({"title": title, **ref.to_dict()})
        outputs["plots"] = ctx.write_json("plots", index)
        facts = {"model": spec.model.estimator, "train rows": len(X_train),
                 "test rows": len(X_test), "features": len(features),
                 "positive label": pos if pos is not None else "(multiclass, macro average)"}
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
    def _cross_validate(model: Any, X: Any, y: Any, spec: Any, pos: Any) -> dict[str, float]:
        """``cv_<metric>`` (the mean over the folds) and ``cv_<metric>_std`` on the training
        split; the model is refitted per fold with its final hyper-parameters (and its
        decision threshold, which is part of the model)."""
        import numpy as np
        from sklearn.base import clone
        from sklearn.model_selection import StratifiedKFold, cross_validate

        from conveyor.modeling import scorer

        cv = StratifiedKFold(n_splits=spec.evaluate.cv, shuffle=True,
                             random_state=spec.split.seed)
        wanted = list(spec.evaluate.metrics)
        result = cross_validate(clone(model), X, y, cv=cv,
                                scoring={m: scorer(m, pos) for m in wanted})
        out: dict[str, float] = {}
        for m in wanted:
            folds = result[f"test_{m}"]
            if scorer(m, pos) == f"neg_{m}":  # sklearn's losses are negated scores
                folds = -folds
            if np.isnan(folds).all():
                continue
            out[f"cv_{m}"] = float(np.nanmean(folds))
            out[f"cv_{m}_std"] = float(np.nanstd(folds))
        return out
