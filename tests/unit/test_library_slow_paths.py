"""Costs a run pays only because a library takes a slow path (ADR 0043): what skops'
import drags in, and MLflow's per-cell scan of a dataset's schema."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

_TRUSTED = ("import json, sys; {imp}; "
            "from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES as names; "
            "loaded = sorted(m for m in ('pytest', 'dask') if m in sys.modules); "
            "import dask, pytest; "
            "print(json.dumps([sorted(names), loaded]))")


def _fresh(imp: str) -> tuple[list[str], list[str]]:
    done = subprocess.run([sys.executable, "-c", _TRUSTED.format(imp=imp)], capture_output=True,
                          text=True, check=True, timeout=120)
    names, loaded = json.loads(done.stdout.splitlines()[-1])
    return names, loaded


def test_skops_is_imported_without_pytest_and_dask_and_trusts_the_same_types() -> None:
    ours, ours_loaded = _fresh("from conveyor.tracking.tracker import import_skops; "
                               "import_skops()")
    plain, plain_loaded = _fresh("import skops.io")
    assert plain_loaded == ["dask", "pytest"]  # what skops' type scan drags in by itself
    assert ours_loaded == []  # ... and not through import_skops; both import fine afterwards
    assert len(ours) > 100 and ours == plain  # the same trusted scikit-learn types


def test_the_dataset_schema_is_mlflows_own_inference() -> None:
    import numpy as np
    import pandas as pd
    from mlflow.types.utils import _infer_schema

    from conveyor.tracking.tracker import dataset_schema

    frame = pd.DataFrame({
        "full": [1.0, 2.0, 3.0, 4.0], "nan": [1.0, np.nan, 3.0, 4.0],
        "ints": [1, 2, 3, 4], "text": ["a", None, "c", "d"], "words": ["a", "b", "c", "d"],
        "flags": [True, False, True, True],
        "when": pd.to_datetime(["2026-01-01", None, "2026-01-03", "2026-01-04"]),
        "nullable": pd.array([1, None, 3, 4], dtype="Int64")})
    ours, mlflows = dataset_schema(frame), _infer_schema(frame)
    assert ours.to_dict() == mlflows.to_dict()
    assert [c["required"] for c in ours.to_dict()] == [True, False, True, False, True, True,
                                                      False, False]


def test_a_saved_model_skips_mlflows_requirement_check_and_keeps_its_pins(
        tmp_path: Any, monkeypatch: Any) -> None:
    """MLflow's check that the installed packages satisfy the model's pins lists every
    installed distribution (ADR 0052); our pins are the installed versions, so the save skips
    it: requirements.txt is unchanged, and the check is MLflow's again afterwards."""
    import pandas as pd
    from mlflow.utils import environment
    from sklearn.linear_model import LogisticRegression

    from conveyor.tracking.tracker import Tracker, _pip_requirements

    calls: list[list[str]] = []
    monkeypatch.setattr(environment, "warn_dependency_requirement_mismatches", calls.append)
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(X, [0, 0, 1, 1])
    Tracker.save_sklearn_model(model, X.head(2), tmp_path / "model")
    assert calls == []  # not called while saving
    pins = _pip_requirements(model)
    assert any(p.startswith("scikit-learn==") for p in pins)
    assert (tmp_path / "model" / "requirements.txt").read_text().split() == pins
    assert environment.warn_dependency_requirement_mismatches == calls.append  # put back
    environment._process_pip_requirements([], pip_requirements=pins)  # MLflow's own path
    assert calls == [pins]  # ... which is the hook the save stood in for


_SAVE_WITHOUT_PIP = """
import sys
import pandas as pd
from sklearn.linear_model import LogisticRegression
import mlflow.utils.environment as environment
from conveyor.tracking.tracker import Tracker

found = environment._get_package_version
environment._get_package_version = lambda name: None if name == "pip" else found(name)
X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
Tracker.save_sklearn_model(LogisticRegression().fit(X, [0, 0, 1, 1]), X.head(2), sys.argv[1])
"""


def test_a_model_saved_where_pip_is_missing_logs_no_pip_notice(tmp_path: Any) -> None:
    # uv's environments have no pip: MLflow warned "Failed to resolve installed pip version"
    # on every saved model, which a run through the Python API printed
    done = subprocess.run([sys.executable, "-c", _SAVE_WITHOUT_PIP, str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "pip version" not in done.stderr, done.stderr
    conda = (tmp_path / "m" / "conda.yaml").read_text()
    assert "- pip\n" in conda  # the path the notice is logged on was taken
