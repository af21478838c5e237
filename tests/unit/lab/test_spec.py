"""The lab spec: shared building blocks, safe loading, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import SpecError
from conveyor.lab.spec import load_lab

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "iris_lab" / "lab.yaml"


def test_the_example_spec_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IRIS_LAB_INBOX", raising=False)
    lab = load_lab(EXAMPLE)
    assert lab.name == "iris_lab" and lab.spec.model_name == "iris_classifier"
    assert lab.inbox_uri == (EXAMPLE.parent / "configs").as_uri()
    assert lab.store_root.startswith("file://") and lab.spec.data.name == "iris"
    assert lab.spec.promotion.metric == "f1" and lab.spec.split.seed == 42
    assert lab.spec.watch.file_time_limit_seconds == 300


def test_the_inbox_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRIS_LAB_INBOX", "s3://bucket/inbox")
    assert load_lab(EXAMPLE).inbox_uri == "s3://bucket/inbox"


@pytest.mark.parametrize(("text", "needle", "key", "line"), [
    ("name: x\nwatch: {folder: in}\npromotoin: {}\n", "did you mean 'promotion'?",
     "promotoin", 3),
    ("name: x\nwatch:\n  folder: in\n  min_age: 3\n", "did you mean 'min_age_seconds'?",
     "watch.min_age", 4),
    ("name: x\nwatch: {folder: in}\npromotion: {metric: auc}\n", "got 'auc'",
     "promotion.metric", 3),
    ("name: x\n", "required key is missing", "watch", None),
    ("name: x\nwatch: {folder: in, storage_options: {secret: s}}\n", "inline secret",
     "watch.storage_options", 2),
    ("name: x\nname: y\n", "duplicate key", "name", 2),
    ("name: x\nwatch: {folder: in, file_time_limit_seconds: 0}\n", "greater than 0",
     "watch.file_time_limit_seconds", 2),
    ("name: x\nwatch:\n  folder: in\n  claim_ttl_seconds: 60\n",
     "file_time_limit_seconds (300) must be shorter than claim_ttl_seconds (60)", "watch", 2),
])
def test_bad_lab_specs_name_file_line_and_key(tmp_path: Path, text: str, needle: str,
                                              key: str, line: int | None) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_lab(path)
    assert needle in str(caught.value)
    assert caught.value.key == key and caught.value.file == str(path)
    if line is not None:
        assert caught.value.line == line
