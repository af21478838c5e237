"""Steps and sources are plug-ins: a distribution adds them by entry point, Conveyor unchanged.

``tests/plugins/conveyor_testplugin`` holds one step (``describe``) and one source
(``counting``); each test writes the entry points of a fake installed distribution
(``*.dist-info/entry_points.txt``) into ``tmp_path`` and runs the ``conveyor`` command as a
subprocess with both folders on ``PYTHONPATH``, as an installed plug-in would be seen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
ENTRY_POINTS = """\
[conveyor.steps]
describe = conveyor_testplugin:DescribeStep

[conveyor.sources]
counting = conveyor_testplugin:CountingSource
"""
SPEC = """\
name: plugged
data:
  source: counting
  rows: 80
schema: {target: label, positive_label: odd}
model: {estimator: logistic_regression}
describe:
  columns: [x1, x2]
"""


def _install(site: Path, entry_points: str, name: str = "conveyor_testplugin") -> None:
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def _conveyor(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(PLUGINS)])}
    command = [str(Path(sys.executable).parent / "conveyor"), *args]
    return subprocess.run(command, env=env, text=True, capture_output=True, timeout=600,
                          check=False)


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    _install(site, ENTRY_POINTS)
    return site


def test_a_plugin_step_and_source_run_in_a_pipeline(site: Path, tmp_path: Path,
                                                    conveyor_home: Path) -> None:
    spec = tmp_path / "plugged.yaml"
    spec.write_text(SPEC)
    done = _conveyor(site, "run", str(spec))
    assert done.returncode == 0, done.stderr
    # the step's one-line summary, in pipeline order: after split (its input), before train
    lines = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("  ")
             and len(line.split()) > 1 and line.split()[1].isidentifier()]
    assert lines[:5] == ["ingest", "validate", "split", "describe", "train"], done.stdout
    assert "described 64 rows (x1, x2)" in done.stdout

    run = next(p for p in (conveyor_home / "artifacts" / "plugged").iterdir()
               if not p.name.startswith("_"))
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    # the source's rows arrived
    assert manifest["steps"]["ingest"]["info"]["rows"] == 80
    assert manifest["steps"]["ingest"]["info"]["source"] == "counting://80"
    assert len(pd.read_parquet(run / "ingest" / "raw.parquet")) == 80
    # the step's output is in the Store, with the hash its record names
    stats = json.loads((run / "describe" / "stats.json").read_text())
    assert set(stats) == {"x1", "x2"}
    assert manifest["artifacts"]["describe/stats"]["uri"].endswith("/describe/stats.json")
    # its section is part of the run's identity (a change of it is a change of spec)
    assert json.loads((run / "_run.json").read_text())["spec"]["describe"] == {
        "columns": ["x1", "x2"]}
    # its tag on the MLflow run
    from mlflow import MlflowClient

    tags = MlflowClient(manifest["tracking_uri"]).get_run(manifest["mlflow_run_id"]).data.tags
    assert tags["testplugin.described_rows"] == "64"
    assert tags["conveyor.step.describe"] == "ok"


def test_a_plugin_section_is_validated_by_its_model(site: Path, tmp_path: Path) -> None:
    spec = tmp_path / "plugged.yaml"
    spec.write_text(SPEC.replace("rows: 80", "rows: 3"))
    done = _conveyor(site, "validate", str(spec))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "plugged.yaml:4: data.rows: Input should be greater than or equal to 10" in (
        done.stderr)
    spec.write_text(SPEC.replace("[x1, x2]", "[]"))
    done = _conveyor(site, "validate", str(spec))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "plugged.yaml:8: describe.columns: List should have at least 1 item" in done.stderr


def test_steps_list_with_an_unknown_step(site: Path, tmp_path: Path) -> None:
    spec = tmp_path / "plugged.yaml"
    spec.write_text(SPEC + "steps: [ingest, validate, split, describ]\n")
    done = _conveyor(site, "validate", str(spec))
    assert done.returncode == 2, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "plugged.yaml:9: steps.3: unknown step 'describ'; did you mean 'describe'?" in out


def test_steps_list_without_an_upstream_step(site: Path, tmp_path: Path) -> None:
    spec = tmp_path / "plugged.yaml"
    spec.write_text(SPEC + "steps: [ingest, validate, describe]\n")
    done = _conveyor(site, "validate", str(spec))
    assert done.returncode == 2, done.stdout + done.stderr
    assert ("plugged.yaml:9: steps: step 'describe' needs split.train, but step 'split' is "
            "not in steps") in done.stdout + done.stderr


def test_steps_list_runs_only_the_chosen_steps(site: Path, tmp_path: Path,
                                               conveyor_home: Path) -> None:
    spec = tmp_path / "plugged.yaml"
    spec.write_text(SPEC + "steps: [ingest, validate, split, describe]\n")
    done = _conveyor(site, "run", str(spec))
    assert done.returncode == 0, done.stderr
    run = next(p for p in (conveyor_home / "artifacts" / "plugged").iterdir()
               if not p.name.startswith("_"))
    manifest = json.loads((run / "manifest.json").read_text())
    assert set(manifest["steps"]) == {"ingest", "validate", "split", "describe"}
    assert not (run / "train").exists()


def test_an_entry_point_that_fails_to_import(site: Path, tmp_path: Path) -> None:
    _install(site, "[conveyor.steps]\nbroken = conveyor_testplugin.nowhere:Broken\n",
             name="broken_plugin")
    spec = tmp_path / "plugged.yaml"
    spec.write_text(SPEC)
    done = _conveyor(site, "validate", str(spec))
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert ("entry point 'broken' = 'conveyor_testplugin.nowhere:Broken' (group "
            "conveyor.steps) failed to import: ModuleNotFoundError") in out
    assert "Traceback" not in out


def test_a_source_entry_point_that_fails_to_import(site: Path, tmp_path: Path) -> None:
    _install(site, "[conveyor.sources]\nbroken = conveyor_testplugin.nowhere:Broken\n",
             name="broken_plugin")
    spec = tmp_path / "plugged.yaml"
    spec.write_text(SPEC.replace("source: counting", "source: broken"))
    done = _conveyor(site, "validate", str(spec))
    assert done.returncode == 2, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "plugged.yaml:2: data: entry point 'broken'" in out and "failed to import" in out
