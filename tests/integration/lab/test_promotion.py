"""Promotion and rollback on real MLflow: the gate, refused versions, compare-and-set, races."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# A spawned child imports this module again: its own folder first, so that ``conftest`` is
# the lab's (under pytest-xdist another test folder's conftest can come first on sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import drop, make_lab
from conveyor.cli import main
from conveyor.errors import TrackingError
from conveyor.lab import Lab, load_lab, process_inbox, promote_lab, rollback_lab
from conveyor.promotion import (
    PREVIOUS,
    PRODUCTION,
    RegistryLock,
    commit_promotion,
    load_holdout,
    plan_promotion,
)
from conveyor.tracking import Tracker

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "iris_lab" / "lab.yaml"
# macro F1 on the lab's hold-out set (Iris, test_size 0.3, seed 42, standard scaling)
DUMMY = "name: dummy\nclassificator: sklearn.dummy.DummyClassifier\n"  # ~0.17
KNN = "name: knn\nmodel: knn\nparams: {n_neighbors: 5}\n"  # 0.9095
TREE = "name: tree\nmodel: decision_tree\nparams: {max_depth: 3, random_state: 0}\n"  # 0.9333
SVC = "name: svc\nmodel: svc\n"  # 0.9333, a tie with TREE
MODEL = "iris_classifier"


def aliases(name: str = MODEL) -> dict[str, str]:
    client = Tracker(None, "iris_lab").client
    return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}


def version_folder(version: str) -> Path:
    uri = Tracker(None, "iris_lab").client.get_model_version_download_uri(MODEL, version)
    return Path(uri.removeprefix("file://"))


def test_the_example_lab_promotes_its_best_version_for_any_client(
        lab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(EXAMPLE.parent / "configs", inbox)
    for path in inbox.iterdir():
        drop(inbox, path.name, path.read_bytes())
    monkeypatch.setenv("IRIS_LAB_INBOX", str(inbox))
    lab = load_lab(EXAMPLE)
    report = process_inbox(lab)
    assert len(report.versions) == 9 and not report.rejected and not report.failed

    decision = promote_lab(lab)

    assert decision.action == "promoted" and decision.production_before is None
    by_version = {c.version: c for c in decision.candidates}
    assert len(by_version) == 9
    below = [c.config for c in decision.candidates if c.status == "below_minimum"]
    assert below == ["logreg-strong-l2"]  # f1 0.8443 < the spec's minimum 0.85
    best = max(c.scores["f1"] for c in decision.candidates if c.status == "scored")
    assert by_version[decision.chosen].scores["f1"] == best
    assert aliases() == {PRODUCTION: decision.chosen}
    record = json.loads(Path(decision.record_uri.removeprefix("file://")).read_text())
    assert record["action"] == "promoted" and record["chosen"] == decision.chosen
    assert len(record["candidates"]) == 9 and record["holdout_sha256"]
    tags = Tracker(None, "iris_lab").client.get_model_version(MODEL, decision.chosen).tags
    assert tags["conveyor.promotion.decision"] == decision.decision_id
    assert "no production version yet" in tags["conveyor.promotion.reason"]

    # a standard MLflow client in a fresh process loads production and predicts on Iris
    code = (
        "import mlflow, sklearn.datasets as d\n"
        f"mlflow.set_tracking_uri('sqlite:///{lab_home / 'mlflow.db'}')\n"
        "m = mlflow.pyfunc.load_model('models:/iris_classifier@production')\n"
        "X = d.load_iris(as_frame=True).data\n"
        "X.columns = [c.replace(' (cm)', '').replace(' ', '_') for c in X.columns]\n"
        "p = m.predict(X)\n"
        "print(len(p), (p == d.load_iris().target_names[d.load_iris().target]).mean())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    rows, accuracy = done.stdout.split()
    assert rows == "150" and float(accuracy) > 0.9


def test_the_gate_min_delta_ties_and_rollback(lab: Lab, register: Callable,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    register(KNN)
    assert promote_lab(lab).action == "promoted"  # v1, the only one
    first = rollback_lab(lab)
    assert first.action == "none" and "v1 is the first version in production" in first.reason
    register(TREE)  # v2 beats v1 by 0.0238
    strict = make_lab(Path(lab.inbox_uri.removeprefix("file://")), min_delta=0.05)
    kept = promote_lab(strict)
    assert kept.action == "kept" and "less than min_delta 0.05" in kept.reason
    assert aliases() == {PRODUCTION: "1"}
    # v2 was considered: without --all it is no longer a candidate
    assert [c.version for c in promote_lab(lab, dry_run=True).candidates] == ["1"]
    moved = promote_lab(make_lab(Path(lab.inbox_uri.removeprefix("file://")), min_delta=0.01),
                        include_all=True)
    assert moved.action == "promoted" and moved.chosen == "2"
    assert aliases() == {PRODUCTION: "2", PREVIOUS: "1"}
    register(SVC)  # v3 ties v2
    tie = promote_lab(lab)
    assert tie.action == "kept" and "ties production v2" in tie.reason
    assert aliases() == {PRODUCTION: "2", PREVIOUS: "1"}

    rolled = rollback_lab(lab)
    assert rolled.action == "rolled_back" and aliases() == {PRODUCTION: "1"}
    assert Path(rolled.record_uri.removeprefix("file://")).is_file()
    again = rollback_lab(lab)  # idempotent: nothing to do, and it says so
    assert again.action == "none" and "nothing to roll back" in again.reason
    assert "a rollback already moved production back to it" in again.reason
    assert aliases() == {PRODUCTION: "1"}
    assert main(["rollback", MODEL]) == 0
    assert "nothing to roll back" in capsys.readouterr().out

    assert main(["promote", MODEL, "--all", "--dry-run", "--min-delta", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "promote (dry run)" in out and "v3 ←" in out and "0.9095" in out
    assert aliases() == {PRODUCTION: "1"}
    assert main(["promote", "no_such_model"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["promote", MODEL, "--minimum", "auc=0.9"]) == 2


def test_versions_with_missing_or_altered_artifacts_are_refused(lab: Lab,
                                                                register: Callable) -> None:
    register(TREE)  # v1: its artifacts will be deleted
    register(SVC)  # v2: one of its files will be altered
    register(KNN)  # v3: intact
    register(DUMMY)  # v4: intact, below the minimum
    shutil.rmtree(version_folder("1"))
    model_file = next(p for p in version_folder("2").iterdir() if p.name.startswith("model."))
    model_file.write_bytes(model_file.read_bytes() + b"\0")

    decision = promote_lab(make_lab(Path(lab.inbox_uri.removeprefix("file://")),
                                    minimums={"f1": 0.5}))

    status = {c.version: (c.status, c.reason) for c in decision.candidates}
    assert status["1"][0] == "refused" and "artifacts missing" in status["1"][1]
    assert status["2"][0] == "refused" and "do not match the digest" in status["2"][1]
    assert status["4"][0] == "below_minimum"
    assert decision.action == "promoted" and decision.chosen == "3"
    assert aliases() == {PRODUCTION: "3"}
    tags = Tracker(None, "iris_lab").client.get_model_version(MODEL, "1").tags
    assert tags["conveyor.promotion.status"] == "refused"


def test_compare_and_set_aborts_a_promotion_overtaken_by_another(lab: Lab,
                                                                 register: Callable) -> None:
    register(KNN)
    promote_lab(lab)  # production v1
    register(TREE)  # v2
    tracker = Tracker(None, "iris_lab")
    holdout = load_holdout(*_holdout(tracker))
    stale = plan_promotion(tracker, MODEL, holdout=holdout)
    assert stale.action == "promote" and stale.production_before == "1"
    assert commit_promotion(tracker, plan_promotion(tracker, MODEL, holdout=holdout),
                            holdout=holdout).action == "promoted"  # another one finished first
    assert aliases() == {PRODUCTION: "2", PREVIOUS: "1"}

    aborted = commit_promotion(tracker, stale, holdout=holdout)
    assert aborted.action == "aborted" and "now v2" in aborted.reason
    assert aliases() == {PRODUCTION: "2", PREVIOUS: "1"}
    record = json.loads(Path(aborted.record_uri.removeprefix("file://")).read_text())
    assert record["action"] == "aborted"

    # A-B-A: a rollback puts v1 back; a plan made while v1 was first in production still
    # must not pass (the generation moved), or it would undo the operator's rollback
    older = plan_promotion(tracker, MODEL, holdout=holdout, include_all=True)
    rollback_lab(lab)
    assert aliases() == {PRODUCTION: "1"}
    older.production_before, older.generation = "1", 1
    older.action, older.chosen = "promote", "2"
    assert commit_promotion(tracker, older, holdout=holdout).action == "aborted"
    assert aliases() == {PRODUCTION: "1"}


def _holdout(tracker: Tracker) -> tuple[str, str]:
    tags = tracker.client.get_model_version(MODEL, "1").tags
    return tags["conveyor.holdout.uri"], tags["conveyor.holdout.sha256"]


def test_the_registry_lock_waits_and_breaks_stale_locks(lab: Lab, register: Callable) -> None:
    register(KNN)
    promote_lab(lab)
    client = Tracker(None, "iris_lab").client
    with RegistryLock(client, MODEL, owner="someone-else", ttl=60), \
            pytest.raises(TrackingError, match="held by someone-else"):
        RegistryLock(client, MODEL, owner="me", wait=0.3).acquire()
    # a holder that died: its lock expired, the next taker breaks it exactly once
    client.create_registered_model(f"{MODEL}.lock", tags={
        "conveyor.lock.owner": "dead", "conveyor.lock.token": "ab" * 16,
        "conveyor.lock.expires_at": f"{time.time() - 5:.3f}"})
    lock = RegistryLock(client, MODEL, owner="me", wait=5)
    with lock:
        assert lock.broken_stale == 1
    names = {m.name for m in client.search_registered_models()}
    assert f"{MODEL}.lock.stale-{'ab' * 16}" in names and f"{MODEL}.lock" not in names


def _promote_in_child(inbox: str, start: multiprocessing.Barrier,
                      out: multiprocessing.Queue) -> None:
    from conftest import make_lab
    from conveyor.lab import promote_lab

    lab = make_lab(Path(inbox))
    start.wait(timeout=120)
    decision = promote_lab(lab, owner=f"child-{os.getpid()}")
    out.put((decision.action, decision.chosen, decision.previous_production))


def test_racing_promotions_in_two_processes_have_one_winner(lab: Lab, register: Callable,
                                                            inbox: Path) -> None:
    register(KNN)
    promote_lab(lab)  # production v1
    register(TREE)  # v2, the better one
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    children = [ctx.Process(target=_promote_in_child, args=(str(inbox), start, out))
                for _ in range(2)]
    for child in children:
        child.start()
    results = [out.get(timeout=240) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    print("race results:", results)
    actions = sorted(action for action, _, _ in results)
    assert actions.count("promoted") == 1, results
    assert set(actions) <= {"promoted", "aborted", "kept"}
    winner = next(r for r in results if r[0] == "promoted")
    assert winner[1:] == ("2", "1")
    assert aliases() == {PRODUCTION: "2", PREVIOUS: "1"}
    records = Path(lab.store_root.removeprefix("file://")) / "_registry" / MODEL / "promotions"
    promoted = [json.loads(p.read_text()) for p in records.iterdir()]
    assert sum(r["action"] == "promoted" and r["chosen"] == "2" for r in promoted) == 1
