"""``conveyor airflow test`` as a user runs it: a subprocess, real Airflow 3.3 underneath.

Each test runs the command and reads what it printed and its exit code; the embedded Airflow
home (``CONVEYOR_AIRFLOW_HOME``) is this module's own, migrated by the first command.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
from airflow_harness import BIN, REPO

pytestmark = pytest.mark.timeout(900)

SPEC = REPO / "examples" / "breast_cancer" / "pipeline.yaml"
_INHERITED_PREFIXES = ("AIRFLOW", "CONVEYOR_", "MLFLOW_")


@pytest.fixture(scope="module")
def embedded_airflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (BIN / "airflow").exists():
        pytest.skip("apache-airflow is not installed (uv sync --all-extras)")
    return tmp_path_factory.mktemp("embedded") / "airflow"


def _conveyor(airflow: Path, home: Path, *args: str, **env: str
              ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    return subprocess.run(
        [str(BIN / "conveyor"), "airflow", "test", *args],
        env={**base, "CONVEYOR_AIRFLOW_HOME": str(airflow), "CONVEYOR_HOME": str(home),
             "COLUMNS": "200", **env},
        capture_output=True, text=True, timeout=800, check=False)


def _pipelines(tmp_path: Path, wdbc_path: Path, **edits: str) -> Path:
    """A pipelines folder with one copy of the breast-cancer spec per ``name=text edit``."""
    folder = tmp_path / "pipelines"
    folder.mkdir()
    text = SPEC.read_text().replace("${WDBC_PATH:-../../../shared/data/wdbc/wdbc.data}",
                                    str(wdbc_path))
    for name, edit in edits.items():
        old, _, new = edit.partition(" -> ")
        spec = text.replace("name: breast_cancer", f"name: {name}", 1)
        assert old in spec
        (folder / f"{name}.yaml").write_text(spec.replace(old, new, 1))
    return folder


def _log_folder(stdout: str) -> Path:
    match = re.search(r"one log per task in (\S+)", stdout)
    assert match, stdout
    return Path(match.group(1))


def test_a_broken_spec_shows_the_error_airflow_recorded_in_one_line(
    embedded_airflow: Path, conveyor_home: Path, tmp_path: Path, wdbc_path: Path
) -> None:
    pipelines = _pipelines(tmp_path, wdbc_path, bc_broken="  params: {C: -> "
                                                          "  parms: {C: ")

    done = _conveyor(embedded_airflow, conveyor_home, "bc_broken",
                     CONVEYOR_PIPELINES=str(pipelines))

    assert done.returncode == 2, done.stdout + done.stderr
    spec = pipelines / "bc_broken.yaml"
    assert done.stderr == (f"error: {spec}:39: model.parms: unknown key 'parms'; "
                           "did you mean 'params'?\n")
    assert "Traceback" not in done.stdout + done.stderr
    # It is the error Airflow recorded for the errors file at its last parse.
    import sqlite3

    with sqlite3.connect(embedded_airflow / "airflow.db") as db:
        (recorded,) = db.execute("SELECT stacktrace FROM import_error").fetchone()
    assert done.stderr.removeprefix("error: ").strip() in recorded


def test_a_failing_task_shows_its_conveyor_error_first_and_where_its_log_is(
    embedded_airflow: Path, conveyor_home: Path, tmp_path: Path, wdbc_path: Path
) -> None:
    """An estimator parameter only the step code can check: the first task fails on it."""
    pipelines = _pipelines(tmp_path, wdbc_path, bc_param="max_iter: 1000} -> "
                                                         "max_iter: 1000, bogus_param: 3}")

    done = _conveyor(embedded_airflow, conveyor_home, "bc_param",
                     CONVEYOR_PIPELINES=str(pipelines))

    assert done.returncode == 2, done.stdout + done.stderr  # bad input, as `conveyor run`
    lines = done.stdout.splitlines()
    assert lines[0].startswith("airflow dags test bc_param")
    assert lines[1].startswith(f"error: ingest failed: {pipelines / 'bc_param.yaml'}:39: "
                               "model.params.bogus_param: LogisticRegression has no parameter "
                               "'bogus_param'")
    assert "Traceback" not in done.stdout
    assert re.search(r"ingest +│ failed", done.stdout)
    assert lines[-1].startswith("failed in ")
    assert "(exit 2)" in lines[-1]

    folder = _log_folder(done.stdout)
    assert folder.is_relative_to(embedded_airflow / "logs")
    ingest = (folder / "ingest.log").read_text()
    assert "[DAG TEST] starting task_id=ingest" in ingest
    assert "conveyor.errors.SpecError" in ingest
    assert (folder / "dags-test.log").stat().st_size > len(ingest)


def test_a_rejected_model_exits_3_with_the_verdict_first(
    embedded_airflow: Path, conveyor_home: Path, wdbc_path: Path
) -> None:
    done = _conveyor(embedded_airflow, conveyor_home, str(SPEC),
                     "--conf", json.dumps({"model.params.C": 0.0001}),
                     WDBC_PATH=str(wdbc_path))

    assert done.returncode == 3, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("gate rejected the model: test_accuracy = ")
    assert "nothing was registered or exported" in lines[1]
    assert re.search(r"gate +│ failed +│ 1 ", done.stdout)
    assert re.search(r"register +│ upstream_failed", done.stdout)
    assert lines[-1].startswith("rejected in ")

    manifest = re.search(r"\(manifest (\S+)\)", lines[1])
    assert manifest, lines[1]
    assert json.loads(Path(urlparse(manifest.group(1)).path).read_text())["status"] == \
        "rejected"
    assert (_log_folder(done.stdout) / "gate.log").is_file()
