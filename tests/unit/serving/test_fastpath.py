"""The compiled predict path equals scikit-learn's predict_proba to 1e-9, or is not offered.

Property-style: each pipeline shape is fitted on several random data sets (seeds), with NaN
holes for the imputers, and compared on 1 and 1000 fresh rows, in signature order that
differs from the order the pipeline was fitted in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier

from conveyor.serving.fastpath import FastpathDeclined, compile_predictor

NAMES = ["f0", "f1", "f2", "f3", "f4", "f5"]
SIGNATURE = sorted(NAMES, reverse=True)  # requests arrive in another order than fitted
TOL = 1e-9


def data(seed: int, n: int, *, classes: int = 2, holes: float = 0.0) -> tuple[pd.DataFrame,
                                                                            np.ndarray]:
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, len(NAMES)))
    X = Z * rng.uniform(0.1, 50, len(NAMES)) + rng.uniform(-20, 20, len(NAMES))
    score = Z[:, 0] + Z[:, 1] - Z[:, 4]
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    frame = pd.DataFrame(X, columns=NAMES)
    if holes:
        frame = frame.mask(rng.random(frame.shape) < holes)
    return frame, y


def numeric(*steps: object) -> Pipeline:
    return Pipeline([(f"s{i}", s) for i, s in enumerate(steps)])


def imputer(strategy: str) -> SimpleImputer:
    return SimpleImputer(strategy=strategy, fill_value=0.5) if strategy == "constant" \
        else SimpleImputer(strategy=strategy)


def pipelines(estimator: object) -> dict[str, Pipeline]:
    return {
        "conveyor-shape": Pipeline([
            ("preprocess", ColumnTransformer(
                [("numeric", numeric(imputer("median"), StandardScaler()), NAMES)],
                verbose_feature_names_out=False)),
            ("model", estimator)]),
        "mixed-columns-remainder": Pipeline([
            ("preprocess", ColumnTransformer([
                ("a", numeric(imputer("mean"), MinMaxScaler()), ["f3", "f0"]),
                ("b", numeric(imputer("most_frequent"), RobustScaler()), [1, 2]),
                ("drop", "drop", ["f5"]),
            ], remainder=numeric(imputer("median"), "passthrough"))),
            ("model", estimator)]),
        "flat-steps": Pipeline([
            ("impute", imputer("constant")), ("scale", StandardScaler(with_mean=False)),
            ("minmax", MinMaxScaler(feature_range=(-1, 2), clip=True)),
            ("model", estimator)]),
        "mask-and-slice": Pipeline([
            ("preprocess", ColumnTransformer([
                ("a", numeric(imputer("median"), RobustScaler(with_centering=False)),
                 [True, False, True, False, True, False]),
                ("b", numeric(imputer("mean")), slice(1, 6, 2)),
            ])),
            ("model", estimator)]),
    }


ESTIMATORS = {
    "logistic-binary": (lambda: LogisticRegression(max_iter=2000), 2),
    "logistic-multinomial": (lambda: LogisticRegression(C=0.3, max_iter=2000), 3),
    "tree": (lambda: DecisionTreeClassifier(max_depth=6, random_state=0), 3),
    "forest": (lambda: RandomForestClassifier(n_estimators=25, random_state=0), 2),
    "extra-trees": (lambda: ExtraTreesClassifier(n_estimators=15, min_samples_leaf=3,
                                                 random_state=0), 3),
    "boosting-binary": (lambda: GradientBoostingClassifier(n_estimators=30, max_depth=3,
                                                           random_state=0), 2),
    "boosting-multiclass": (lambda: GradientBoostingClassifier(
        n_estimators=20, learning_rate=0.3, subsample=0.8, random_state=0), 3),
    "boosting-from-zero": (lambda: GradientBoostingClassifier(
        init="zero", n_estimators=10, random_state=0), 2),
}
CASES = [(e, p) for e in ESTIMATORS for p in pipelines(None)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("estimator", "shape"), CASES)
def test_compiled_equals_predict_proba(estimator: str, shape: str, seed: int) -> None:
    make, classes = ESTIMATORS[estimator]
    train, y = data(seed, 400, classes=classes, holes=0.1)
    pipe = pipelines(make())[shape].fit(train, y)
    predict = compile_predictor(pipe, SIGNATURE)
    assert predict is not None, f"{estimator}/{shape} has no compiled path"
    for n in (1, 1000):
        fresh, _ = data(seed + 100, n, classes=classes, holes=0.1)
        fresh.iloc[0, :] = np.nan  # a row with nothing in it: every imputer fills it
        expected = pipe.predict_proba(fresh)
        got = predict(np.ascontiguousarray(fresh[SIGNATURE].to_numpy(np.float64)))
        assert got.shape == expected.shape == (n, classes)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)


def test_values_beyond_the_training_range_and_exact_thresholds() -> None:
    train, y = data(7, 300)
    pipe = Pipeline([("m", RandomForestClassifier(n_estimators=10, random_state=0))])
    pipe.fit(train, y)
    predict = compile_predictor(pipe, NAMES)
    assert predict is not None
    # values exactly at split thresholds (float32 rounding decides the branch) and far out
    thresholds = [t for est in pipe[-1].estimators_ for t in est.tree_.threshold if t != -2]
    X = np.resize(np.asarray(thresholds, dtype=np.float64), (200, len(NAMES)))
    X[:5] *= 1e6
    np.testing.assert_allclose(predict(X), pipe.predict_proba(pd.DataFrame(X, columns=NAMES)),
                               rtol=0, atol=TOL)


def test_an_all_missing_training_column_is_dropped_as_scikit_learn_does() -> None:
    train, y = data(3, 200)
    train["f2"] = np.nan
    pipe = Pipeline([("impute", SimpleImputer()), ("model", LogisticRegression())])
    with pytest.warns(UserWarning):
        pipe.fit(train, y)
    predict = compile_predictor(pipe, NAMES)
    assert predict is not None
    fresh, _ = data(4, 50, holes=0.2)
    with pytest.warns(UserWarning):
        expected = pipe.predict_proba(fresh)
    np.testing.assert_allclose(predict(fresh.to_numpy()), expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("make", [
    lambda: LogisticRegression(),
    lambda: RandomForestClassifier(n_estimators=5, random_state=0),
])
def test_nan_without_an_imputer_is_left_to_scikit_learn(make: object) -> None:
    train, y = data(5, 200)
    pipe = Pipeline([("scale", StandardScaler()), ("model", make())]).fit(train, y)  # type: ignore[operator]
    predict = compile_predictor(pipe, NAMES)
    assert predict is not None
    X = train.to_numpy()[:3].copy()
    X[1, 2] = np.nan
    with pytest.raises(FastpathDeclined):
        predict(X)
    X[1, 2] = np.inf
    with pytest.raises(FastpathDeclined):
        predict(X)
    with pytest.raises(FastpathDeclined):
        predict(X[:, :3])  # the wrong number of columns


@pytest.mark.parametrize(("name", "pipe"), [
    ("one-hot", Pipeline([("p", ColumnTransformer([("c", OneHotEncoder(), ["f0"])])),
                          ("m", LogisticRegression())])),
    ("polynomial", Pipeline([("p", PolynomialFeatures()), ("m", LogisticRegression())])),
    ("boosting-exponential-loss", Pipeline([("m", GradientBoostingClassifier(
        loss="exponential", n_estimators=5))])),
    ("boosting-from-a-model", Pipeline([("m", GradientBoostingClassifier(
        init=LogisticRegression(), n_estimators=5))])),
    ("column-transformer-after-a-step", Pipeline([
        ("i", SimpleImputer()),
        ("p", ColumnTransformer([("s", StandardScaler(), [0, 2])])),
        ("m", LogisticRegression())])),
    ("imputer-indicator", Pipeline([("i", SimpleImputer(add_indicator=True)),
                                    ("m", LogisticRegression())])),
])
def test_unknown_pipelines_get_no_compiled_path(name: str, pipe: Pipeline) -> None:
    train, y = data(11, 120, holes=0.05 if name == "imputer-indicator" else 0.0)
    if name == "one-hot":
        train["f0"] = (train["f0"] > 0).astype(float)
    pipe.fit(train, y)
    assert compile_predictor(pipe, NAMES) is None


def test_a_signature_missing_a_fitted_column_gets_no_compiled_path() -> None:
    train, y = data(12, 120)
    pipe = Pipeline([("m", LogisticRegression())]).fit(train, y)
    assert compile_predictor(pipe, NAMES[:-1]) is None
