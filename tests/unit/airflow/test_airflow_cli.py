"""``conveyor airflow``: what it answers before Airflow starts, and how it reads a DAG run.

The DAG runs themselves (a failing task's error, a rejection's exit 3, the standalone's
processes and sockets) are in ``tests/integration/airflow``. Here: the mistakes that must be
answered in one line and at once, without starting Airflow, and the reading of ``airflow
dags test`` output on recorded samples of its format.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from conveyor.airflow.dags_test import exit_code_of, split_task_logs, task_error
from conveyor.cli import main

REPO = Path(__file__).resolve().parents[3]
SPEC = REPO / "examples" / "breast_cancer" / "pipeline.yaml"
LAB = REPO / "examples" / "iris_lab" / "lab.yaml"


@pytest.fixture
def airflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where ``conveyor airflow`` would put its Airflow: nothing may appear there."""
    home = tmp_path / "airflow"
    monkeypatch.setenv("CONVEYOR_AIRFLOW_HOME", str(home))
    return home


def _pipelines(tmp_path: Path, inbox: Path) -> Path:
    folder = tmp_path / "pipelines"
    (folder / "bc").mkdir(parents=True)
    text = SPEC.read_text().replace("name: breast_cancer", "name: bc_good", 1)
    (folder / "bc" / "pipeline.yaml").write_text(text)
    lab = yaml.safe_load(LAB.read_text())
    lab["watch"].update(folder=str(inbox), min_age_seconds=0)
    (folder / "lab.yaml").write_text(yaml.safe_dump(lab, sort_keys=False))
    (folder / "broken.yaml").write_text("name: [unclosed\n")
    return folder


def test_an_unknown_dag_is_one_line_naming_the_available_dags_exit_2(
    tmp_path: Path, airflow_home: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setenv("CONVEYOR_PIPELINES", str(_pipelines(tmp_path, inbox)))

    started = time.perf_counter()
    code = main(["airflow", "test", "bc_goood"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: no DAG 'bc_goood' in ")
    assert "available DAGs are bc_good, iris_lab_promote, iris_lab_train" in err
    assert "broken.yaml:2: invalid YAML" in err  # the spec that is no DAG, and where
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 2
    assert not (airflow_home / "airflow.db").exists()  # answered without starting Airflow
    assert time.perf_counter() - started < 10


def test_a_missing_pipelines_folder_is_named(
    tmp_path: Path, airflow_home: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONVEYOR_PIPELINES", str(tmp_path / "nowhere"))
    assert main(["airflow", "test", "bc_good"]) == 2
    err = capsys.readouterr().err
    assert f"the pipelines folder {tmp_path / 'nowhere'} does not exist" in err
    assert not (airflow_home / "airflow.db").exists()


@pytest.mark.parametrize(("conf", "says"), [
    ("{model.params.C: 1}", "--conf is not JSON"),
    ("[1, 2]", "--conf must be a JSON object of overrides, got list"),
])
def test_conf_must_be_a_json_object(
    conf: str, says: str, airflow_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["airflow", "test", str(SPEC), "--conf", conf]) == 2
    assert says in capsys.readouterr().err
    assert not (airflow_home / "airflow.db").exists()


def test_a_lab_train_dag_with_an_empty_inbox_stops_at_once_naming_the_inbox(
    tmp_path: Path, airflow_home: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Not the sensor's 5-minute wait: a one-line answer saying what it would wait for."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "notes.txt").write_text("not a config")
    monkeypatch.setenv("CONVEYOR_PIPELINES", str(_pipelines(tmp_path, inbox)))
    monkeypatch.setenv("CONVEYOR_LAB_SENSOR_TIMEOUT", "3")  # bounds the old, waiting code

    started = time.perf_counter()
    code = main(["airflow", "test", "iris_lab_train"])

    err = capsys.readouterr().err
    assert code == 2, err
    assert f"iris_lab_train has nothing to train: no new config file in {inbox.as_uri()}" in err
    assert "pass --wait to let the sensor wait up to 3 s" in err
    assert not (airflow_home / "airflow.db").exists()
    assert time.perf_counter() - started < 10


def test_a_lab_train_dag_with_a_missing_inbox_is_bad_input(
    tmp_path: Path, airflow_home: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONVEYOR_PIPELINES", str(_pipelines(tmp_path, tmp_path / "gone")))
    assert main(["airflow", "test", "iris_lab_train", "--wait"]) == 2
    assert "does not exist" in capsys.readouterr().err


# ------------------------------------------------------- reading `airflow dags test` output

_TS = "2026-11-30T01:23:{:02d}.000000Z"


def _record(second: int, level: str, text: str) -> str:
    return f"{_TS.format(second)} [{level:<9}] {text} [airflow] loc=x.py:1"


def _task(task: str, body: list[str], *, map_index: int = -1, second: int = 0) -> list[str]:
    return [
        _record(second, "info", f"[DAG TEST] starting task_id={task} map_index={map_index}"),
        *body,
        _record(second + 1, "info", f"[DAG TEST] end task task_id={task} map_index={map_index}"),
    ]


def _failure(*exceptions: tuple[str, str]) -> list[str]:
    lines = [_record(5, "error", "Task failed with exception     [task]")]
    for index, (cls, message) in enumerate(exceptions):
        if index:
            lines += ["", "The above exception was the direct cause of the following "
                      "exception:", ""]
        lines += ["Traceback (most recent call last):",
                  '  File "/srv/conveyor/airflow/operators.py", line 168, in execute',
                  "    run = open_run(loaded, run_id=run_id)",
                  f"{cls}: {message}" if message else cls]
    return [*lines, _record(6, "warning", "could not mark the Conveyor run failed"),
            "Traceback (most recent call last):",
            "conveyor.errors.StoreError: a later, unrelated traceback"]


SPEC_ERROR = "/srv/pipelines/bc.yaml:39: model.params.bogus: LogisticRegression has no 'bogus'"
REJECTED = "gate rejected the model: test_f1 = 0.0000, needs >= 0.93; nothing was registered"


def test_the_output_is_cut_into_one_log_per_task_and_each_error_found() -> None:
    output = "\n".join([
        _record(0, "info", "Filling up the DagBag"),
        *_task("ingest", [_record(1, "info", "conveyor run x, step ingest")]),
        *_task("validate", _failure(("conveyor.errors.SpecError", SPEC_ERROR),
                                    ("airflow.sdk.exceptions.AirflowFailException",
                                     SPEC_ERROR)), second=10),
        *_task("train", _failure(("ValueError", "first try")), map_index=0, second=20),
        *_task("train", _failure(("KeyError", "'x'")), map_index=0, second=30),
        *_task("gate", _failure(("conveyor.errors.GateRejectedError", REJECTED),
                                ("airflow.sdk.exceptions.AirflowFailException", REJECTED)),
               second=40),
        _record(50, "info", "DagRun Finished: state=failed"),
    ])

    logs = split_task_logs(output)

    assert list(logs) == ["ingest", "validate", "train[0]", "gate"]
    assert all("DagRun Finished" not in line for lines in logs.values() for line in lines)
    assert task_error("ingest", logs["ingest"]) is None
    spec = task_error("validate", logs["validate"])
    assert spec is not None
    assert (spec.error, spec.message, spec.exit_code) == (
        "conveyor.errors.SpecError", SPEC_ERROR, 2)
    assert spec.line() == f"validate failed: {SPEC_ERROR}"
    train = task_error("train[0]", logs["train[0]"])  # the last attempt's error
    assert train is not None
    assert (train.error, train.message, train.exit_code) == ("KeyError", "'x'", 1)
    assert train.line() == "train[0] failed: KeyError: 'x'"
    gate = task_error("gate", logs["gate"])
    assert gate is not None and gate.rejected
    assert gate.exit_code == 3
    assert gate.line() == REJECTED


@pytest.mark.parametrize(("error", "code"), [
    ("conveyor.errors.GateRejectedError", 3),
    ("conveyor.errors.DataError", 2),
    ("conveyor.errors.SpecError", 2),
    ("conveyor.errors.StoreError", 1),
    ("conveyor.errors.NoSuchError", 1),
    ("airflow.sdk.exceptions.AirflowFailException", 2),
    ("airflow.sdk.exceptions.AirflowTaskTimeout", 1),
    ("ValueError", 1),
])
def test_exit_codes_follow_conveyor_run(error: str, code: int) -> None:
    assert exit_code_of(error) == code


# --------------------------------------------------------------- the embedded Airflow's env


def test_the_environment_bounds_parallelism_and_binds_log_servers(tmp_path: Path) -> None:
    from conveyor.airflow.cli import airflow_environment
    from conveyor.airflow.loopback import LOCAL_SETTINGS

    env = airflow_environment(tmp_path / "airflow", tmp_path, conveyor_home=tmp_path / "c")

    assert env["AIRFLOW__CORE__PARALLELISM"] == str(max(2, len(os.sched_getaffinity(0))))
    settings = tmp_path / "airflow" / "config" / "airflow_local_settings.py"
    assert settings.read_text() == LOCAL_SETTINGS


def test_someone_elses_local_settings_are_never_overwritten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from conveyor.airflow.cli import airflow_environment

    settings = tmp_path / "airflow" / "config" / "airflow_local_settings.py"
    settings.parent.mkdir(parents=True)
    settings.write_text("POLICY = 'mine'\n")

    airflow_environment(tmp_path / "airflow", tmp_path, conveyor_home=tmp_path / "c")

    assert settings.read_text() == "POLICY = 'mine'\n"
    assert "is not Conveyor's" in caplog.text


def test_the_log_server_hook_makes_airflow_serve_logs_bind_loopback(tmp_path: Path) -> None:
    """Airflow's serve_logs passes ``host=""`` (every interface); the hook replaces it.

    In a fresh interpreter (serve_logs renames its process): uvicorn.run is replaced by a spy.
    """
    pytest.importorskip("airflow")
    script = textwrap.dedent("""
        import json, sys, uvicorn
        from conveyor.airflow.loopback import bind_log_servers
        bind_log_servers("127.0.0.1")
        seen = {}
        uvicorn.run = lambda app, **kwargs: seen.update(kwargs)
        from airflow.utils.serve_logs import serve_logs
        serve_logs(port=12345)
        print(json.dumps(seen))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = yaml.safe_load(done.stdout.strip().splitlines()[-1])
    assert seen["host"] == "127.0.0.1"
    assert seen["port"] == 12345
