"""One file's failure, whatever its cause, never stops the other files of a lab pass.

Issue 8, item 5: an invalid YAML date or a 5,000-digit integer made ``process_inbox`` die with
a bare ``ValueError``, leaving every file of the pass claimed for an hour; a config that fits
for ever blocked the files behind it. Real MLflow (SQLite), real inbox, real child process.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from conftest import drop
from conveyor.errors import BadInputError
from conveyor.lab import Lab, LabSpec, claim_new, pending_files, process_inbox, train_claim
from conveyor.lab.watcher import ledger_for
from conveyor.tracking import Tracker

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "iris_lab" / "configs"
TREE = "model: decision_tree\nparams: {max_depth: 3, random_state: 0}\n"
FOREVER = "model: random_forest\nparams: {n_estimators: 50000000}\n"
LIMIT = 10.0  # seconds; the good files fit in milliseconds


def limited_lab(folder: Path, limit: float = LIMIT) -> Lab:
    spec = LabSpec.model_validate({
        "name": "iris_lab", "preprocess": {"numeric": {"impute": "none"}},
        "watch": {"folder": str(folder), "min_age_seconds": 1,
                  "file_time_limit_seconds": limit},
    })
    return Lab.from_spec(spec)


def our_children() -> set[int]:
    """Pids of this process's living children (the training process among them)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid() and fields[0] not in ("Z", "X"):
            found.add(int(stat.parent.name))
    return found


def test_bad_and_endless_files_are_rejected_alone_and_the_good_ones_train(
        lab_home: Path, inbox: Path) -> None:
    lab = limited_lab(inbox)
    drop(inbox, "a-bad-date.yaml", "model: svc\nparams: {C: 2024-02-30}\n")
    drop(inbox, "a-date-note.yaml", "description: 2024-02-30\n" + TREE)  # the case
    drop(inbox, "b-long-int.yaml", "model: svc\nparams: {C: " + "7" * 5000 + "}\n")
    drop(inbox, "c-forever.yaml", FOREVER)
    drop(inbox, "d-tree.yaml", TREE)
    drop(inbox, "e-svc.json", (EXAMPLES / "svc.json").read_bytes())
    children_before = our_children()

    started = time.monotonic()
    report = process_inbox(lab, owner="test")
    took = time.monotonic() - started

    # the pass returned, soon after the endless file's limit, and trained the good files
    assert took < LIMIT + 120, took
    # (a date in a description is text since ADR 0019: that file is good)
    assert sorted(r.file for r in report.trained) == ["a-date-note.yaml", "d-tree.yaml",
                                                     "e-svc.json"]
    assert sorted(report.versions, key=int) == ["1", "2", "3"]
    assert report.failed == {}
    assert set(report.rejected) == {"a-bad-date.yaml", "b-long-int.yaml", "c-forever.yaml"}
    assert "took longer than 10 s" in report.rejected["c-forever.yaml"]

    # each bad file is moved aside with a report naming it and what was wrong
    for name, needle in (("a-bad-date.yaml", "2024-02-30|day is out of range"),
                         ("b-long-int.yaml", "digits"),
                         ("c-forever.yaml", "took longer than 10 s")):
        assert not (inbox / name).exists()
        assert (inbox / "rejected" / name).is_file()
        body = json.loads((inbox / "rejected" / f"{name}.error.json").read_text())
        assert body["file"] == name and len(body["sha256"]) == 64
        assert body["error"].startswith(name), body
        assert any(n in body["error"] for n in needle.split("|")), body
        assert "Traceback" not in body["error"] and len(body["error"]) < 1000, body
        assert ledger_for(lab).outcome(body["sha256"])["status"] == "rejected"
    assert json.loads((inbox / "rejected" / "c-forever.yaml.error.json").read_text())[
        "error_type"] == "TimeLimitError"

    # the good ones are in MLflow; nothing of the bad ones is (no run, no version)
    tracker = Tracker(None, "iris_lab")
    runs = tracker.client.search_runs([tracker.experiment_id], max_results=50)
    assert sorted(r.data.tags["conveyor.config.file"] for r in runs) == [
        "a-date-note.yaml", "d-tree.yaml", "e-svc.json"]
    assert len(tracker.client.search_model_versions("name = 'iris_classifier'")) == 3

    # no claim is left hanging, and the killed training left no process behind
    assert pending_files(lab) == [] and claim_new(lab).claims == []
    assert our_children() <= children_before


def test_a_transient_failure_releases_the_file_for_the_next_pass(
        lab_home: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow failing mid-logging (a foreign exception) is not the file's fault."""
    from conveyor.tracking import Tracker as TrackerClass

    lab = limited_lab(inbox)
    drop(inbox, "tree.yaml", TREE)
    drop(inbox, "typo.yaml", "model: svc\nparams: {CC: 1}\n")
    calls = []

    def unreachable(self: object, metrics: dict[str, float]) -> None:
        calls.append(metrics)
        raise ConnectionError("[Errno 111] Connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(TrackerClass, "log_metrics", unreachable)
        report = process_inbox(lab)
    assert calls, "the fault was not injected"
    assert set(report.failed) == {"tree.yaml"}
    assert "Connection refused" in report.failed["tree.yaml"]
    assert set(report.rejected) == {"typo.yaml"}  # bad input is still rejected at once
    assert (inbox / "tree.yaml").is_file() and not (inbox / "rejected" / "tree.yaml").exists()
    assert pending_files(lab) == ["tree.yaml"]  # released, not held for an hour

    again = process_inbox(lab)  # MLflow is back
    assert [r.file for r in again.trained] == ["tree.yaml"] and again.versions == ["1"]


def test_a_file_over_the_limit_may_try_again_once_the_limit_is_raised(
        lab_home: Path, inbox: Path) -> None:
    drop(inbox, "forever.yaml", FOREVER)
    tight = limited_lab(inbox, limit=2)
    (claim,) = claim_new(tight).claims
    with pytest.raises(BadInputError, match="took longer than 2 s") as caught:
        train_claim(tight, claim)
    assert type(caught.value).__name__ == "TimeLimitError"
    assert (inbox / "rejected" / "forever.yaml.error.json").is_file()

    # the same bytes again under the same limit: rejected from the ledger, not run again
    drop(inbox, "forever-again.yaml", FOREVER)
    assert claim_new(tight).rejected == ["forever-again.yaml"]
    # under a higher limit they may run again (once: one new claim)
    looser = limited_lab(inbox, limit=3)
    drop(inbox, "forever-third.yaml", FOREVER)
    assert pending_files(looser) == ["forever-third.yaml"]
    (retry,) = claim_new(looser).claims
    assert retry.attempt == 2 and claim_new(looser).claims == []
    with pytest.raises(BadInputError, match="took longer than 3 s"):
        train_claim(looser, retry)
    assert ledger_for(looser).outcome(retry.sha256)["time_limit"] == 3
