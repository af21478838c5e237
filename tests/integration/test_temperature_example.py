"""examples/temperature: the Python API on the data ``conveyor synth`` writes, and
``pipeline.sh`` stopping at its first failing stage (its successful run, stage by stage through
the CLI, is the docs test of examples/temperature/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import conveyor

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "temperature"

pytestmark = pytest.mark.slow


def pipeline_sh(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CONVEYOR_HOME=str(home),
               CONVEYOR=str(Path(sys.executable).parent / "conveyor"))
    env.pop("TEMPERATURE_DATA", None)
    return subprocess.run(["bash", str(EXAMPLE / "pipeline.sh"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900, check=False)


def test_the_example_through_the_python_api(conveyor_home: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # the data pipeline.sh writes (its defaults: 4 stations, seed 7); the whole script, stage
    # by stage through the CLI, runs in the docs test of examples/temperature/README.md
    data = conveyor_home / "temperature-data"
    written = conveyor.synth("temperature", data, datasets=4, seed=7)
    assert len(written.train) == len(written.test) == 4
    monkeypatch.setenv("TEMPERATURE_DATA", str(data))
    result = conveyor.run(EXAMPLE / "pipeline.yaml", home=conveyor_home)
    assert result.status == "ok", result
    manifest = json.loads(Path(result.manifest_uri.removeprefix("file://")).read_text())
    split = manifest["steps"]["split"]["info"]
    assert split["train_rows"] == 4 * 730 and split["test_rows"] == 4 * 730
    assert manifest["steps"]["ingest"]["info"]["test_rows"] == 4 * 730
    assert result.metrics["test_recall"] >= 0.6 and result.metrics["test_precision"] >= 0.6
    assert {"test_accuracy", "test_f1"} <= set(result.metrics)


def test_pipeline_sh_stops_at_the_first_failing_stage(conveyor_home: Path) -> None:
    done = pipeline_sh(conveyor_home, "0")
    assert done.returncode == 2
    assert "datasets: Input should be greater than or equal to 1" in done.stderr
    assert 'pipeline.sh: stage "synth" failed (exit 2)' in done.stderr
    assert "== ingest" not in done.stdout
    assert not (conveyor_home / "artifacts").exists()
