"""The gate against the champion, from the user's side: ``conveyor run`` with real MLflow
(issue 11; docs/decisions/0042-gate-against-the-champion.md).

One module fixture tells the story once, in one CONVEYOR_HOME, and keeps what each run left
behind; the tests then check it (so they do not depend on their order):

1. the first run (no champion) passes, registers v1, aliases ``challenger`` and (with
   ``gate.promote``) ``production``;
2. a worse model is rejected: exit 3, nothing registered, from the CLI and the Python API;
3. a better model without ``gate.promote`` becomes v2 ``challenger``, production stays v1;
4. the champion's files altered (its recorded digest no longer matches): the same spec as 3
   again, fully cached up to the gate, is rejected (the gate is not cached, and a champion it
   cannot score fails safe);
5. with ``gate.promote`` the better model moves ``production`` to v2 (compare-and-set).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor.cli import main

SPEC = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"
MODEL = "breast_cancer_classifier"
DIGEST_TAG = "conveyor.artifacts_sha256"
# low absolute bounds, so that every rejection below is the champion's doing
CHAMPION = ("gate.test_accuracy=0.9", "gate.test_f1=0.9", "gate.champion.metric=test_f1",
            "gate.champion.min_delta=0.005")
PROMOTE = (*CHAMPION, "gate.promote=true")
WORSE = "model.params.C=0.01"   # test_f1 0.923 against v1's 0.951 (C=1)
BETTER = "model.params.C=0.05"  # test_f1 0.963: beats v1 by 0.012 >= 0.005


@dataclass
class Run:
    code: int
    out: str
    err: str
    run_id: str
    aliases: dict[str, str] = field(default_factory=dict)  # after the run
    versions: list[str] = field(default_factory=list)


@dataclass
class Story:
    home: Path
    runs: dict[str, Run]
    api: Any  # conveyor.RunResult of the worse model through the Python API
    api_versions: list[str]

    def folder(self, name: str) -> Path:
        return self.home / "artifacts" / "breast_cancer" / self.runs[name].run_id

    def verdict(self, name: str) -> dict[str, Any]:
        return json.loads((self.folder(name) / "gate" / "verdict.json").read_text())

    def manifest(self, name: str) -> dict[str, Any]:
        return json.loads((self.folder(name) / "manifest.json").read_text())

    def tags(self, name: str) -> dict[str, str]:
        c = client(self.home)
        experiment = c.get_experiment_by_name("breast_cancer")
        (found,) = c.search_runs([experiment.experiment_id], filter_string=(
            f"tags.`conveyor.run_id` = '{self.runs[name].run_id}'"))
        return dict(found.data.tags)


def client(home: Path) -> Any:
    from mlflow import MlflowClient

    db = f"sqlite:///{home}/mlflow.db"
    return MlflowClient(tracking_uri=db, registry_uri=db)


def registry(home: Path) -> tuple[dict[str, str], list[str]]:
    c = client(home)
    aliases = {k: str(v) for k, v in (c.get_registered_model(MODEL).aliases or {}).items()}
    found = c.search_model_versions(f"name = '{MODEL}'")
    return aliases, sorted((str(v.version) for v in found), key=int)


def run_as(home: Path, run_id: str, *overrides: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", str(SPEC), "--run-id", run_id, *overrides])
    aliases, versions = registry(home)
    return Run(code, out.getvalue(), err.getvalue(), run_id, aliases, versions)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, wdbc_path: Path,
          seed_mlflow: Callable[[Path], Path]) -> Story:
    home = tmp_path_factory.mktemp("champion") / "home"
    seed_mlflow(home)
    runs: dict[str, Run] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVEYOR_HOME", str(home))
        mp.setenv("WDBC_PATH", str(wdbc_path))
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CONVEYOR_EXPORT_URI"):
            mp.delenv(name, raising=False)
        runs["first"] = run_as(home, "champ-first", *PROMOTE)
        runs["worse"] = run_as(home, "champ-worse", *PROMOTE, WORSE)
        api = conveyor.run(SPEC, [*PROMOTE, WORSE], run_id="champ-worse-api")
        api_versions = registry(home)[1]
        runs["challenger"] = run_as(home, "champ-challenger", *CHAMPION, BETTER)
        c = client(home)
        digest = c.get_model_version(MODEL, "1").tags[DIGEST_TAG]
        c.set_model_version_tag(MODEL, "1", DIGEST_TAG, "0" * 64)  # v1's files "altered"
        try:
            runs["tampered"] = run_as(home, "champ-tampered", *CHAMPION, BETTER)
        finally:
            c.set_model_version_tag(MODEL, "1", DIGEST_TAG, digest)
        runs["promoted"] = run_as(home, "champ-promoted", *PROMOTE, BETTER)
    return Story(home, runs, api, api_versions)


def test_the_first_model_passes_with_no_champion_and_becomes_production(story: Story) -> None:
    first = story.runs["first"]
    assert first.code == 0, first.out + first.err
    assert "no champion" in first.out
    # one pair of parentheses (it read "passed (no champion: ... yet (the first ...))")
    assert (f"passed (no champion yet: '{MODEL}' is not registered, so the first model "
            "passes the champion check)\n") in first.out, first.out
    verdict = story.verdict("first")
    assert (verdict["passed"], verdict["champion"], verdict["comparison"]) == (True, None, [])
    assert first.versions == ["1"]
    assert first.aliases == {"challenger": "1", "production": "1"}
    # the run says where the aliases point (it said only "registered .../1")
    assert f"registered models:/{MODEL}/1\naliases    challenger, production\n" in first.out
    tags = story.tags("first")
    assert (tags["conveyor.gate"], tags["conveyor.champion_version"],
            tags["conveyor.challenger_version"], tags["conveyor.promotion"]) == (
        "passed", "none", "1", "promoted")


def test_a_worse_model_is_rejected_and_nothing_is_registered(story: Story) -> None:
    worse = story.runs["worse"]
    assert worse.code == 3, worse.out + worse.err
    assert "test_f1 0.9231 is worse than champion v1 (0.9512): the champion stays" in worse.out
    # the rejection was shown with the same green tick as a pass
    [gate] = [line for line in worse.out.splitlines() if line.split()[1:2] == ["gate"]]
    assert gate.startswith("  ✗ gate ") and "rejected: test_f1 0.9231" in gate, gate
    assert worse.versions == ["1"] and worse.aliases == {"challenger": "1", "production": "1"}
    verdict = story.verdict("worse")
    assert verdict["passed"] is False
    assert all(check["passed"] for check in verdict["checks"])  # only the champion failed
    champion = verdict["champion"]
    assert {k: champion[k] for k in ("name", "version", "alias")} == {
        "name": MODEL, "version": "1", "alias": "production"}
    # the champion scored on this run's test rows by the evaluate step's scorer: exactly the
    # test metrics the run that trained it reported (same rows, same split)
    first_metrics = story.manifest("first")["metrics"]
    assert champion["metrics"] == pytest.approx(
        {k: v for k, v in first_metrics.items() if k.startswith("test_")})
    (row,) = verdict["comparison"]
    assert row == {"metric": "test_f1", "candidate": pytest.approx(0.9230769),
                   "champion": pytest.approx(0.9512195), "delta": pytest.approx(-0.0281426),
                   "min_delta": 0.005, "lower_is_better": False, "passed": False}
    tags = story.tags("worse")
    assert (tags["conveyor.gate"], tags["conveyor.champion_version"],
            tags["conveyor.status"]) == ("rejected", "1", "rejected")
    assert "conveyor.registered_version" not in tags
    assert not (story.folder("worse") / "register" / "registration.json").exists()


def test_the_python_api_gives_the_same_rejection(story: Story) -> None:
    result = story.api
    assert (result.status, result.published, result.exit_code) == ("rejected", False, 3)
    assert "worse than champion v1" in result.reason
    assert story.api_versions == ["1"]


def test_a_better_model_becomes_the_challenger(story: Story) -> None:
    run = story.runs["challenger"]
    assert run.code == 0, run.out + run.err
    assert "test_f1 0.9630 beats champion v1 (0.9512) by 0.0117 >= min_delta 0.005" in run.out
    assert run.versions == ["1", "2"]
    assert run.aliases == {"challenger": "2", "production": "1"}  # no gate.promote
    assert f"registered models:/{MODEL}/2\naliases    challenger\n" in run.out
    tags = story.tags("challenger")
    assert tags["conveyor.challenger_version"] == "2" and "conveyor.promotion" not in tags


def test_a_champion_that_cannot_be_scored_rejects_even_a_cached_run(story: Story) -> None:
    run = story.runs["tampered"]
    assert run.code == 3, run.out + run.err
    # the same spec as the challenger run: every step up to evaluate is cached, the gate not
    steps = story.manifest("challenger")["steps"]
    assert steps["gate"]["status"] == "ok"
    record = json.loads((story.folder("tampered") / "gate" / "_record.json").read_text())
    assert record["status"] == "ok" and record["cached_from"] is None
    train = json.loads((story.folder("tampered") / "train" / "_record.json").read_text())
    assert train["cached_from"] == "champ-challenger"
    verdict = story.verdict("tampered")
    assert "champion breast_cancer_classifier v1 could not be scored" in verdict["reason"]
    assert "do not match the digest" in verdict["reason"]
    assert verdict["champion"]["version"] == "1" and verdict["champion"]["metrics"] == {}
    assert verdict["comparison"][0]["passed"] is False
    assert story.tags("tampered")["conveyor.champion_check"] == "refused"
    assert run.versions == ["1", "2"]
    assert run.aliases == {"challenger": "2", "production": "1"}


def test_gate_promote_moves_production_by_compare_and_set(story: Story) -> None:
    run = story.runs["promoted"]
    assert run.code == 0, run.out + run.err
    assert run.versions == ["1", "2"]  # the same trained model: its version, found again
    assert run.aliases == {"challenger": "2", "production": "2", "previous_production": "1"}
    assert "aliases    challenger, production\n" in run.out
    tags = story.tags("promoted")
    assert tags["conveyor.promotion"] == "promoted"
    assert "beats champion v1" in tags["conveyor.promotion_reason"]
    records = sorted((story.home / "artifacts" / "_registry" / MODEL / "promotions").glob(
        "*.json"))
    decisions = [json.loads(p.read_text()) for p in records]
    assert [(d["action"], d["production_before"], d["production_after"])
            for d in sorted(decisions, key=lambda d: d["decided_at"])] == [
        ("promoted", None, "1"), ("promoted", "1", "2")]
    version = client(story.home).get_model_version(MODEL, "2")
    assert version.tags["conveyor.promotion.status"] == "scored"


def test_a_plan_made_against_a_production_that_moved_since_is_aborted(
    story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compare-and-set of gate.promote: the promoted run's own plan, replayed after
    production moved (it was made at generation 1, v1; production is now v2 at generation 2),
    changes nothing."""
    from conveyor.promotion import promote_challenger
    from conveyor.store import Store
    from conveyor.tracking import Tracker

    monkeypatch.setenv("CONVEYOR_HOME", str(story.home))
    plan = json.loads((story.folder("promoted") / "register" / "challenger.json").read_text())
    assert (plan["production"], plan["generation"], plan["version"]) == ("1", 1, "2")
    db = f"sqlite:///{story.home}/mlflow.db"
    client(story.home).set_registered_model_alias(MODEL, "production", "1")  # a hand move
    try:
        decision = promote_challenger(Tracker(db, "breast_cancer"), plan,
                                      store=Store((story.home / "artifacts").as_uri()))
        assert decision.action == "aborted"
        assert "production moved (v1 at generation 1, now v1 at generation 2)" in \
            decision.reason
        assert registry(story.home)[0]["production"] == "1"  # nothing moved
    finally:
        client(story.home).set_registered_model_alias(MODEL, "production", "2")


def test_a_run_does_not_promote_again_a_version_that_was_rolled_back(
        conveyor_home: Path, monkeypatch: pytest.MonkeyPatch, wdbc_path: Path) -> None:
    """`conveyor rollback` takes v2 out of production "if v2 misbehaves"; the next run of the
    unchanged pipeline (train cached: the same v2) beat v1 again and gate.promote put v2 back
    in production, silently undoing the rollback."""
    monkeypatch.setenv("WDBC_PATH", str(wdbc_path))
    assert run_as(conveyor_home, "rb-first", *PROMOTE).code == 0
    better = run_as(conveyor_home, "rb-better", *PROMOTE, BETTER)
    assert better.code == 0 and better.aliases["production"] == "2", better.out + better.err
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["rollback", MODEL]) == 0
    assert registry(conveyor_home)[0]["production"] == "1"

    again = run_as(conveyor_home, "rb-again", *PROMOTE, BETTER)
    assert again.code == 0, again.out + again.err  # the gate still passes: v2 beats v1
    assert again.versions == ["1", "2"]
    assert again.aliases["production"] == "1", again.aliases  # the rollback stands
    assert again.aliases["challenger"] == "2"
    assert "aliases    challenger\n" in again.out
    tags = Story(conveyor_home, {"again": again}, None, []).tags("again")
    assert tags["conveyor.promotion"] == "kept"
    assert "v2 was rolled back from production" in tags["conveyor.promotion_reason"]
