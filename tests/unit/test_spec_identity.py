"""The spec hash depends on where the data is, not on how its path was spelled (ADR 0023)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.spec import load_spec
from conveyor.spec.loader import resolve_location, spec_changes
from conveyor.store import to_uri

SPEC = """\
name: p
data: {{source: file, uri: "{uri}"}}
schema: {{target: y}}
model: {{estimator: logistic_regression}}
store: {{root: "{root}"}}
"""


def write(folder: Path, uri: str, root: str = "runs") -> Path:
    path = folder / "spec.yaml"
    path.write_text(SPEC.format(uri=uri, root=root))
    return path


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("x,y\n1,0\n")
    (tmp_path / "specs").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    return tmp_path


def test_spellings_of_one_file_have_one_hash(tree: Path) -> None:
    specs = tree / "specs"
    spellings = ["../data/t.csv", str(tree / "data" / "t.csv"), f"file://{tree}/data/t.csv",
                 f"{tree}/specs/../data/./t.csv", "../link/t.csv", "${WHERE:-../data/t.csv}"]
    hashes = set()
    for spelling in spellings:
        loaded = load_spec(write(specs, spelling, root=f"{tree}/specs/runs/"), env={})
        hashes.add(loaded.spec_hash)
        assert loaded.identity["data"]["uri"] == f"file://{tree.resolve()}/data/t.csv"
        assert loaded.identity["store"]["root"] == f"file://{tree.resolve()}/specs/runs"
    assert len(hashes) == 1
    env_spelled = load_spec(write(specs, "${WHERE}"), env={"WHERE": str(tree / "data/t.csv")})
    relative = load_spec(write(specs, "../data/t.csv"), env={})
    assert env_spelled.spec_hash == relative.spec_hash


def test_another_file_or_setting_is_another_hash(tree: Path) -> None:
    specs = tree / "specs"
    base = load_spec(write(specs, "../data/t.csv"), env={}).spec_hash
    assert load_spec(write(specs, "../data/other.csv"), env={}).spec_hash != base
    assert load_spec(write(specs, "../data/t.csv"), ["model.params.C=0.3"],
                     env={}).spec_hash != base
    assert load_spec(write(specs, "s3://bucket/t.csv"), env={}).spec_hash != base


@pytest.mark.parametrize("spelling", ["a/b.csv", "./a/../a/b.csv", "/abs/x.csv",
                                      "file:///abs/x.csv", "file://rel/x.csv", "s3://b/k/",
                                      "~/x.csv"])
def test_resolution_is_the_stores_rule(tmp_path: Path, spelling: str) -> None:
    assert resolve_location(spelling, tmp_path) == to_uri(spelling, tmp_path)


def test_spec_changes_lists_changed_values_first() -> None:
    old = {"data": {"source": "sklearn", "name": "iris"}, "model": {"params": {"C": 1.0}}}
    new = {"data": {"source": "file", "uri": "x"}, "model": {"params": {"C": 0.5}}}
    changes = [(k, repr(a), repr(b)) for k, a, b in spec_changes(old, new)]
    assert changes == [
        ("data.source", "'sklearn'", "'file'"), ("model.params.C", "1.0", "0.5"),
        ("data.name", "'iris'", "(absent)"), ("data.uri", "(absent)", "'x'"),
    ]
    assert spec_changes(old, old) == []
