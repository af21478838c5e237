"""Splitting and fitting: the one place a pipeline step, the lab and a search split and fit.

Pure functions of data and spec objects: no Store, no MLflow, no step. ``features`` builds
the preprocessing; the caller passes the assembled (unfitted) sklearn ``Pipeline`` in. The
fitted model is scored by :mod:`conveyor.modeling.evaluation`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.errors import DataError

if TYPE_CHECKING:
    from conveyor.spec.models import SplitSpec

__all__ = ["MAX_BINS", "fit_model", "folds", "positive_label", "split_table", "split_xy",
           "strata"]

#: A continuous target is stratified on at most this many quantile bins.
MAX_BINS = 10


def strata(y: Any, *, test_size: float) -> Any:
    """Quantile bins of a continuous target to stratify on, or ``None`` when too few rows.

    The bins are the ranks cut in equal parts (ties broken by position, so equal values may
    fall in two bins and every bin has the same size give or take one): as many bins as
    :data:`MAX_BINS` allows while each bin keeps at least two rows and the test split at
    least one row per bin. Deterministic: no randomness here, the split's seed does the rest.

    >>> import pandas as pd
    >>> strata(pd.Series([5.0, 1.0, 3.0, 2.0, 4.0, 6.0]), test_size=0.5).tolist()
    [2, 0, 1, 0, 1, 2]
    >>> strata(pd.Series([1.0, 2.0, 3.0]), test_size=0.2) is None
    True
    """
    import numpy as np

    rows = len(y)
    n_test = int(np.ceil(rows * test_size))
    bins = min(MAX_BINS, rows // 2, n_test, rows - n_test)
    if bins < 2:
        return None
    ranks = np.asarray(y.rank(method="first"), dtype=float) - 1
    return (ranks * bins // rows).astype(int)


def folds(task: str, n_splits: int, seed: int) -> Any:
    """The CV folds of ``task``: ``StratifiedKFold`` for classes, ``KFold`` for values."""
    from sklearn.model_selection import KFold, StratifiedKFold

    kind = KFold if task == "regression" else StratifiedKFold
    return kind(n_splits=n_splits, shuffle=True, random_state=seed)


def split_table(frame: Any, target: str, split: SplitSpec, *,
                task: str = "classification") -> tuple[Any, Any]:
    """The train and test rows of ``frame`` (indexes reset): seeded, stratified on ``target``
    (its classes, or for regression its quantile bins: :func:`strata`).

    The pipeline's ``split`` step and the lab call this one function, so the same spec on the
    same table gives both the same rows.

    Raises:
        DataError: the rows cannot be split so (too few rows, or a class with one row).

    >>> import pandas as pd
    >>> from conveyor.spec.models import SplitSpec
    >>> frame = pd.DataFrame({"x": range(10), "y": [0, 1] * 5})
    >>> train, test = split_table(frame, "y", SplitSpec(test_size=0.2, seed=0))
    >>> len(train), len(test), sorted(test["y"])
    (8, 2, [0, 1])
    """
    from sklearn.model_selection import train_test_split

    if not split.stratify:
        stratify = None
    elif task == "regression":
        stratify = strata(frame[target], test_size=split.test_size)
    else:
        stratify = frame[target]
    try:
        train, test = train_test_split(
            frame, test_size=split.test_size, random_state=split.seed, stratify=stratify)
    except ValueError as exc:
        raise DataError(f"cannot split {len(frame)} rows with split.test_size="
                        f"{split.test_size}: {exc}") from None
    return train.reset_index(drop=True), test.reset_index(drop=True)


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
              positive: Any = None, what: str = "the model",
              task: str = "classification") -> tuple[Any, dict[str, Any]]:
    """Fit ``pipeline`` on (X, y), or tune it first; return the fitted pipeline and facts.

    Args:
        pipeline: an unfitted sklearn ``Pipeline`` whose last step is named ``model``.
        tune: a ``TuneSpec`` (grid or random search with stratified CV), or ``None``.
        seed: the seed of the folds and of random search.
        positive: the positive label for binary scorers (``None``: macro averages).
        what: how a fit failure names the estimator.
        task: ``classification`` (stratified folds) or ``regression`` (``KFold``; an
            unwritten ``tune.metric`` means rmse).

    Returns:
        The fitted pipeline and, when tuned, ``best_params`` and ``cv_best_<metric>``.

    Raises:
        DataError: the estimator refused the data.
    """
    from conveyor.modeling.lean_median import lean_fitting, settle
    from conveyor.modeling.metrics import scorer, scorer_sign

    facts: dict[str, Any] = {}
    if tune is None:
        try:
            with lean_fitting(pipeline):  # median imputers fit per column (ADR 0056)
                pipeline.fit(X, y)
        except ValueError as exc:
            raise DataError(f"fitting {what} failed: {exc}") from None
        return pipeline, facts
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    from conveyor.modeling.search import sampled

    grid = {f"model__{k}": sampled(v) for k, v in tune.params.items()}  # ranges: random only
    cv = folds(task, tune.cv, seed)
    metric = tune.metric
    if task == "regression" and "metric" not in tune.model_fields_set:
        metric = "rmse"  # the default f1 is a classification metric
    score = scorer(metric, positive)
    if tune.method == "grid":
        search = GridSearchCV(pipeline, grid, cv=cv, scoring=score, n_jobs=1, refit=True)
    else:
        search = RandomizedSearchCV(pipeline, grid, n_iter=tune.n_iter, cv=cv, scoring=score,
                                    random_state=seed, n_jobs=1, refit=True)
    try:
        with lean_fitting(pipeline):
            search.fit(X, y)
    except ValueError as exc:
        raise DataError(f"tuning failed: {exc}") from None
    settle(search.best_estimator_)  # refitted on a clone made while lean
    facts["best_params"] = {k.removeprefix("model__"): v for k, v in search.best_params_.items()}
    facts[f"cv_best_{metric}"] = scorer_sign(metric) * float(search.best_score_)
    return search.best_estimator_, facts
