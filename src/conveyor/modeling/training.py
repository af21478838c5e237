"""Fitting a model pipeline: the one place a pipeline step, the lab and a search fit models.

Pure functions of data and spec objects: no Store, no MLflow, no step. ``features`` builds
the preprocessing; the caller passes the assembled (unfitted) sklearn ``Pipeline`` in.
"""

from __future__ import annotations

from typing import Any

from conveyor.errors import DataError

__all__ = ["fit_model", "positive_label", "split_xy"]


def split_xy(frame: Any, features: dict[str, str] | list[str], target: str) -> tuple[Any, Any]:
    """The feature columns (in ``features`` order) and the target column of ``frame``."""
    return frame[list(features)], frame[target]


def positive_label(label: Any, y: Any) -> Any:
    """``label`` in the target's own type (``1`` for an int target, ``"M"`` for text).

    ``None`` stays ``None`` (a multiclass task, or a binary one scored by macro average).

    >>> import pandas as pd
    >>> positive_label("1", pd.Series([0, 1, 1]))
    1
    >>> positive_label("M", pd.Series(["B", "M"]))
    'M'
    """
    if label is None:
        return None
    for value in y.unique():
        if str(value) == str(label):
            return value.item() if hasattr(value, "item") else value
    return label


def fit_model(pipeline: Any, X: Any, y: Any, *, tune: Any = None, seed: int = 0,
              positive: Any = None, what: str = "the model") -> tuple[Any, dict[str, Any]]:
    """Fit ``pipeline`` on (X, y), or tune it first; return the fitted pipeline and facts.

    Args:
        pipeline: an unfitted sklearn ``Pipeline`` whose last step is named ``model``.
        tune: a ``TuneSpec`` (grid or random search with stratified CV), or ``None``.
        seed: the seed of the folds and of random search.
        positive: the positive label for binary scorers (``None``: macro averages).
        what: how a fit failure names the estimator.

    Returns:
        The fitted pipeline and, when tuned, ``best_params`` and ``cv_best_<metric>``.

    Raises:
        DataError: the estimator refused the data.
    """
    from conveyor.modeling.metrics import scorer

    facts: dict[str, Any] = {}
    if tune is None:
        try:
            pipeline.fit(X, y)
        except ValueError as exc:
            raise DataError(f"fitting {what} failed: {exc}") from None
        return pipeline, facts
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, StratifiedKFold

    grid = {f"model__{k}": v for k, v in tune.params.items()}
    cv = StratifiedKFold(n_splits=tune.cv, shuffle=True, random_state=seed)
    score = scorer(tune.metric, positive)
    if tune.method == "grid":
        search = GridSearchCV(pipeline, grid, cv=cv, scoring=score, n_jobs=1, refit=True)
    else:
        search = RandomizedSearchCV(pipeline, grid, n_iter=tune.n_iter, cv=cv, scoring=score,
                                    random_state=seed, n_jobs=1, refit=True)
    try:
        search.fit(X, y)
    except ValueError as exc:
        raise DataError(f"tuning failed: {exc}") from None
    facts["best_params"] = {k.removeprefix("model__"): v for k, v in search.best_params_.items()}
    facts[f"cv_best_{tune.metric}"] = float(search.best_score_)
    return search.best_estimator_, facts
