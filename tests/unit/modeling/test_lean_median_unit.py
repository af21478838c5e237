"""The median imputer's lean fit (ADR 0056): scikit-learn's fitted state bit for bit, plain
scikit-learn types in what is kept, and a fraction of the memory.

Bit for bit means the pickles are equal: every attribute's type, dtype, shape and bytes, and
the class itself (a pickle names it).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression

from conveyor.features import build_model_pipeline
from conveyor.modeling.lean_median import _LeanMedianImputer, lean, lean_fitting, settle
from conveyor.modeling.search import SearchCandidate, run_search
from conveyor.modeling.training import fit_model
from conveyor.spec.models import PreprocessSpec, TuneSpec


def _floats(rows: int = 1001, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 6))
    X[rng.random(X.shape) < 0.3] = np.nan
    X[:, 2] = np.nan  # an all-missing column
    X[:, 3] = np.where(rng.random(rows) < 0.5, -0.0, 0.0)  # signed zeros: which one is kept
    X[:, 4] = np.round(X[:, 4])  # ties
    X[: rows // 2, 5] = np.nan  # an even count of values left in one column, odd in others
    return X


def _ints() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 9, size=(400, 5))


CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "floats": (_floats(), {}),
    "floats, even rows": (_floats(1000), {}),
    "keep empty features": (_floats(), {"keep_empty_features": True}),
    "with indicator": (_floats(), {"add_indicator": True}),
    "keep empty and indicator": (_floats(), {"keep_empty_features": True,
                                             "add_indicator": True}),
    "float32": (_floats().astype(np.float32), {}),
    "ints, 3 missing": (_ints(), {"missing_values": 3}),
    "pandas": (pd.DataFrame(_floats(), columns=list("abcdef")), {}),
    "pandas ints": (pd.DataFrame(_ints(), columns=list("vwxyz")), {"missing_values": 3}),
    "no copy": (_floats(), {"copy": False}),
}


def _lean_fit(X: Any, **params: Any) -> SimpleImputer:
    imputer = SimpleImputer(strategy="median", **params)
    with lean_fitting(imputer):
        assert type(imputer) is _LeanMedianImputer
        imputer.fit(X)
    return imputer


@pytest.mark.parametrize("case", list(CASES))
def test_the_lean_fit_leaves_simple_imputers_fitted_state_bit_for_bit(case: str) -> None:
    X, params = CASES[case]
    theirs = SimpleImputer(strategy="median", **params).fit(X)
    ours = _lean_fit(X, **params)
    assert type(ours) is SimpleImputer
    assert sorted(vars(ours)) == sorted(vars(theirs))
    assert ours.statistics_.dtype == theirs.statistics_.dtype
    assert ours.statistics_.tobytes() == theirs.statistics_.tobytes()  # -0.0 is not 0.0
    assert pickle.dumps(ours) == pickle.dumps(theirs)
    np.testing.assert_array_equal(ours.transform(X), theirs.transform(X))
    if isinstance(X, pd.DataFrame):
        assert list(ours.feature_names_in_) == list(X.columns)
        assert list(ours.get_feature_names_out()) == list(theirs.get_feature_names_out())


def test_other_strategies_and_the_callers_data_are_untouched() -> None:
    X = _floats()
    before = X.copy()
    for strategy in ("mean", "most_frequent", "constant"):
        theirs = SimpleImputer(strategy=strategy).fit(X)
        ours = SimpleImputer(strategy=strategy)
        with lean_fitting(ours):
            ours.fit(X)
        assert pickle.dumps(ours) == pickle.dumps(theirs), strategy
    _lean_fit(X)
    np.testing.assert_array_equal(X, before)  # the fit reads the caller's matrix, no copy


def _frame(rows: int = 600) -> tuple[pd.DataFrame, pd.Series]:
    X = pd.DataFrame(_floats(rows, seed=5)[:, [0, 1, 4, 5]], columns=["a", "b", "c", "d"])
    y = pd.Series((np.nan_to_num(X["a"].to_numpy()) + np.random.default_rng(2).normal(
        size=rows) > 0).astype(int), name="y")
    return X, y


def _pipeline() -> Any:
    types = dict.fromkeys(["a", "b", "c", "d"], "numeric")
    return build_model_pipeline(types, PreprocessSpec(), LogisticRegression(max_iter=500))


def _imputers(model: Any) -> list[Any]:
    from conveyor.modeling.lean_median import _walk

    return [p for p in _walk(model, set()) if isinstance(p, SimpleImputer)]


def test_fit_model_returns_scikit_learns_own_model_bit_for_bit() -> None:
    X, y = _frame()
    model, _ = fit_model(_pipeline(), X, y)
    reference = _pipeline().fit(X, y)
    assert [type(i) for i in _imputers(model)] == [SimpleImputer, SimpleImputer]  # steps_, _
    assert pickle.dumps(model) == pickle.dumps(reference)


def test_a_tuned_model_and_a_searchs_model_are_plain_scikit_learn() -> None:
    X, y = _frame()
    tuned, _ = fit_model(_pipeline(), X, y, tune=TuneSpec(params={"C": [0.1, 1.0]}, cv=3),
                         positive=1)
    found = run_search([SearchCandidate("lr", "logistic_regression", _pipeline(),
                                        {"C": [0.1, 1.0]})], X, y,
                       tune=TuneSpec(method="grid", cv=3), seed=7, positive=1).model
    for model in (tuned, found):
        assert _imputers(model) and all(type(i) is SimpleImputer for i in _imputers(model))
        reference = _pipeline().set_params(model__C=model[-1].C).fit(X, y)
        assert pickle.dumps(model) == pickle.dumps(reference)


def test_the_saved_model_is_one_skops_and_the_compiled_serving_path_take() -> None:
    import skops.io as sio

    from conveyor.serving.fastpath import compile_predictor

    X, y = _frame()
    model, _ = fit_model(_pipeline(), X, y)
    untrusted = sio.get_untrusted_types(data=sio.dumps(model))
    assert not [t for t in untrusted if "conveyor" in t], untrusted
    compiled = compile_predictor(model, list(X.columns))  # steps recognised by exact type
    assert compiled is not None
    lean(model)
    assert compile_predictor(model, list(X.columns)) is None  # what settling prevents


def test_a_failed_fit_still_settles_the_imputers() -> None:
    X, y = _frame()
    pipeline = _pipeline()
    with pytest.raises(ValueError), lean_fitting(pipeline):
        pipeline.fit(X, y.iloc[:10])  # the rows do not match
    assert all(type(i) is SimpleImputer for i in _imputers(pipeline))
    lean(pipeline)
    assert all(type(i) is _LeanMedianImputer for i in _imputers(pipeline))
    settle(pipeline)
    assert all(type(i) is SimpleImputer for i in _imputers(pipeline))


# The child: fit a median imputer on 300,000 x 20 floats (46 MiB, 5 % missing) and print how
# far the fit took the process's peak above its resident memory just before it (MiB).
CHILD = """
import json, sys
from pathlib import Path
import numpy as np
from sklearn.impute import SimpleImputer
from conveyor.modeling.lean_median import lean

def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

rng = np.random.default_rng(0)
X = rng.normal(size=(300_000, 20))
X[rng.random(X.shape) < 0.05] = np.nan
imputer = SimpleImputer(strategy="median")
if sys.argv[1] == "lean":
    lean(imputer)
Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
before = status("VmRSS")
imputer.fit(X)
print(json.dumps({"growth": status("VmHWM") - before, "data": X.nbytes / 2**20}))
"""


def _fit_growth(kind: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, kind], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs")
def test_the_lean_fit_takes_a_fraction_of_the_memory_of_scikit_learns() -> None:
    plain, ours = _fit_growth("plain"), _fit_growth("lean")
    # scikit-learn's: a validated copy, the mask, the masked sort's copies (~4.5x the data)
    assert plain["growth"] > 2 * plain["data"], plain
    # ours: the mask (1/8 of the data) and one column's copies at a time
    assert ours["growth"] < plain["growth"] / 5, (ours, plain)
    assert ours["growth"] < 0.5 * ours["data"], ours
