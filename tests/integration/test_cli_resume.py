"""Resuming a run from the command line, as a user does it (issue 8, item 9).

Overrides after an option, the ``--until`` hint copied as printed, a spec-hash mismatch that
names the keys, the data path spelled three ways (``make demo``), and a ``--run-id`` that does
not exist. The tests share one CONVEYOR_HOME (an MLflow database migration costs ~10 s) and
look their runs up by id; each run stops after ``split`` unless it has to go further.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conveyor.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "breast_cancer" / "pipeline.yaml"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def hint(self) -> list[str]:
        """The continuation command printed after ``--until``, split as a shell would."""
        lines = self.out.splitlines()
        at = next(i for i, line in enumerate(lines) if line.endswith("continue with:"))
        return shlex.split(lines[at + 1])


def cli(*args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory,
                seed_mlflow: Callable[[Path], Path]) -> Path:
    home = tmp_path_factory.mktemp("resume") / "home"
    seed_mlflow(home)
    return home


@pytest.fixture()
def home(module_home: Path, monkeypatch: pytest.MonkeyPatch, wdbc_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("CONVEYOR_HOME", str(module_home))
    monkeypatch.setenv("WDBC_PATH", str(wdbc_path))
    yield module_home


def run_ids() -> set[str]:
    """The ids ``conveyor runs SPEC --json`` lists: how a test learns an id it did not choose."""
    listed = cli("runs", str(SPEC), "--json", "--limit", "1000")
    assert listed.code == 0, listed.err
    return {run["run_id"] for run in json.loads(listed.out)}


def run_dir(home: Path, run_id: str) -> Path:
    return home / "artifacts" / "breast_cancer" / run_id


def mlflow_runs(home: Path, run_id: str) -> list[Any]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db")
    experiment = client.get_experiment_by_name("breast_cancer")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.`conveyor.run_id` = '{run_id}'")


def test_overrides_after_an_option_are_applied(home: Path) -> None:
    run_id = "overrides-after-an-option"
    result = cli("run", str(SPEC), "--run-id", run_id, "--until", "split", "model.params.C=0.3",
                 "split.seed=7")
    assert result.code == 0, result.err
    assert "\r" not in result.out and "running" not in result.out  # no progress off a terminal
    meta = json.loads((run_dir(home, run_id) / "_run.json").read_text())
    assert meta["overrides"] == ["model.params.C=0.3", "split.seed=7"]
    assert meta["spec"]["model"]["params"]["C"] == 0.3
    # an unknown option is still argparse's usage error, not an override
    typo = cli("run", str(SPEC), "--untl", "split")
    assert typo.code == 2 and "unrecognized arguments: --untl" in typo.err


def test_until_hint_works_when_copied(home: Path, wdbc_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``make demo`` spells the data path absolute; the copied hint runs without WDBC_PATH."""
    before = run_ids()
    partial = cli("run", str(SPEC), "model.params.C=0.3", "--until", "split")
    assert partial.code == 0, partial.err
    (run_id,) = run_ids() - before  # the run it made, as `conveyor runs` lists it
    words = partial.hint
    assert words[0] == "conveyor" and words[1:3] == ["run", str(SPEC)], words
    assert "model.params.C=0.3" in words
    assert words[-4:] == ["--from", "train", "--run-id", run_id]

    monkeypatch.delenv("WDBC_PATH")  # the spec's own default: the same file, spelled relative
    done = cli(*words[1:])
    assert done.code == 0, done.err
    manifest = json.loads((run_dir(home, run_id) / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    runs = mlflow_runs(home, run_id)
    assert len(runs) == 1 and runs[0].data.params["model.params.C"] == "0.3"


def test_the_data_path_spelled_another_way_resumes(home: Path, wdbc_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = "data-path-detour"
    partial = cli("run", str(SPEC), "--run-id", run_id, "--until", "validate")
    assert partial.code == 0, partial.err
    detour = wdbc_path.parent / ".." / wdbc_path.parent.name / wdbc_path.name
    monkeypatch.setenv("WDBC_PATH", str(detour))
    again = cli("run", str(SPEC), "--step", "split", "--run-id", run_id)
    assert again.code == 0, again.err
    assert (run_dir(home, run_id) / "split" / "_record.json").is_file()


def test_spec_mismatch_names_the_keys_that_differ(home: Path) -> None:
    run_id = "spec-mismatch"
    partial = cli("run", str(SPEC), "--run-id", run_id, "--until", "split", "--profile",
                  "sklearn")
    assert partial.code == 0, partial.err
    result = cli("run", str(SPEC), "--from", "train", "--run-id", run_id,
                 "model.params.C=0.5", "split.seed=3")
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert f"run {run_id} was started with another spec" in lines[0]
    assert "model.params.C: 1.0 → 0.5" in lines[0]
    assert "split.seed: 42 → 3" in lines[0]
    assert "data.source: sklearn → file" in lines[0]
    assert "--profile sklearn" in lines[0]
    assert not (run_dir(home, run_id) / "train").exists()


def test_unknown_run_id_creates_nothing(home: Path) -> None:
    # a real run first, so that the MLflow experiment exists and could hold a phantom run
    assert cli("run", str(SPEC), "--until", "ingest").code == 0
    result = cli("run", str(SPEC), "--run-id", "doesnotexist", "--from", "train")
    assert result.code == 2
    assert result.err.strip() == (
        f"error: no run doesnotexist of pipeline breast_cancer under "
        f"file://{home}/artifacts; `conveyor runs {SPEC}` lists them")
    assert not run_dir(home, "doesnotexist").exists()
    assert mlflow_runs(home, "doesnotexist") == []


def test_a_missing_earlier_step_leaves_the_run_as_it_was(home: Path) -> None:
    run_id = "missing-earlier-step"
    partial = cli("run", str(SPEC), "--run-id", run_id, "--until", "split")
    assert partial.code == 0, partial.err
    (before,) = mlflow_runs(home, run_id)
    assert before.info.status == "FINISHED"
    gap = cli("run", str(SPEC), "--step", "gate", "--run-id", run_id)
    assert gap.code == 2 and f"run {run_id} has no result of step train" in gap.err
    (after,) = mlflow_runs(home, run_id)
    assert after.info.status == "FINISHED"
    assert after.data.tags["conveyor.status"] == "partial"


def test_ctrl_c_marks_the_run_interrupted(home: Path) -> None:
    from conveyor.runners import LocalRunner
    from conveyor.spec import load_spec

    def stop(kind: str, step: str, record: Any) -> None:
        if kind == "start" and step == "split":
            raise KeyboardInterrupt

    runner = LocalRunner(load_spec(SPEC), on_event=stop)
    with pytest.raises(KeyboardInterrupt):
        runner.run("interrupted-run")
    (run,) = mlflow_runs(home, "interrupted-run")
    assert run.info.status == "KILLED"
    assert run.data.tags["conveyor.status"] == "interrupted"
