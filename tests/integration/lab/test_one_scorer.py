"""One scorer: a lab version and a pipeline run of the same estimator on the same split report
the same numbers (the lab splits, fits and scores through the pipeline steps' own functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.lab.spec import Lab
from conveyor.lab.train import train_file
from conveyor.runners import LocalRunner
from conveyor.spec import load_spec
from conveyor.tracking import Tracker

pytestmark = pytest.mark.integration

# the lab fixture's data, split (test_size 0.3, seed 42, stratified) and preprocessing
PIPELINE = """\
name: iris_pipeline
data: {source: sklearn, name: iris}
schema: {target: target}
split: {test_size: 0.3, seed: 42, stratify: true}
preprocess: {numeric: {impute: none}}
model: {estimator: logistic_regression, params: {C: 0.05, max_iter: 500}}
evaluate: {metrics: [accuracy, f1, precision, recall]}
"""
CONFIG = b"name: weak-logreg\nmodel: logistic_regression\nparams: {C: 0.05, max_iter: 500}\n"


def test_a_lab_version_and_a_pipeline_run_of_one_estimator_report_the_same_metrics(
        lab: Lab, tmp_path: Path) -> None:
    assert lab.spec.split.test_size == 0.3 and lab.spec.split.seed == 42
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE)
    pipeline = LocalRunner(load_spec(spec)).run()
    assert pipeline.complete
    evaluated = pipeline.records["evaluate"].metrics

    (trained,) = train_file(lab, CONFIG, "weak.yaml").configs
    names = {f"{split}_{m}" for split in ("train", "test")
             for m in ("accuracy", "f1", "precision", "recall")}
    assert set(trained.metrics) == names
    # a weak model (C=0.05), so the test f1 is not a trivial 1.0 both ways
    assert 0.5 < evaluated["test_f1"] < 0.99
    assert {k: trained.metrics[k] for k in names} == {k: evaluated[k] for k in names}

    # and the f1 tagged at registration (the promotion's evidence, 6 decimals) is that number
    version = Tracker(lab.tracking_uri, lab.experiment).client.get_model_version(
        lab.spec.model_name, trained.version)
    assert version.tags["conveyor.metric.test_f1"] == f"{evaluated['test_f1']:.6f}"
