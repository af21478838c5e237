"""Estimators (classifiers and regressors): an allow-list of import paths, checked on the
resolved object, and parameters checked against the estimator's real signature.

Importing a module runs its code, so the allow-list is checked on the *name* before import
and again on the *resolved object* after (``logging.os.system`` passes a naive prefix check
on a name but not on the object's ``__module__``).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any

from conveyor.errors import SpecError

__all__ = [
    "ALLOWED_MODULE_PREFIXES",
    "REGRESSOR_NAMES",
    "SHORT_NAMES",
    "build_estimator",
    "check_params",
    "estimator_kind",
    "implied_task",
    "resolve_estimator",
    "short_names",
]

ALLOWED_MODULE_PREFIXES = ("sklearn.", "xgboost.", "lightgbm.")
SHORT_NAMES = {
    "logistic_regression": "sklearn.linear_model.LogisticRegression",
    "sgd": "sklearn.linear_model.SGDClassifier",
    "ridge": "sklearn.linear_model.RidgeClassifier",
    "random_forest": "sklearn.ensemble.RandomForestClassifier",
    "extra_trees": "sklearn.ensemble.ExtraTreesClassifier",
    "gradient_boosting": "sklearn.ensemble.GradientBoostingClassifier",
    "hist_gradient_boosting": "sklearn.ensemble.HistGradientBoostingClassifier",
    "adaboost": "sklearn.ensemble.AdaBoostClassifier",
    "decision_tree": "sklearn.tree.DecisionTreeClassifier",
    "svc": "sklearn.svm.SVC",
    "linear_svc": "sklearn.svm.LinearSVC",
    "knn": "sklearn.neighbors.KNeighborsClassifier",
    "naive_bayes": "sklearn.naive_bayes.GaussianNB",
    "mlp": "sklearn.neural_network.MLPClassifier",
    "xgboost": "xgboost.XGBClassifier",
    "lightgbm": "lightgbm.LGBMClassifier",
}
_INSTALL_HINT = {"xgboost": "pip install xgboost", "lightgbm": "pip install lightgbm"}


#: Regressors by short name (ADR 0038). A name both tables hold (``random_forest``) is the
#: classifier or the regressor by the pipeline's task.
REGRESSOR_NAMES = {
    "linear_regression": "sklearn.linear_model.LinearRegression",
    "ridge": "sklearn.linear_model.Ridge",
    "lasso": "sklearn.linear_model.Lasso",
    "elastic_net": "sklearn.linear_model.ElasticNet",
    "sgd": "sklearn.linear_model.SGDRegressor",
    "random_forest": "sklearn.ensemble.RandomForestRegressor",
    "extra_trees": "sklearn.ensemble.ExtraTreesRegressor",
    "gradient_boosting": "sklearn.ensemble.GradientBoostingRegressor",
    "hist_gradient_boosting": "sklearn.ensemble.HistGradientBoostingRegressor",
    "adaboost": "sklearn.ensemble.AdaBoostRegressor",
    "decision_tree": "sklearn.tree.DecisionTreeRegressor",
    "svr": "sklearn.svm.SVR",
    "linear_svr": "sklearn.svm.LinearSVR",
    "knn": "sklearn.neighbors.KNeighborsRegressor",
    "mlp": "sklearn.neural_network.MLPRegressor",
    "xgboost": "xgboost.XGBRegressor",
    "lightgbm": "lightgbm.LGBMRegressor",
}
_KIND = {"classification": "classifier", "regression": "regressor"}


def short_names(task: str | None) -> dict[str, str]:
    """The short names of ``task`` (both tasks' when ``None``: a classifier first).

    >>> short_names("regression")["random_forest"]
    'sklearn.ensemble.RandomForestRegressor'
    >>> short_names(None)["random_forest"]
    'sklearn.ensemble.RandomForestClassifier'
    """
    if task == "regression":
        return dict(REGRESSOR_NAMES)
    if task == "classification":
        return dict(SHORT_NAMES)
    return {**REGRESSOR_NAMES, **SHORT_NAMES}


def estimator_kind(obj: type) -> str | None:
    """``classifier``, ``regressor`` or ``None`` for an estimator class."""
    from sklearn.base import (
        BaseEstimator,
        ClassifierMixin,
        RegressorMixin,
        is_classifier,
        is_regressor,
    )

    if issubclass(obj, ClassifierMixin):
        return "classifier"
    if issubclass(obj, RegressorMixin):
        return "regressor"
    if issubclass(obj, BaseEstimator):
        try:
            instance = obj()
            return "classifier" if is_classifier(instance) else (
                "regressor" if is_regressor(instance) else None)
        except Exception:  # noqa: BLE001 - a class that cannot be built bare is neither
            return None
    return None


def resolve_estimator(name: str, *, task: str | None = None,
                      key: str = "model.estimator", task_fixed: bool = False) -> type:
    """Resolve a short name or dotted import path to an allowed estimator class of ``task``.

    Args:
        name: a short name (``random_forest``) or an import path under an allowed module.
        task: ``classification`` or ``regression``; ``None`` when the task is not known yet
            (a short name then means the classifier if there is one, and either kind of
            class is accepted).
        key: the spec key named in errors.
        task_fixed: the caller trains one task only (the lab): no "set schema.task" hint.

    Raises:
        SpecError: unknown name, a module outside the allow-list, or an estimator of the
            other task (a regressor for a classification target or the reverse).
    """
    names = short_names(task)
    retask = "" if task_fixed else ", or set schema.task"
    other = {"classification": REGRESSOR_NAMES, "regression": SHORT_NAMES}.get(task or "", {})
    if name in other and name not in names:
        wanted = _KIND[task or "classification"]
        close = difflib.get_close_matches(name, list(names), n=2)
        hint = f"use a {wanted} such as {', '.join(close or sorted(names)[:3])}"
        raise SpecError(f"{name!r} is a {'regressor' if task == 'classification' else 'classifier'}"
                        f", but the task is {task}; {hint}{retask}", key=key)
    path = names.get(name, name)
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        close = difflib.get_close_matches(name, list(short_names(None)), n=1)
        hint = f"did you mean {close[0]!r}?" if close else (
            "use a short name (" + ", ".join(sorted(names)[:6]) + ", ...) "
            "or an import path like sklearn.ensemble.RandomForestClassifier")
        raise SpecError(f"unknown estimator {name!r}; {hint}", key=key)
    private = any(part.startswith("_") for part in path.split("."))
    if not (module_name + ".").startswith(ALLOWED_MODULE_PREFIXES) or private:
        raise SpecError(
            f"estimator {path!r} is outside the allow-list; allowed modules start with "
            + ", ".join(p.rstrip(".") for p in ALLOWED_MODULE_PREFIXES), key=key,
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        root = module_name.split(".", 1)[0]
        hint = _INSTALL_HINT.get(root, f"check the module path {module_name!r}")
        raise SpecError(f"cannot import {module_name!r} for estimator {name!r}: {hint}",
                        key=key) from None
    obj = getattr(module, attr, None)
    if obj is None:
        candidates = [n for n in dir(module) if not n.startswith("_")]
        close = difflib.get_close_matches(attr, candidates, n=1)
        hint = f"; did you mean {module_name}.{close[0]}?" if close else ""
        raise SpecError(f"{module_name} has no estimator {attr!r}{hint}", key=key)
    # check the resolved object, not the name: re-exports must still live in allowed modules
    real_module = getattr(obj, "__module__", "") or ""
    if not inspect.isclass(obj) or not (real_module + ".").startswith(ALLOWED_MODULE_PREFIXES):
        raise SpecError(
            f"{path!r} resolves to {real_module}.{getattr(obj, '__qualname__', obj)!s}, "
            "which is not an allowed estimator class", key=key,
        )
    kind = estimator_kind(obj)
    if kind is None:
        raise SpecError(f"{path!r} is not a classifier or a regressor", key=key)
    if task is not None and kind != _KIND[task]:
        raise SpecError(f"{path!r} is a {kind}, but the task is {task}; use a "
                        f"{_KIND[task]}{retask}", key=key)
    return obj


def implied_task(name: str) -> str | None:
    """The task an estimator name alone fixes: an import path or a short name of one task.

    >>> implied_task("linear_regression"), implied_task("random_forest")
    ('regression', None)
    """
    if name in SHORT_NAMES and name in REGRESSOR_NAMES:
        return None
    if name in SHORT_NAMES:
        return "classification"
    if name in REGRESSOR_NAMES:
        return "regression"
    try:
        kind = estimator_kind(resolve_estimator(name))
    except SpecError:
        return None
    return {"classifier": "classification", "regressor": "regression"}.get(kind or "")


def _native_params(estimator: type) -> list[str]:
    """The library's own parameter names (and aliases) an estimator takes through
    ``**kwargs``: LightGBM's ``verbose``, ``min_data_in_leaf``, ... are not in its
    ``get_params()`` until set, but LightGBM reads them."""
    if not (getattr(estimator, "__module__", "") or "").startswith("lightgbm."):
        return []
    try:  # the table LightGBM itself checks parameters and aliases against
        from lightgbm.basic import _ConfigAliases

        table = _ConfigAliases._get_all_param_aliases()
    except Exception:  # noqa: BLE001 - another LightGBM version: its sklearn names only
        return []
    return sorted({name for main, aliases in table.items() for name in (main, *aliases)})


def check_params(estimator: type, params: dict[str, Any]) -> list[tuple[str, str]]:
    """Check parameter names against the estimator's signature.

    An estimator taking ``**kwargs`` (xgboost, lightgbm) accepts the names of its
    ``get_params()`` and, for LightGBM, the library's own parameters and their aliases
    (``verbose``); anything else is still a typo.

    Returns:
        (parameter, message) for each unknown parameter, with the nearest valid name.
    """
    signature = inspect.signature(estimator.__init__)
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        valid = list(estimator().get_params())
        native = _native_params(estimator)
    else:
        valid = [n for n in signature.parameters if n != "self"]
        native = []
    problems = []
    for name in params:
        if name not in valid and name not in native:
            close = difflib.get_close_matches(name, valid + native, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else "valid: " + ", ".join(sorted(valid))
            if native and not close:
                hint += f", or one of {estimator.__module__.split('.')[0]}'s own parameters"
            problems.append((name, f"{estimator.__name__} has no parameter {name!r}; {hint}"))
    return problems


def build_estimator(name: str, params: dict[str, Any], *, task: str | None = None,
                    key: str = "model", task_fixed: bool = False) -> Any:
    """Resolve, check and construct an estimator.

    With ``task`` ``None`` (not known before the data is read), a short name both tasks
    hold is built as the classifier, or as the regressor when only the regressor takes
    ``params``; the train step builds it again for the task the data decided.

    Raises:
        SpecError: bad name, bad parameter name, or a value the estimator refuses.
    """
    if task is None and name in SHORT_NAMES and name in REGRESSOR_NAMES:
        try:
            return build_estimator(name, params, task="classification", key=key)
        except SpecError as first:
            try:
                return build_estimator(name, params, task="regression", key=key)
            except SpecError:
                raise first from None
    cls = resolve_estimator(name, task=task, key=f"{key}.estimator", task_fixed=task_fixed)
    problems = check_params(cls, params)
    if problems:
        param, message = problems[0]
        raise SpecError(message, key=f"{key}.params.{param}")
    try:
        estimator = cls(**params)
        # sklearn validates values at fit; ask now so a bad value fails before any work
        if hasattr(estimator, "_validate_params") and hasattr(estimator,
                                                              "_parameter_constraints"):
            estimator._validate_params()
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{cls.__name__} refused its parameters: {exc}", key=f"{key}.params") \
            from None
    return estimator
