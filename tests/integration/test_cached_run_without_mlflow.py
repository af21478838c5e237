"""From the user's side: ``conveyor run`` twice on a fresh home, the second run all cached.

The second run never imports MLflow (nor SQLAlchemy, Alembic, scikit-learn), and what it
records reads back through ``MlflowClient`` exactly as what the MlflowClient path records
(``CONVEYOR_DIRECT_SQLITE=0``, Conveyor before ADR 0049): params, metrics, tags, dataset
inputs, artifacts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor.tracking.sqlite_tracking import DIRECT_VARIABLE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "breast_cancer" / "pipeline.yaml"
_HEAVY = ("mlflow", "sqlalchemy", "alembic", "sklearn")
# runs the CLI as ``conveyor`` does, then writes the heavy modules it imported to argv[1]
_WRAPPER = f"""
import json, sys
from conveyor.cli import main
out = sys.argv[1]
code = main(sys.argv[2:])
with open(out, "w") as handle:
    json.dump(sorted(m for m in sys.modules if m.split(".")[0] in {_HEAVY!r}), handle)
sys.exit(code)
"""


def _run(home: Path, tmp: Path, *, direct: bool) -> list[str]:
    """One ``conveyor run`` of the example in ``home``; the heavy modules it imported."""
    env = {**os.environ, "CONVEYOR_HOME": str(home)}
    if not direct:
        env[DIRECT_VARIABLE] = "0"
    imported = tmp / "imported.json"
    done = subprocess.run([sys.executable, "-c", _WRAPPER, str(imported), "run", str(SPEC),
                           "--quiet"], env=env, cwd=tmp, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(imported.read_text())


def _second_run(home: Path) -> dict[str, Any]:
    """What the newest MLflow run of ``home`` records, as MLflow reads it, with its own
    ids and the home replaced by placeholders."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("breast_cancer")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    assert len(runs) == 2
    run = client.get_run(runs[-1].info.run_id)
    first = runs[0]
    own = {run.info.run_id: "<mlflow run>", run.data.tags["conveyor.run_id"]: "<run>",
           first.data.tags["conveyor.run_id"]: "<first run>", str(home): "<home>"}

    def plain(value: str) -> str:
        for raw, label in own.items():
            value = value.replace(raw, label)
        return value

    def files(path: str | None = None) -> list[str]:
        found = []
        for item in client.list_artifacts(run.info.run_id, path):
            found += files(item.path) if item.is_dir else [item.path]
        return found

    return {
        "status": run.info.status, "name": plain(run.info.run_name),
        "params": run.data.params,
        "metrics": run.data.metrics,
        "tags": {k: plain(v) for k, v in run.data.tags.items()},
        "inputs": [(i.dataset.name, i.dataset.digest, i.dataset.source_type,
                    i.dataset.source, i.dataset.schema, i.dataset.profile,
                    [(t.key, t.value) for t in i.tags]) for i in run.inputs.dataset_inputs],
        "artifacts": sorted(files()),
        "metrics.json": Path(client.download_artifacts(
            run.info.run_id, "evaluate/metrics.json", str(home))).read_text(),
    }


def test_a_cached_rerun_imports_no_mlflow_and_records_the_same(tmp_path: Path) -> None:
    direct, through = tmp_path / "direct", tmp_path / "through"
    first = _run(direct, tmp_path, direct=True)
    assert "mlflow" in first  # the first run logs and registers a model through MLflow
    assert _run(direct, tmp_path, direct=True) == []  # the cached run: none of them
    _run(through, tmp_path, direct=False)
    assert "mlflow" in _run(through, tmp_path, direct=False)
    expected, found = _second_run(through), _second_run(direct)
    assert found["tags"]["conveyor.step.train"] == "cached"
    assert found["tags"]["conveyor.registered_version"] == "1"
    assert found["inputs"] and found["artifacts"] and found["params"]
    assert found == expected
