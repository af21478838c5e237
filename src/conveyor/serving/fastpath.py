"""A compiled predict path for the common pipelines: the fitted arithmetic, without
scikit-learn's per-call input validation.

scikit-learn's ``predict_proba`` spends about 0.8 ms validating a one-row input (dtype
checks, feature-name checks, finiteness, the ColumnTransformer's column dispatch) before it
does microseconds of arithmetic. :func:`compile_predictor` reads the fitted attributes of a
pipeline it knows once and returns a function doing only that arithmetic on a float64 array,
in the same order of operations, so results equal ``predict_proba``'s to rounding (the caller,
:mod:`conveyor.serving.runtime`, checks them to 1e-9 on the model's own check rows before it
uses the compiled path; ADR 0033).

Known: ``Pipeline`` and ``ColumnTransformer`` (columns by name, index, mask or slice;
``passthrough``/``drop``, a remainder) of ``SimpleImputer`` (NaN as missing, no indicator),
``StandardScaler``, ``MinMaxScaler``, ``RobustScaler``, then ``LogisticRegression`` (binary,
one-vs-rest or multinomial), ``DecisionTreeClassifier``, ``RandomForestClassifier``,
``ExtraTreesClassifier`` or ``GradientBoostingClassifier`` (log loss, a prior or zero start).
Anything else: :func:`compile_predictor` returns ``None`` and the caller keeps scikit-learn.

A compiled function raises :class:`FastpathDeclined` for an input it would answer
differently from scikit-learn (an infinity, a NaN reaching a model that scikit-learn would
refuse or route by its own rules); the caller then asks scikit-learn, which answers or raises
its own error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["FastpathDeclined", "Predictor", "compile_predictor"]

Predictor = Callable[[np.ndarray], np.ndarray]
_Step = Callable[[np.ndarray], np.ndarray]


class FastpathDeclined(ValueError):
    """This input is left to scikit-learn (it may answer differently, or raise)."""


class _Unsupported(Exception):
    """Raised while compiling: no compiled path for this estimator."""


def compile_predictor(estimator: Any, feature_names: Sequence[str]) -> Predictor | None:
    """A function ``f(X) -> proba`` equal to ``estimator.predict_proba`` for a known pipeline.

    Args:
        estimator: a fitted scikit-learn classifier or pipeline.
        feature_names: the columns of ``X`` the function receives, in order (the model
            signature's order).

    Returns:
        ``f`` taking a C-contiguous float64 array ``(n, len(feature_names))`` and returning
        ``(n, n_classes)`` probabilities in ``estimator.classes_`` order; or ``None`` when the
        pipeline holds anything this module does not know.
    """
    from conveyor.modeling.threshold import inner_model

    names = [str(n) for n in feature_names]
    # a model saved with a decision threshold: its probabilities are its pipeline's; the
    # caller turns them into labels with the threshold (ModelHolder, ADR 0041)
    estimator = inner_model(estimator)
    try:
        steps = _flatten(estimator)
        final = steps.pop()
        columns = _input_columns(estimator, names)
        # only the first step sees known columns: one after an imputer that dropped an
        # empty column would not, so a ColumnTransformer is compiled only where it is first
        chain = [_transformer(step, columns if i == 0 else None)
                 for i, step in enumerate(steps)]
        model = _classifier(final)
    except _Unsupported:
        return None
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return None  # a fitted attribute of an unexpected shape: leave it to scikit-learn
    select = _selection(columns, names)

    def predict(X: np.ndarray) -> np.ndarray:
        if X.ndim != 2 or X.shape[1] != len(names):
            raise FastpathDeclined(f"expected {len(names)} columns, got shape {X.shape}")
        if np.isinf(X).any():
            raise FastpathDeclined("infinite input")
        out = X if select is None else X[:, select]
        for step in chain:
            out = step(out)
        return model(out)

    return predict


# ----------------------------------------------------------------------------- structure


def _flatten(estimator: Any) -> list[Any]:
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        out: list[Any] = []
        for _, step in estimator.steps:
            if step is None or (isinstance(step, str) and step == "passthrough"):
                continue
            out.extend(_flatten(step) if isinstance(step, Pipeline) else [step])
        if not out:
            raise _Unsupported
        return out
    return [estimator]


def _input_columns(estimator: Any, names: list[str]) -> list[str]:
    """The columns the estimator was fitted on, by name (``names`` when fitted on arrays)."""
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is None:
        n = getattr(estimator, "n_features_in_", len(names))
        if n != len(names):
            raise _Unsupported
        return list(names)
    fitted = [str(c) for c in fitted]
    if any(c not in names for c in fitted):
        raise _Unsupported
    return fitted


def _selection(columns: list[str], names: list[str]) -> np.ndarray | None:
    index = [names.index(c) for c in columns]
    return None if index == list(range(len(names))) else np.asarray(index, dtype=np.intp)


def _transformer(step: Any, columns: list[str] | None) -> _Step:
    """A compiled transform of a fitted step seeing ``columns`` (``None``: not known)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    kind = type(step)
    if isinstance(step, str) and step == "passthrough":
        return _identity
    if kind is ColumnTransformer:
        return _column_transformer(step, columns)
    if kind is SimpleImputer:
        return _imputer(step)
    if kind is StandardScaler:
        return _standard(step)
    if kind is MinMaxScaler:
        return _minmax(step)
    if kind is RobustScaler:
        return _robust(step)
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    if kind is FunctionTransformer and step.func is None:  # a fitted "passthrough"
        return _identity
    if kind is Pipeline:
        inner = [_transformer(s, columns if i == 0 else None)
                 for i, s in enumerate(_flatten(step))]
        return _chain(inner)
    raise _Unsupported


def _identity(X: np.ndarray) -> np.ndarray:
    return X


def _chain(steps: list[_Step]) -> _Step:
    def run(X: np.ndarray) -> np.ndarray:
        for step in steps:
            X = step(X)
        return X

    return run


def _column_transformer(ct: Any, columns: list[str] | None) -> _Step:
    if columns is None:
        raise _Unsupported
    if getattr(ct, "sparse_output_", False):
        raise _Unsupported
    names = [str(c) for c in getattr(ct, "feature_names_in_", columns)]
    if names != columns:
        raise _Unsupported
    parts: list[tuple[np.ndarray, _Step]] = []
    for _, trans, cols in ct.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        index = _column_index(cols, names)
        if index.size == 0:
            continue
        parts.append((index, _transformer(trans, [names[i] for i in index])))
    if not parts:
        raise _Unsupported
    if len(parts) == 1:
        (index, step), = parts
        if np.array_equal(index, np.arange(len(names))):
            return step
        return lambda X: step(X[:, index])

    def transform(X: np.ndarray) -> np.ndarray:
        return np.hstack([step(X[:, index]) for index, step in parts])

    return transform


def _column_index(cols: Any, names: list[str]) -> np.ndarray:
    if isinstance(cols, slice):
        return np.arange(len(names))[cols]
    if isinstance(cols, str) or callable(cols):
        raise _Unsupported  # a single name selects a 1-D column; a callable is opaque
    values = list(cols)
    if not values:
        return np.empty(0, dtype=np.intp)
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        if len(values) != len(names):
            raise _Unsupported
        return np.flatnonzero(values)
    if all(isinstance(v, (int, np.integer)) for v in values):
        index = np.asarray(values, dtype=np.intp)
        index[index < 0] += len(names)
        return index
    if all(isinstance(v, str) for v in values):
        return np.asarray([names.index(v) for v in values], dtype=np.intp)
    raise _Unsupported


# ----------------------------------------------------------------------------- transformers


def _imputer(imp: Any) -> _Step:
    missing = imp.missing_values
    if imp.add_indicator or not (isinstance(missing, float) and np.isnan(missing)):
        raise _Unsupported
    fill_dtype = getattr(imp, "_fill_dtype", np.dtype(np.float64))
    if np.dtype(fill_dtype).kind != "f":
        raise _Unsupported
    # a constant fill keeps its given type in an object array: [0.5, nan]
    stats = np.asarray(imp.statistics_).astype(np.float64)
    if imp.keep_empty_features:
        keep = None
        fill = stats.astype(np.float64)
    else:
        valid = ~np.isnan(stats)
        keep = None if valid.all() else np.flatnonzero(valid)
        fill = stats[valid].astype(np.float64)

    def impute(X: np.ndarray) -> np.ndarray:
        if keep is not None:
            X = X[:, keep]
        mask = np.isnan(X)
        if not mask.any():
            return X
        return np.where(mask, fill, X)

    return impute


def _center_scale(center: Any, scale: Any) -> _Step:
    """``(X - center) / scale``, either part absent (StandardScaler and RobustScaler alike)."""

    def transform(X: np.ndarray) -> np.ndarray:
        if center is not None:
            X = X - center
        if scale is not None:
            X = X / scale
        return X

    return transform


def _standard(scaler: Any) -> _Step:
    return _center_scale(scaler.mean_ if scaler.with_mean else None,
                         scaler.scale_ if scaler.with_std else None)


def _minmax(scaler: Any) -> _Step:
    scale, offset = scaler.scale_, scaler.min_
    low, high = scaler.feature_range
    clip = bool(scaler.clip)

    def minmax(X: np.ndarray) -> np.ndarray:
        X = X * scale
        X += offset
        if clip:
            np.clip(X, low, high, out=X)
        return X

    return minmax


def _robust(scaler: Any) -> _Step:
    return _center_scale(scaler.center_ if scaler.with_centering else None,
                         scaler.scale_ if scaler.with_scaling else None)


# ----------------------------------------------------------------------------- models


def _classifier(model: Any) -> Predictor:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

    kind = type(model)
    if kind is LogisticRegression:
        return _logistic(model)
    if kind in (DecisionTreeClassifier, ExtraTreeClassifier):
        return _forest([model], model)
    if kind in (RandomForestClassifier, ExtraTreesClassifier):
        return _forest(list(model.estimators_), model)
    if kind is GradientBoostingClassifier:
        return _gradient_boosting(model)
    raise _Unsupported


def _logistic(model: Any) -> Predictor:
    from scipy.special import expit, softmax

    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if coef.ndim != 2 or np.asarray(model.classes_).size < 2:
        raise _Unsupported
    coef_t = coef.T
    binary = np.asarray(model.classes_).size <= 2

    def logistic(X: np.ndarray) -> np.ndarray:
        if np.isnan(X).any():
            raise FastpathDeclined("NaN reaching LogisticRegression")
        scores = X @ coef_t + intercept
        if binary:
            if scores.shape[1] == 1:
                p = expit(scores[:, 0])
                return np.stack([1 - p, p], axis=1)
            p = expit(scores)
            total = p.sum(axis=1)
            if (total == 0).any():
                raise FastpathDeclined("all-zero one-vs-rest scores")
            return p / total.reshape(-1, 1)
        return softmax(scores, axis=1)

    return logistic


class _Trees:
    """Many fitted trees packed into flat arrays, walked all at once (one numpy step per
    level for every tree and row); ``walk(X)`` gives each (row, tree) pair's leaf."""

    def __init__(self, trees: list[Any]) -> None:
        if not trees:
            raise _Unsupported
        feature, threshold, left, right, values = [], [], [], [], []
        roots, depth, offset = [], 0, 0
        for tree in trees:
            t = tree.tree_
            if t.n_outputs != 1:
                raise _Unsupported
            leaf = t.children_left == -1
            roots.append(offset)
            feature.append(np.where(leaf, 0, t.feature))
            threshold.append(t.threshold)
            # a leaf is its own child, so extra levels leave finished paths where they are
            own = np.arange(offset, offset + t.node_count)
            left.append(np.where(leaf, own, t.children_left + offset))
            right.append(np.where(leaf, own, t.children_right + offset))
            values.append(np.asarray(t.value)[:, 0, :].astype(np.float64))
            depth = max(depth, int(t.max_depth))
            offset += t.node_count
        self.F = np.concatenate(feature).astype(np.intp)
        self.T = np.concatenate(threshold).astype(np.float64)
        # children side by side: node k's right child at 2k, its left child at 2k + 1
        self.C = np.stack([np.concatenate(right), np.concatenate(left)],
                          axis=1).astype(np.intp).ravel()
        self.values = values  # per tree: (nodes, outputs) as fitted
        self.start = np.asarray(roots, dtype=np.intp)
        self.depth = depth
        self.n_features = int(self.F.max()) + 1

    def walk(self, X: np.ndarray) -> np.ndarray:
        """The global node index of the leaf each row reaches in each tree: ``(n, trees)``."""
        if X.shape[1] < self.n_features:
            raise FastpathDeclined(f"{X.shape[1]} columns reach trees splitting on "
                                   f"{self.n_features}")
        if np.isnan(X).any():
            raise FastpathDeclined("NaN reaching a tree (scikit-learn routes it by its own rules)")
        # scikit-learn's trees compare float32 inputs; flat indices are cheaper than 2-D ones
        flat = np.ascontiguousarray(X, dtype=np.float32).ravel()
        n, width = X.shape
        base = (np.arange(n, dtype=np.intp) * width)[:, None]
        node = np.repeat(self.start[None, :], n, axis=0)
        F, T, C = self.F, self.T, self.C
        for _ in range(self.depth):
            go_left = flat[base + F[node]] <= T[node]
            node = C[2 * node + go_left]
        return node


def _forest(trees: list[Any], model: Any) -> Predictor:
    """A tree's or a forest's ``predict_proba``: the mean of the trees' leaf frequencies."""
    n_classes = int(np.asarray(model.classes_).size)
    if getattr(model, "n_outputs_", 1) != 1:
        raise _Unsupported
    packed = _Trees(trees)
    value = []
    for fitted in packed.values:
        proba = fitted[:, :n_classes]
        norm = proba.sum(axis=1, keepdims=True)
        norm[norm == 0] = 1
        value.append(proba / norm)
    V = np.concatenate(value)
    n_trees = len(trees)

    def forest(X: np.ndarray) -> np.ndarray:
        proba = V[packed.walk(X)]  # (n, trees, classes)
        if n_trees == 1:
            return proba[:, 0, :]
        return proba.sum(axis=1) / n_trees

    return forest


def _gradient_boosting(model: Any) -> Predictor:
    """``GradientBoostingClassifier.predict_proba`` (log loss, a prior or zero start)."""
    from scipy.special import expit, softmax
    from sklearn.dummy import DummyClassifier

    if model.loss != "log_loss":
        raise _Unsupported
    stages = np.asarray(model.estimators_)  # (stages, K): one regression tree per class
    n_stages, k = stages.shape
    init = model.init_
    if isinstance(init, str) and init == "zero":
        start = np.zeros(k)
    elif type(init) is DummyClassifier and init.strategy == "prior":
        # the start is a constant: scikit-learn's own function on any one row gives it
        from sklearn.ensemble._gb import _init_raw_predictions

        start = _init_raw_predictions(np.zeros((1, model.n_features_in_)), init, model._loss,
                                      True)[0].astype(np.float64)
    else:
        raise _Unsupported
    packed = _Trees(list(stages.ravel()))  # stage-major: tree s * K + c adds to class c
    rate = float(model.learning_rate)
    V = np.concatenate([rate * v[:, 0] for v in packed.values])
    binary = k == 1

    def boosted(X: np.ndarray) -> np.ndarray:
        leaves = V[packed.walk(X)].reshape(len(X), n_stages, k)
        raw = start + leaves.sum(axis=1)
        if binary:
            p = expit(raw[:, 0])
            return np.stack([1 - p, p], axis=1)
        return softmax(raw, axis=1)

    return boosted
