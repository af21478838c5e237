"""Estimators: an allow-list of import paths, checked on the resolved object, and parameters
checked against the estimator's real signature.

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
    "SHORT_NAMES",
    "build_estimator",
    "check_params",
    "resolve_estimator",
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


def resolve_estimator(name: str, *, key: str = "model.estimator") -> type:
    """Resolve a short name or dotted import path to an allowed classifier class.

    Raises:
        SpecError: unknown name, a module outside the allow-list, or not a classifier.
    """
    path = SHORT_NAMES.get(name, name)
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        close = difflib.get_close_matches(name, list(SHORT_NAMES), n=1)
        hint = f"did you mean {close[0]!r}?" if close else (
            "use a short name (" + ", ".join(sorted(SHORT_NAMES)[:6]) + ", ...) "
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
    from sklearn.base import BaseEstimator, ClassifierMixin, is_classifier

    classifier = issubclass(obj, ClassifierMixin)
    if not classifier and issubclass(obj, BaseEstimator):
        try:
            classifier = is_classifier(obj())
        except Exception:  # noqa: BLE001 - a class that cannot be built bare is no classifier
            classifier = False
    if not classifier:
        raise SpecError(f"{path!r} is not a classifier (Conveyor trains classifiers)", key=key)
    return obj


def check_params(estimator: type, params: dict[str, Any]) -> list[tuple[str, str]]:
    """Check parameter names against the estimator's signature.

    Returns:
        (parameter, message) for each unknown parameter, with the nearest valid name.
    """
    signature = inspect.signature(estimator.__init__)
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        valid_from_sig = None  # xgboost/lightgbm accept **kwargs: use get_params() instead
    else:
        valid_from_sig = [n for n in signature.parameters if n != "self"]
    valid = valid_from_sig if valid_from_sig is not None else list(estimator().get_params())
    problems = []
    for name in params:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else "valid: " + ", ".join(sorted(valid))
            problems.append((name, f"{estimator.__name__} has no parameter {name!r}; {hint}"))
    return problems


def build_estimator(name: str, params: dict[str, Any], *, key: str = "model") -> Any:
    """Resolve, check and construct an estimator.

    Raises:
        SpecError: bad name, bad parameter name, or a value the estimator refuses.
    """
    cls = resolve_estimator(name, key=f"{key}.estimator")
    problems = check_params(cls, params)
    if problems:
        param, message = problems[0]
        raise SpecError(message, key=f"{key}.params.{param}")
    try:
        estimator = cls(**params)
        # sklearn validates values at fit; ask now so a bad value fails before any work
        if hasattr(estimator, "_validate_params"):
            estimator._validate_params()
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{cls.__name__} refused its parameters: {exc}", key=f"{key}.params") \
            from None
    return estimator
