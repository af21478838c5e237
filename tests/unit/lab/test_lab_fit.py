"""The lab splits, fits and scores through the pipeline's functions (in this process: the
child's :func:`fit_config` is a plain function)."""

from __future__ import annotations

import pandas as pd
import pytest

from conveyor.lab.configs import parse_config_bytes
from conveyor.lab.spec import LAB_METRICS, Lab, LabSpec
from conveyor.lab.train import TARGET, lab_split
from conveyor.lab.worker import FitError, fit_config
from conveyor.modeling.training import split_table
from conveyor.sources.bundled import read_sklearn_source


@pytest.fixture(scope="module")
def lab() -> Lab:
    return Lab.from_spec(LabSpec.model_validate({
        "name": "unit", "watch": {"folder": "in"},
        "split": {"test_size": 0.25, "seed": 11}}))


def test_the_lab_splits_exactly_as_the_split_step(lab: Lab) -> None:
    split = lab_split(lab)
    frame, _ = read_sklearn_source(lab.spec.data)
    train, test = split_table(frame, TARGET, lab.spec.split)  # what the split step calls
    pd.testing.assert_frame_equal(split.X_test.assign(**{TARGET: split.y_test}), test)
    pd.testing.assert_frame_equal(split.X_train.assign(**{TARGET: split.y_train}), train)
    assert split.seed == 11
    assert lab_split(lab).key == split.key  # the same spec, the same split (and hold-out)


def test_fit_config_scores_every_lab_metric_on_both_parts_macro_averaged(lab: Lab) -> None:
    from sklearn.metrics import f1_score

    split = lab_split(lab)
    (config,) = parse_config_bytes(b"model: decision_tree\nparams: {max_depth: 1}\n", "t.yaml")
    fitted = fit_config(config, split, lab.spec.preprocess)
    assert set(fitted.metrics) == {f"{p}_{m}" for p in ("train", "test") for m in LAB_METRICS}
    predicted = fitted.model.predict(split.X_test)
    assert fitted.metrics["test_f1"] == f1_score(split.y_test, predicted, average="macro")
    assert fitted.metrics["test_f1"] < 0.8  # a stump: macro, not the accuracy of one class


def test_a_config_that_fails_to_fit_names_file_config_and_reason_once(lab: Lab) -> None:
    (config,) = parse_config_bytes(
        b"model: logistic_regression\nparams: {solver: liblinear, penalty: elasticnet}\n",
        "bad.yaml")
    with pytest.raises(FitError) as caught:
        fit_config(config, lab_split(lab), lab.spec.preprocess)
    message = str(caught.value)
    assert message.startswith("bad.yaml: config 'bad': LogisticRegression failed to fit: ")
    assert "fitting LogisticRegression failed" not in message
