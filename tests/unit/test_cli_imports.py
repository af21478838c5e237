"""Every ``conveyor`` command pays for what building its parser imports: keep that light."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("mlflow", "sklearn", "pandas", "numpy", "pyarrow", "dask", "distributed", "skops",
         "sqlalchemy", "airflow", "scipy", "conveyor.promotion", "conveyor.store")


def test_building_the_parser_imports_no_heavy_library() -> None:
    code = ("import json, sys, conveyor.cli; conveyor.cli.build_parser(); "
            f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert json.loads(done.stdout) == []


def test_promote_still_checks_and_lists_its_metrics() -> None:
    bad = subprocess.run([sys.executable, "-m", "conveyor.cli", "promote", "m", "--metric",
                          "bogus"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert ("invalid choice: 'bogus' (choose from 'accuracy', 'f1', 'precision', 'recall', "
            "'rmse', 'mae', 'r2', 'mape')") in bad.stderr
    shown = subprocess.run([sys.executable, "-m", "conveyor.cli", "promote", "--help"],
                           capture_output=True, text=True, check=True, timeout=60)
    assert "accuracy, f1, precision, recall, rmse, mae, r2, mape" in " ".join(
        shown.stdout.split())
