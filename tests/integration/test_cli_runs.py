"""``conveyor runs`` and ``conveyor show`` as a user reads them (issue 8, item 12).

One home for the module: a complete run under a custom id, a partial one, a failed one, one
with a 90-character id, and a live run that is then killed. The listing is ordered by time,
never cuts an id, says why each incomplete run is incomplete, and has a ``--json`` form;
``show`` gives one run's steps, metrics, report and export.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conveyor.cli import main

pytestmark = pytest.mark.integration

SPEC = """\
name: tiny
data: {source: sklearn, name: iris}
schema: {target: target}
model: {estimator: logistic_regression, params: {max_iter: 500}}
"""
LONG_ID = "a-very-long-run-id-" + "x" * 71  # 90 characters
LIVE = """\
import sys, time
from conveyor.runners import LocalRunner
from conveyor.spec import load_spec

def hold(kind, step, record):
    if kind == "start" and step == "split":
        time.sleep(600)

LocalRunner(load_spec(sys.argv[1]), on_event=hold).run("live-run")
"""


@dataclass
class Result:
    code: int
    out: str
    err: str


def cli(*args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


@dataclass
class Shared:
    home: Path
    spec: Path
    partial: str
    failed: str


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    root = tmp_path_factory.mktemp("runs")
    spec = root / "tiny.yaml"
    spec.write_text(SPEC)
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVEYOR_HOME", str(home))
        first = cli("run", str(spec), "--run-id", "zz-custom-first")
        assert first.code == 0, first.err
        partial = cli("run", str(spec), "--until", "split")
        assert partial.code == 0, partial.err
        failed = cli("run", str(spec), "schema.target=nope")
        assert failed.code == 2, failed.err
        long = cli("run", str(spec), "--until", "ingest", "--run-id", LONG_ID)
        assert long.code == 0, long.err
    ids = [p.name for p in (home / "artifacts" / "tiny").iterdir()
           if not p.name.startswith("_") and p.name not in ("zz-custom-first", LONG_ID)]
    by_status = {json.loads((home / "artifacts" / "tiny" / i / "_status.json").read_text())
                 ["status"]: i for i in ids}
    return Shared(home, spec, by_status["partial"], by_status["failed"])


@pytest.fixture()
def home(shared: Shared, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONVEYOR_HOME", str(shared.home))
    return shared.home


def listing(*args: str) -> list[dict[str, Any]]:
    result = cli("runs", "--json", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_runs_are_newest_first_by_time_and_say_why(shared: Shared, home: Path) -> None:
    runs = listing()
    order = [r["run_id"] for r in runs]
    assert order == [LONG_ID, shared.failed, shared.partial, "zz-custom-first"]
    by_id = {r["run_id"]: r for r in runs}
    assert by_id["zz-custom-first"]["status"] == "ok"
    assert by_id["zz-custom-first"]["metrics"]["test_accuracy"] > 0.8
    assert by_id[shared.partial]["status"] == "partial"
    assert by_id[shared.partial]["reason"] == "stopped as asked after split"
    assert by_id[shared.failed]["status"] == "failed"
    assert "column 'nope' (schema.target) is missing" in by_id[shared.failed]["reason"]
    assert [r["run_id"] for r in listing("--limit", "2")] == order[:2]
    assert [r["run_id"] for r in listing(str(shared.spec))] == order


def test_the_table_never_cuts_an_id(shared: Shared, home: Path) -> None:
    result = cli("runs")
    assert result.code == 0, result.err
    assert LONG_ID in result.out
    rows = [line for line in result.out.splitlines() if shared.partial in line]
    assert len(rows) == 1 and "partial" in rows[0] and "stopped as asked" in rows[0]
    assert result.out.index(shared.failed) < result.out.index("zz-custom-first")


def test_show_a_complete_run(shared: Shared, home: Path) -> None:
    result = cli("show", "zz-custom-first")
    assert result.code == 0, result.err
    assert result.out.startswith("run zz-custom-first of tiny · ok")
    for step in ("ingest", "validate", "split", "train", "evaluate", "gate", "export"):
        assert any(line.split("│")[1].strip() == step for line in result.out.splitlines()
                   if line.count("│") >= 4), step
    assert "registry.name is not set" in result.out  # register was skipped, and why
    assert "test_accuracy" in result.out
    assert "report.html" in result.out and "/exports/tiny/zz-custom-first/model" in result.out

    data = json.loads(cli("show", "zz-custom-first", str(shared.spec), "--json").out)
    assert data["status"] == "ok" and data["pipeline"] == "tiny"
    steps = {step["step"]: step for step in data["steps"]}
    assert list(steps) == ["ingest", "validate", "split", "train", "evaluate", "gate",
                           "register", "export"]
    assert all(step["duration"] is not None for step in steps.values())
    assert steps["register"]["status"] == "skipped"
    assert data["report"].endswith("/gate/report.html")
    assert data["export"]["model"].endswith("/exports/tiny/zz-custom-first/model")
    assert data["metrics"]["test_accuracy"] > 0.8
    assert data["manifest"].endswith("/zz-custom-first/manifest.json")


def test_show_an_incomplete_run_and_an_unknown_one(shared: Shared, home: Path) -> None:
    data = json.loads(cli("show", shared.partial, "--json").out)
    assert data["status"] == "partial"
    assert [step["step"] for step in data["steps"]] == ["ingest", "validate", "split"]
    assert data["manifest"] is None
    missing = cli("show", "nosuchrun")
    assert missing.code == 2
    assert missing.err.strip() == (f"error: no run nosuchrun of any pipeline under "
                                   f"file://{home}/artifacts; `conveyor runs` lists them")


def test_a_live_run_is_running_until_its_process_dies(shared: Shared, home: Path,
                                                      tmp_path: Path) -> None:
    script = tmp_path / "live.py"
    script.write_text(LIVE)
    status = home / "artifacts" / "tiny" / "live-run" / "_status.json"
    process = subprocess.Popen([sys.executable, str(script), str(shared.spec)],
                               env={**os.environ, "CONVEYOR_HOME": str(home)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (home / "artifacts" / "tiny" / "live-run" / "validate").exists():
            assert process.poll() is None, "the live run ended early"
            assert time.monotonic() < deadline, "the live run never reached split"
            time.sleep(0.5)
        assert json.loads(status.read_text())["pid"] == process.pid
        live = {r["run_id"]: r for r in listing()}["live-run"]
        assert live["status"] == "running", live
        process.send_signal(signal.SIGKILL)
        time.sleep(1)  # killed, not yet reaped by its parent (this test): a zombie
        dead = {r["run_id"]: r for r in listing()}["live-run"]
        assert dead["status"] == "interrupted"
        assert dead["reason"] == f"its process {process.pid} is gone; stopped after validate"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert {r["run_id"]: r for r in listing()}["live-run"]["status"] == "interrupted"
