"""A logged model's ``requirements.txt`` pins its estimator's library by the distribution
that is installed, which need not share the module's name (``xgboost`` from ``xgboost-cpu``)."""

from __future__ import annotations

from importlib.metadata import packages_distributions, version
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conveyor.tracking.tracker import Tracker


@pytest.mark.parametrize("module", ["xgboost", "lightgbm"])
def test_a_logged_booster_pins_its_installed_distribution(tmp_path: Path, module: str) -> None:
    library = pytest.importorskip(module)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    booster = (library.XGBClassifier(n_estimators=3) if module == "xgboost"
               else library.LGBMClassifier(n_estimators=3, verbose=-1))
    model = make_pipeline(StandardScaler(), booster).fit(X, y)
    tracker = Tracker(None, "requirements")
    tracker.attach("run-requirements", tags={})
    folder = tmp_path / "model"
    tracker.log_sklearn_model(model, X.head(3), folder=folder)
    tracker.end()

    [distribution] = packages_distributions()[module]  # xgboost-cpu here, not "xgboost"
    pins = (folder / "requirements.txt").read_text().split()
    assert f"{distribution}=={version(distribution)}" in pins, pins
    assert "scikit-learn==" + version("scikit-learn") in pins
