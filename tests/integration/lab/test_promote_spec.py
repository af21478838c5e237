"""``conveyor promote --spec LAB_YAML``: the lab spec's ``promotion:`` rules, model, registry
and hold-out set, with command-line flags overriding a rule (issue 8, item 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.cli import main
from conveyor.lab import load_lab, train_file
from conveyor.tracking import Tracker

KNN = "name: knn\nmodel: knn\nparams: {n_neighbors: 5}\n"  # macro F1 0.9095
TREE = "name: tree\nmodel: decision_tree\nparams: {max_depth: 3, random_state: 0}\n"  # 0.9333


def production(model: str) -> dict[str, str]:
    client = Tracker(None, "lab_rules").client
    return {k: str(v) for k, v in client.get_registered_model(model).aliases.items()}


def test_promote_and_rollback_read_the_lab_spec(lab_home: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    spec = tmp_path / "lab.yaml"
    spec.write_text(
        "name: lab_rules\n"
        f"watch: {{folder: {inbox}}}\n"
        "model_name: rules_classifier\n"
        "preprocess: {numeric: {impute: none}}\n"
        "promotion: {metric: f1, min_delta: 0.05, minimums: {f1: 0.85}, check_rows: 5}\n")
    lab = load_lab(spec)
    train_file(lab, KNN.encode(), "knn.yaml")  # v1

    assert main(["promote", "--spec", str(spec)]) == 0
    out = capsys.readouterr().out
    assert f"metric, min_delta, minimums, check_rows from {spec}" in out
    assert "promoted" in out and production("rules_classifier") == {"production": "1"}

    train_file(lab, TREE.encode(), "tree.yaml")  # v2: +0.0238, less than the spec's 0.05
    assert main(["promote", "--spec", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "less than min_delta 0.05" in out, out  # the spec's rule, not the default 0
    assert production("rules_classifier") == {"production": "1"}

    # a flag overrides the spec's rule; the others still come from the spec
    assert main(["promote", "--spec", str(spec), "--min-delta", "0.01", "--all"]) == 0
    out = capsys.readouterr().out
    assert "metric, minimums, check_rows from" in out and "min_delta 0.01" in out
    assert production("rules_classifier") == {"production": "2",
                                              "previous_production": "1"}

    assert main(["rollback", "--spec", str(spec)]) == 0
    assert "production moved back from v2 to v1" in capsys.readouterr().out
    assert production("rules_classifier") == {"production": "1"}


def test_promote_spec_and_model_must_agree(lab_home: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "lab.yaml"
    spec.write_text(f"name: lab_rules\nwatch: {{folder: {tmp_path}}}\n"
                    "model_name: rules_classifier\n")
    assert main(["promote", "iris_classifier", "--spec", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "manages the registered model 'rules_classifier', not 'iris_classifier'" in err
    assert main(["promote"]) == 2
    assert "name the registered model" in capsys.readouterr().err
    spec.write_text(f"name: lab_rules\nwatch: {{folder: {tmp_path}}}\npromotion: {{metrc: f1}}\n")
    assert main(["promote", "--spec", str(spec)]) == 2
    assert "metrc" in capsys.readouterr().err
