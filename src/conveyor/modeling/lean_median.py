"""A median imputer fit that needs a column's worth of memory, not the matrix's five times.

scikit-learn's ``SimpleImputer(strategy="median")`` fits with ``np.ma.median(masked_X,
axis=0)``: a masked copy of the matrix, a filled copy, int64 sort indices and the sorted copy
with its mask, all alive at once (a 122 MiB training matrix took a run from 351 to 895 MiB;
ADR 0054). The same ``np.ma.median`` called on one column at a time gives the same numbers
(every step of it works per column: the sort along axis 0, the counts, the middle pair, its
sum and halving, the NaN check) and holds one column's copies at a time (ADR 0056).

The saved model must stay a plain ``SimpleImputer``: serving's compiled path recognises steps
by exact type (ADR 0033), skops trusts scikit-learn's types, and a model loads where Conveyor
is not installed. So the lean class exists only while fitting: :func:`lean` switches the
``SimpleImputer`` instances of an estimator to it (their ``__class__``; the subclass adds no
state and no parameter), clones made while fitting inherit it, and :func:`settle` switches
them back, leaving exactly the ``__dict__`` that ``SimpleImputer.fit`` leaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sklearn.impute import SimpleImputer

__all__ = ["lean", "lean_fitting", "settle"]


class _LeanMedianImputer(SimpleImputer):
    """``SimpleImputer`` whose dense median fit runs ``np.ma.median`` one column at a time,
    on the caller's matrix rather than a copy of it.

    Every other strategy, and sparse input, is scikit-learn's own code. Never saved: see
    :func:`settle`.
    """

    def fit(self, X: Any, y: Any = None) -> _LeanMedianImputer:
        """``SimpleImputer.fit`` without its copy of ``X`` (for the median): the fit only
        reads ``X``, the copy (``copy=True``) is for ``transform``, which writes into it."""
        if self.strategy != "median" or self.copy is not True:
            return super().fit(X, y)
        self.copy = False
        try:
            return super().fit(X, y)
        finally:
            self.copy = True

    def _dense_fit(self, X: Any, strategy: Any, missing_values: Any, fill_value: Any) -> Any:
        if strategy != "median" or X.ndim != 2 or X.shape[1] == 0:
            return super()._dense_fit(X, strategy, missing_values, fill_value)
        import numpy as np
        from numpy import ma
        from sklearn.utils._mask import _get_mask

        # as SimpleImputer._dense_fit: the mask of the whole matrix (1 byte a cell), the
        # indicator fitted on it, then the median, here column by column on views
        missing_mask = _get_mask(X, missing_values)
        masked_X = ma.masked_array(X, mask=missing_mask)
        self._fit_indicator(missing_mask)
        columns = [np.ma.median(masked_X[:, j:j + 1], axis=0) for j in range(X.shape[1])]
        median = np.concatenate([np.ma.getdata(c) for c in columns])
        median[np.concatenate([np.ma.getmaskarray(c) for c in columns])] = (
            0 if self.keep_empty_features else np.nan)
        return median


def _walk(obj: Any, seen: set[int]) -> Iterator[Any]:
    """``obj`` and every estimator reachable from it through attributes, lists, tuples and
    dicts (a Pipeline's steps, a ColumnTransformer's transformers and fitted transformers_, a
    threshold wrapper's estimator, a search's best_estimator_)."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, dict):
        for value in obj.values():
            yield from _walk(value, seen)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from _walk(value, seen)
    elif hasattr(obj, "get_params") and hasattr(obj, "__dict__"):
        yield obj
        for value in vars(obj).values():
            yield from _walk(value, seen)


def lean(*estimators: Any) -> None:
    """Switch every exact ``SimpleImputer`` in ``estimators`` to the lean median fit (in
    place; their parameters, and any fitted state, are untouched)."""
    seen: set[int] = set()
    for estimator in estimators:
        for part in _walk(estimator, seen):
            if type(part) is SimpleImputer:
                part.__class__ = _LeanMedianImputer


def settle(*estimators: Any) -> None:
    """Switch every lean imputer in ``estimators`` back to ``SimpleImputer`` (in place): what
    is saved, served and compared by type is scikit-learn's class."""
    seen: set[int] = set()
    for estimator in estimators:
        for part in _walk(estimator, seen):
            if type(part) is _LeanMedianImputer:
                part.__class__ = SimpleImputer


@contextmanager
def lean_fitting(*estimators: Any) -> Iterator[None]:
    """:func:`lean` for the block, :func:`settle` after it (also when it raises). Clones made
    inside the block (a search's, cross-validation's) are lean too: settle the one kept."""
    lean(*estimators)
    try:
        yield
    finally:
        settle(*estimators)
