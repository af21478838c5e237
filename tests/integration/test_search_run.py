"""A ``models:`` spec with an Optuna search through ``conveyor run``, on real MLflow (SQLite).

One run, then its train step again (``--from train``): every trial is a child run of the
pipeline's run with its params and CV scores, the parent has the best params and the search
summary, the search record is in the run folder, and a repeated train attempt replaces the
children instead of adding a second set (ADR 0040).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from conveyor.cli import main

pytestmark = pytest.mark.integration

SPEC = """\
name: searched
data: {source: sklearn, name: breast_cancer}
schema: {target: diagnosis, positive_label: M}
models:
  - name: logistic
    estimator: logistic_regression
    params: {max_iter: 2000}
    space:
      C: {low: 0.001, high: 10.0, log: true}
  - name: bayes
    estimator: naive_bayes
    space:
      var_smoothing: {low: 1.0e-12, high: 1.0e-3, log: true}
tune: {method: optuna, metric: log_loss, cv: 3, n_trials: 6}
evaluate: {metrics: [accuracy, f1, log_loss]}
"""


def cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(args))
    return code, out.getvalue()


def test_trials_are_child_runs_and_the_parent_has_the_best(
        tmp_path: Path, conveyor_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    spec = tmp_path / "searched.yaml"
    spec.write_text(SPEC)
    code, out = cli("run", str(spec), "--run-id", "search-1")
    assert code == 0, out
    assert "best of 6 trials" in out

    record = json.loads((conveyor_home / "artifacts" / "searched" / "search-1" / "train" /
                         "search.json").read_text())
    assert (record["method"], record["direction"], record["n_trials"]) == \
        ("optuna", "minimize", 6)
    assert [c["trials"] for c in record["candidates"]] == [3, 3]
    best = record["best"]
    assert best["cv_mean"] == min(c["cv_mean"] for c in record["candidates"])

    client = MlflowClient(f"sqlite:///{conveyor_home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("searched").experiment_id

    def runs() -> tuple[object, list[object]]:
        found = client.search_runs([experiment], max_results=100)
        (parent,) = [r for r in found if r.data.tags.get("conveyor.run_id") == "search-1"]
        children = [r for r in found
                    if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        return parent, children

    parent, children = runs()
    assert sorted(int(r.data.tags["conveyor.trial"]) for r in children) == list(range(6))
    for child in children:
        trial = record["trials"][int(child.data.tags["conveyor.trial"])]
        assert child.data.params["candidate"] == trial["candidate"]
        name = "C" if trial["candidate"] == "logistic" else "var_smoothing"
        assert float(child.data.params[name]) == pytest.approx(trial["params"][name])
        assert child.data.tags["conveyor.trial.state"] == trial["state"]
        if trial["state"] == "complete":
            assert child.data.metrics["cv_log_loss_mean"] == pytest.approx(trial["cv_mean"])
            assert "cv_log_loss_std" in child.data.metrics
            assert child.info.status == "FINISHED"
    params = parent.data.params
    assert params["best.candidate"] == best["candidate"]
    for key, value in best["params"].items():
        assert float(params[f"best.{key}"]) == pytest.approx(value)
    assert parent.data.tags["conveyor.search.best_candidate"] == best["candidate"]
    assert parent.data.metrics["cv_best_log_loss"] == pytest.approx(best["cv_mean"])
    for row in record["candidates"]:
        assert parent.data.metrics[f"candidate.{row['name']}.cv_log_loss"] == \
            pytest.approx(row["cv_mean"])
    artifacts = {f.path for f in client.list_artifacts(parent.info.run_id, "train")}
    assert {"train/search.json", "train/candidates.json", "train/search_history.png"} <= \
        artifacts

    code, out = cli("run", str(spec), "--run-id", "search-1", "--from", "train", "--no-cache")
    assert code == 0, out
    again, children = runs()
    assert again.info.run_id == parent.info.run_id
    assert len(children) == 6  # the earlier attempt's trials were replaced, not kept beside

    # a tracking server gets the same children through the public API, trial by trial
    from conveyor.tracking import Tracker, log_search, trials

    record = json.loads((conveyor_home / "artifacts" / "searched" / "search-1" / "train" /
                         "search.json").read_text())  # the second attempt's
    tracker = Tracker(None, "searched")
    tracker.attach("search-2", tags={})
    monkeypatch.setattr(trials, "_bulk", lambda *args: None)
    ids = log_search(tracker, record)
    (public,) = [r for r in client.search_runs([experiment], max_results=100)
                 if r.info.run_id == ids[0]]
    (bulk,) = [r for r in children if r.data.tags["conveyor.trial"] == "0"]
    assert public.data.params == bulk.data.params
    assert public.data.metrics == bulk.data.metrics
    assert (public.info.status, public.info.run_name) == (bulk.info.status, bulk.info.run_name)
    drop = {"mlflow.parentRunId", "mlflow.user"}
    assert {k: v for k, v in public.data.tags.items() if k not in drop} == \
        {k: v for k, v in bulk.data.tags.items() if k not in drop}


def test_the_tuned_example_gates_against_the_champion(
        conveyor_home: Path, monkeypatch: pytest.MonkeyPatch, wdbc_path: Path) -> None:
    """examples/breast_cancer/tuned.yaml is issue 11's scenario: candidates, Optuna, CV,
    the report and the champion gate; it had the absolute gate only."""
    monkeypatch.setenv("WDBC_PATH", str(wdbc_path))
    spec = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "tuned.yaml"
    code, out = cli("run", str(spec), "tune.n_trials=2", "--run-id", "tuned-1")
    assert code == 0, out
    assert "no champion" in out and "aliases    challenger, production" in out, out
    # the same spec again: every step up to evaluate cached, the candidate is the champion
    code, again = cli("run", str(spec), "tune.n_trials=2", "--run-id", "tuned-2")
    assert code == 0, again
    assert "registered models:/breast_cancer_tuned/1 (already registered)" in again, again
    verdict = json.loads((conveyor_home / "artifacts" / "breast_cancer_tuned" / "tuned-2" /
                          "gate" / "verdict.json").read_text())
    assert verdict["passed"] and verdict["champion"]["version"] == "1"
