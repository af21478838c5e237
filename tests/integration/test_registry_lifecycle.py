"""A pipeline's registered model from the user's side: one version per trained model, and
``conveyor promote`` / ``rollback`` on it (issue 8, items 3, 4 and 12).

The tests share one CONVEYOR_HOME (the module fixture runs the breast-cancer pipeline twice:
a first run and an identical, fully cached one); later tests add runs of their own and look
earlier ones up by run id.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conveyor.cli import main

SPEC = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"
REGISTERED = "breast_cancer_classifier"


@dataclass
class Result:
    code: int
    out: str
    err: str

    run_id: str = ""  # the id the test gave with --run-id: nothing is parsed from stdout

    def line(self, label: str) -> str:
        found = [ln for ln in self.out.splitlines() if ln.startswith(label)]
        assert len(found) == 1, self.out
        return found[0]


def cli(*args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Result(code, out.getvalue(), err.getvalue())


def run_as(run_id: str, *args: str) -> Result:
    """``conveyor run SPEC --run-id RUN_ID ...``: a new run under a name the test chose."""
    result = replace(cli("run", str(SPEC), "--run-id", run_id, *args), run_id=run_id)
    if result.code == 0:
        assert re.search(rf"^run\s+{re.escape(run_id)}\s+\(", result.out, re.M), result.out  # named
    return result


@dataclass
class Shared:
    home: Path
    first: Result
    cached: Result

    def manifest(self, run_id: str) -> dict[str, Any]:
        path = self.home / "artifacts" / "breast_cancer" / run_id / "manifest.json"
        return json.loads(path.read_text())


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, wdbc_path: Path,
           seed_mlflow: Callable[[Path], Path]) -> Shared:
    home = tmp_path_factory.mktemp("lifecycle") / "home"
    seed_mlflow(home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVEYOR_HOME", str(home))
        mp.setenv("WDBC_PATH", str(wdbc_path))
        # an in-process run of another module leaves MLflow's URI in the environment
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CONVEYOR_EXPORT_URI"):
            mp.delenv(name, raising=False)
        first = run_as("lifecycle-first")
        cached = run_as("lifecycle-cached")
    assert first.code == 0, first.err
    assert cached.code == 0, cached.err
    return Shared(home, first, cached)


@pytest.fixture()
def home(shared: Shared, monkeypatch: pytest.MonkeyPatch, wdbc_path: Path) -> Path:
    monkeypatch.setenv("CONVEYOR_HOME", str(shared.home))
    monkeypatch.setenv("WDBC_PATH", str(wdbc_path))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    return shared.home


def client(home: Path) -> Any:
    from mlflow import MlflowClient

    db = f"sqlite:///{home}/mlflow.db"
    return MlflowClient(tracking_uri=db, registry_uri=db)


def versions(home: Path) -> dict[str, Any]:
    found = client(home).search_model_versions(f"name = '{REGISTERED}'")
    return {str(v.version): v for v in sorted(found, key=lambda v: int(v.version))}


def run_tags(home: Path, run_id: str) -> dict[str, str]:
    c = client(home)
    experiment = c.get_experiment_by_name("breast_cancer")
    (run,) = c.search_runs([experiment.experiment_id],
                           filter_string=f"tags.`conveyor.run_id` = '{run_id}'")
    return dict(run.data.tags)


# --------------------------------------------------------------------------- item 4


def test_a_fully_cached_run_reuses_the_version_of_the_same_model(shared: Shared,
                                                                 home: Path) -> None:
    assert shared.first.line("registered") == f"registered models:/{REGISTERED}/1"
    assert "cached (run" in shared.cached.out
    assert shared.cached.line("registered").startswith(f"registered models:/{REGISTERED}/1 ")
    assert list(versions(home)) == ["1"]
    info = shared.manifest(shared.cached.run_id)["steps"]["register"]["info"]
    assert info["version"] == "1" and info["created"] is False
    assert info["registered_by"] == shared.first.run_id
    assert run_tags(home, shared.cached.run_id)["conveyor.registered_version"] == "1"


def test_repeated_cached_runs_add_no_version(shared: Shared, home: Path) -> None:
    for _ in range(2):
        again = cli("run", str(SPEC), "--quiet")
        assert again.code == 0, again.err
    assert list(versions(home)) == ["1"]


def test_a_cached_run_that_fails_keeps_the_version_it_reused(shared: Shared,
                                                             home: Path) -> None:
    run_id = "20261130T000001-cachedfail"
    blocker = home / "artifacts" / "breast_cancer" / run_id / "manifest.json"
    blocker.mkdir(parents=True)
    (blocker / "keep").write_text("a folder where the manifest goes: the run cannot finish")
    failed = cli("run", str(SPEC), "--run-id", run_id)
    assert failed.code == 1 and "manifest.json" in failed.err, failed.out + failed.err
    tags = run_tags(home, run_id)
    assert tags["conveyor.status"] == "failed"
    assert tags["conveyor.registered_version"] == "1"  # it reused v1 ...
    assert "conveyor.withdrawn_version" not in tags  # ... and did not take it away (ADR 0010)
    assert "1" in versions(home)


def test_a_retrained_model_in_the_same_run_gets_a_new_version(shared: Shared,
                                                              home: Path) -> None:
    run_id = shared.first.run_id
    before = versions(home)
    old_sha = shared.manifest(run_id)["artifacts"]["train/model"]["sha256"]
    again = cli("run", str(SPEC), "--from", "train", "--run-id", run_id)
    assert again.code == 0, again.err
    assert "(already registered)" not in again.out
    manifest = shared.manifest(run_id)
    new_sha = manifest["artifacts"]["train/model"]["sha256"]
    assert new_sha != old_sha  # retrained: another model
    new = str(int(max(before, key=int)) + 1)
    assert again.line("registered") == f"registered models:/{REGISTERED}/{new}"
    after = versions(home)
    assert set(after) == {*before, new}
    assert after[new].tags["conveyor.model_sha256"] == new_sha
    assert after["1"].tags["conveyor.model_sha256"] == old_sha  # v1 still the first model
    exported = json.loads(Path(manifest["artifacts"]["export/manifest"]["uri"]
                               .removeprefix("file://")).read_text())
    assert exported["registered"] == f"models:/{REGISTERED}/{new}"
    assert exported["artifacts"]["model"]["sha256"] == new_sha


# --------------------------------------------------------------------------- item 3


def test_every_version_carries_what_promotion_needs(shared: Shared, home: Path) -> None:
    from conveyor.tracking.registry import (
        DIGEST_TAG,
        HOLDOUT_SHA_TAG,
        HOLDOUT_TARGET_TAG,
        HOLDOUT_URI_TAG,
    )

    found = versions(home)
    assert found
    for number, version in found.items():
        tags = version.tags
        assert len(tags[DIGEST_TAG]) == 64, number
        assert tags[HOLDOUT_TARGET_TAG] == "diagnosis"
        assert float(tags["conveyor.metric.test_f1"]) > 0.9
        path = Path(tags[HOLDOUT_URI_TAG].removeprefix("file://"))
        assert path.parent == home / "artifacts" / "breast_cancer" / "_holdout"
        import hashlib

        assert hashlib.sha256(path.read_bytes()).hexdigest() == tags[HOLDOUT_SHA_TAG]
    holdout = pd.read_parquet(path)
    assert len(holdout) == 114 and "diagnosis" in holdout and "id" not in holdout
    assert len(holdout.columns) == 31


def test_promote_and_rollback_a_model_registered_by_conveyor_run(shared: Shared,
                                                                 home: Path) -> None:
    planned = cli("promote", "--spec", str(SPEC), "--dry-run")  # the model the spec names
    assert planned.code == 0, planned.out + planned.err
    assert f"{REGISTERED}: candidates on the hold-out set" in planned.out
    assert "promote (dry run)" in planned.out
    first = cli("promote", REGISTERED)
    assert first.code == 0, first.out + first.err
    assert "promoted" in first.out and "Traceback" not in first.err
    production = str(client(home).get_registered_model(REGISTERED).aliases["production"])
    better = cli("run", str(SPEC), "model.params.C=0.3", "--quiet")
    assert better.code == 0, better.err
    newest = max(versions(home), key=int)
    second = cli("promote", REGISTERED, "--min-delta", "0.005")
    assert second.code == 0, second.out + second.err
    assert f"production v{production} → v{newest}" in second.out, second.out
    back = cli("rollback", REGISTERED)
    assert back.code == 0, back.out + back.err
    assert f"production moved back from v{newest} to v{production}" in back.out
    aliases = client(home).get_registered_model(REGISTERED).aliases
    assert str(aliases["production"]) == production


def test_promote_by_a_metric_of_the_other_task_is_bad_input(shared: Shared,
                                                             home: Path) -> None:
    """``--metric rmse`` on a classifier: every version was "refused" (predictions are not
    numbers), a decision record was written and the command exited 0."""
    promotions = home / "artifacts" / "_registry" / REGISTERED / "promotions"
    before = sorted(promotions.glob("*.json")) if promotions.exists() else []
    wrong = cli("promote", REGISTERED, "--metric", "rmse")
    assert wrong.code == 2, wrong.out + wrong.err
    [line] = wrong.err.strip().splitlines()
    assert line == (f"error: rmse is a regression metric, but {REGISTERED} is a "
                    "classification model; use accuracy, f1, precision or recall"), line
    after = sorted(promotions.glob("*.json")) if promotions.exists() else []
    assert after == before  # nothing decided, nothing recorded
    import conveyor

    with pytest.raises(conveyor.BadInputError, match="rmse is a regression metric"):
        conveyor.promote(REGISTERED, metric="rmse", dry_run=True)
    # a minimum of the other task, with the default metric: it blamed "metric f1", which
    # the user had not given
    floor = cli("promote", REGISTERED, "--minimum", "rmse=60")
    assert floor.code == 2, floor.out + floor.err
    assert floor.err.strip() == (f"error: minimum rmse is a regression metric, but "
                                 f"{REGISTERED} is a classification model; use accuracy, f1, "
                                 "precision or recall"), floor.err


# --------------------------------------------------------------------------- item 12


def test_a_cached_run_names_its_own_report(shared: Shared, home: Path) -> None:
    run_id = shared.cached.run_id
    folder = home / "artifacts" / "breast_cancer" / run_id
    report = folder / "gate" / "report.html"  # the gate renders it, never cached (ADR 0041)
    assert shared.cached.line("report") == f"report     {report.as_uri()}"
    manifest = shared.manifest(run_id)
    assert manifest["artifacts"]["gate/report"]["uri"] == report.as_uri()
    assert manifest["steps"]["evaluate"]["status"] == "cached"
    page = report.read_text()
    assert f"run {run_id}" in page and f"run {shared.first.run_id}" not in page
    # the plots evaluate made in the first run: confusion, ROC, PR, calibration, importance
    assert page.count("data:image/png;base64,") == 5
    assert "test_f1" in page or "f1" in page
