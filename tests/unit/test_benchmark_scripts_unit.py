"""The hand-written breast-cancer scripts (benchmarks/) run one shared job: the plain script
and the MLflow baseline cannot drift apart in what they read, split, fit and score."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_plain_and_baseline_share_one_prepare(
        tmp_path: Path, wdbc_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as `python benchmarks/<script>.py` has it
    job = importlib.import_module("breast_cancer_job")
    plain = importlib.import_module("plain_breast_cancer")
    baseline = importlib.import_module("baseline_breast_cancer")
    assert plain.prepare is job.prepare and baseline.prepare is job.prepare

    assert plain.main(["--data", str(wdbc_path), "--out", str(tmp_path / "out")]) == 0
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written == job.prepare(wdbc_path).results
    assert written["test_f1"] == pytest.approx(0.9512, abs=1e-4)  # the README's figure
    assert capsys.readouterr().out.startswith("test_accuracy=0.9649 test_f1=0.9512 model ")
