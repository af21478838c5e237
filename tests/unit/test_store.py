"""The Store on a local folder: atomic writes, hashes checked on read, safe keys, URIs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from conveyor.errors import StoreError
from conveyor.store import ArtifactRef, Store, check_key, files_digest, store_root, to_uri


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store((tmp_path / "root").as_uri())


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def local(uri: str) -> Path:
    assert uri.startswith("file://")
    return Path(uri.removeprefix("file://"))


# --------------------------------------------------------------------------- bytes and hashes


def test_put_get_bytes_round_trip_with_hash(store: Store) -> None:
    uri = store.uri("pipe", "run1", "step", "a.bin")
    data = b"\x00conveyor\xff" * 100
    ref = store.put_bytes(uri, data)
    assert ref == ArtifactRef(uri=uri, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    assert local(uri).read_bytes() == data
    assert store.get_bytes(uri, sha256=ref.sha256) == data
    assert store.exists(uri)
    assert store.list(store.uri("pipe", "run1", "step")) == ["a.bin"]
    assert files_under(local(store.root)) == ["pipe/run1/step/a.bin"]  # no temp file left


def test_overwrite_replaces_whole(store: Store) -> None:
    uri = store.uri("p", "r", "s", "x.json")
    store.put_json(uri, {"v": 1})
    ref = store.put_json(uri, {"v": 2})
    assert store.get_json(uri, sha256=ref.sha256) == {"v": 2}


def test_tampered_bytes_are_refused(store: Store) -> None:
    uri = store.uri("p", "r", "s", "metrics.json")
    ref = store.put_json(uri, {"test_f1": 0.95})
    local(uri).write_text('{"test_f1": 0.99}\n')
    with pytest.raises(StoreError, match="does not match its recorded sha256"):
        store.get_bytes(uri, sha256=ref.sha256)
    with pytest.raises(StoreError, match="tampered"):
        store.get_json(uri, sha256=ref.sha256)
    assert store.get_json(uri) == {"test_f1": 0.99}  # no hash, no check


def test_tampered_table_is_refused_by_a_fresh_store(store: Store) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    ref = store.put_table(store.uri("p", "r", "s", "t.parquet"), frame)
    pd.testing.assert_frame_equal(Store(store.root).get_table(ref), frame)
    other = pd.DataFrame({"a": [1.0, 3.0], "b": ["x", "y"]})
    other.to_parquet(local(ref.uri), index=False)
    with pytest.raises(StoreError, match="tampered"):
        Store(store.root).get_table(ref)


def test_get_table_returns_a_copy(store: Store) -> None:
    ref = store.put_table(store.uri("p", "r", "s", "t.parquet"), pd.DataFrame({"a": [1, 2]}))
    first = store.get_table(ref)
    first.loc[0, "a"] = 99
    assert store.get_table(ref)["a"].tolist() == [1, 2]


def test_a_written_table_in_the_memo_is_apart_from_the_writer(store: Store) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    ref = store.put_table(store.uri("p", "r", "s", "t.parquet"), frame)
    frame.loc[0, "a"] = 99  # the writer changes its frame after writing it
    assert store.recall(ref) is not None
    assert store.get_table(ref)["a"].tolist() == [1, 2]


def test_the_memo_keeps_small_tables_and_never_a_large_one(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """ADR 0050: a run of 1M rows held raw, validated, train and test tables in the memo for
    the whole run (4x the data); a large table is read again instead."""
    import conveyor.store.artifacts as artifacts

    small = pd.DataFrame({"a": range(10)})
    large = pd.DataFrame({"a": range(20_000)})  # 160,000 bytes
    monkeypatch.setattr(artifacts, "MEMO_TABLE_BYTES", 100_000)
    monkeypatch.setattr(artifacts, "MEMO_TABLES_BYTES", 200_000)
    kept = store.put_table(store.uri("p", "r", "s", "small.parquet"), small)
    big = store.put_table(store.uri("p", "r", "s", "large.parquet"), large)
    assert store.recall(kept) is not None
    assert store.recall(big) is None
    pd.testing.assert_frame_equal(store.get_table(big), large)  # read from the Store
    assert store.recall(big) is None
    # within the budget in all: the oldest small tables go first
    refs = [store.put_table(store.uri("p", "r", "s", f"m{i}.parquet"),
                            pd.DataFrame({"a": range(i, i + 9_000)})) for i in range(4)]
    assert [store.recall(ref) is not None for ref in refs] == [False, False, True, True]
    assert store.recall(kept) is None


def test_a_large_table_is_written_in_slices_and_reads_back_as_to_parquet_wrote_it(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import numpy as np
    import pyarrow.parquet as pq

    import conveyor.store.artifacts as artifacts

    monkeypatch.setattr(artifacts, "_SLICE_BYTES", 64)
    frame = pd.DataFrame({
        "text": ["a", None, "c", "dd", None] * 4,
        "kind": pd.Categorical(["x", "y", "x", "z", "x"] * 4),
        "flag": [True, False, True, True, False] * 4,
        "maybe": pd.array([True, None, False, None, True] * 4, dtype="boolean"),
        "count": pd.array([1, None, 3, 4, 5] * 4, dtype="Int64"),
        "value": [1.0, np.nan, 2.0, 3.0, 4.0] * 4,
        "when": pd.to_datetime(["2020-01-01", None, "2021-01-01", "2022-01-01", None] * 4),
        "late": [None] * 19 + ["only in the last slice"],
    })
    ref = store.put_table(store.uri("p", "r", "s", "t.parquet"), frame)
    data = store.get_bytes(ref.uri)
    assert pq.ParquetFile(io.BytesIO(data)).num_row_groups > 1
    whole = io.BytesIO()
    frame.to_parquet(whole, index=False)
    expected = pd.read_parquet(io.BytesIO(whole.getvalue()))
    pd.testing.assert_frame_equal(Store(store.root).get_table(ref), expected)
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(data)), expected)


def test_a_wide_table_reads_back_unfragmented(store: Store) -> None:
    """A block per column spares a copy, but past 100 blocks pandas warns on every insert."""
    import warnings

    wide = pd.DataFrame({f"c{i}": [1.0, 2.0] for i in range(150)})
    ref = store.put_table(store.uri("p", "r", "s", "wide.parquet"), wide)
    read = Store(store.root).get_table(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.PerformanceWarning)
        read["derived"] = read["c0"] + 1
    pd.testing.assert_frame_equal(read.drop(columns=["derived"]), wide)


def test_missing_artifact_is_a_store_error(store: Store) -> None:
    uri = store.uri("p", "r", "s", "nothing.json")
    with pytest.raises(StoreError, match="artifact not found"):
        store.get_bytes(uri)
    assert not store.exists(uri)
    assert store.list(store.uri("p", "nothing")) == []


def test_put_json_refuses_nan(store: Store) -> None:
    uri = store.uri("p", "r", "s", "m.json")
    with pytest.raises(ValueError):
        store.put_json(uri, {"x": float("nan")})
    assert not local(store.root).exists() or files_under(local(store.root)) == []


# --------------------------------------------------------------------------- atomic writes


def test_failure_in_replace_leaves_no_object_and_no_temp(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = store.uri("p", "r", "s", "model.bin")
    calls = []

    def broken_replace(src: str, dst: str) -> None:
        calls.append((src, dst))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StoreError, match=r"cannot write .*model.bin.*No space left"):
        store.put_bytes(uri, b"x" * 10_000)
    assert len(calls) == 1  # the failure path ran
    assert ".tmp-" in calls[0][0] and calls[0][1] == str(local(uri))
    assert not local(uri).exists()
    assert files_under(local(store.root)) == []


def test_failure_mid_write_keeps_the_previous_object(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = store.uri("p", "r", "s", "report.json")
    old = store.put_json(uri, {"v": "old"})
    calls = []

    def broken_fsync(fd: int) -> None:
        calls.append(fd)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(StoreError, match="Input/output error"):
        store.put_json(uri, {"v": "new, half written"})
    assert calls
    assert store.get_json(uri, sha256=old.sha256) == {"v": "old"}
    assert files_under(local(store.root)) == ["p/r/s/report.json"]


def test_non_os_error_mid_write_also_cleans_up(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = store.uri("p", "r", "s", "x.bin")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.put_bytes(uri, b"data")
    assert files_under(local(store.root)) == []


def test_table_whose_serialisation_fails_writes_nothing(store: Store) -> None:
    class Exploding(pd.DataFrame):
        calls = 0

        def to_parquet(self, *args: object, **kwargs: object) -> None:
            type(self).calls += 1
            args[0].write(b"PAR1 partial")  # type: ignore[union-attr]
            raise RuntimeError("disk went away mid-write")

    uri = store.uri("p", "r", "s", "t.parquet")
    with pytest.raises(RuntimeError, match="mid-write"):
        store.put_table(uri, Exploding({"a": [1, 2]}))
    assert Exploding.calls == 1
    assert not store.exists(uri)
    assert not local(store.root).exists() or files_under(local(store.root)) == []


def test_put_dir_failure_writes_no_index(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("MLmodel", "model.skops", "requirements.txt"):
        (folder / name).write_text(name)
    real_replace = os.replace

    def fail_on_third(src: str, dst: str) -> None:
        if dst.endswith("requirements.txt"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_third)
    uri = store.uri("p", "r", "train", "model")
    with pytest.raises(StoreError):
        store.put_dir(uri, folder)
    written = files_under(local(uri))
    assert "_conveyor_dir.json" not in written and "requirements.txt" not in written
    assert not any(".tmp-" in name for name in written)


# --------------------------------------------------------------------------- folders


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model-src"
    (folder / "sub").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "model.skops").write_bytes(os.urandom(2048))
    (folder / "sub" / "extra.txt").write_text("x")
    return folder


def test_put_get_copy_dir_round_trip(store: Store, model_dir: Path, tmp_path: Path) -> None:
    ref = store.put_dir(store.uri("p", "r", "train", "model"), model_dir)
    index = json.loads((local(ref.uri) / "_conveyor_dir.json").read_text())
    assert sorted(index["files"]) == ["MLmodel", "model.skops", "sub/extra.txt"]
    assert index["sha256"] == ref.sha256 == files_digest(index["files"])
    assert ref.size == sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())

    out = store.get_dir(ref, tmp_path / "download")
    assert files_under(out) == ["MLmodel", "model.skops", "sub/extra.txt"]
    assert (out / "model.skops").read_bytes() == (model_dir / "model.skops").read_bytes()

    target = Store((tmp_path / "exports").as_uri())
    copied = store.copy_dir(ref, target, target.uri("run1", "model"))
    assert copied.sha256 == ref.sha256 and copied.size == ref.size
    assert files_under(local(copied.uri)) == ["MLmodel", "_conveyor_dir.json", "model.skops",
                                              "sub/extra.txt"]
    assert target.get_dir(copied, tmp_path / "again").joinpath("sub/extra.txt").read_text() == "x"


def test_tampered_file_in_folder_is_refused(
    store: Store, model_dir: Path, tmp_path: Path
) -> None:
    ref = store.put_dir(store.uri("p", "r", "train", "model"), model_dir)
    (local(ref.uri) / "model.skops").write_bytes(b"malicious pickle")
    with pytest.raises(StoreError, match=r"model.skops does not match its recorded sha256"):
        store.get_dir(ref, tmp_path / "download")
    target = Store((tmp_path / "exports").as_uri())
    with pytest.raises(StoreError, match="tampered"):
        store.copy_dir(ref, target, target.uri("run1", "model"))
    # the copy never became a complete folder: its index is written last
    assert not (tmp_path / "exports" / "run1" / "model" / "_conveyor_dir.json").exists()
    assert not (tmp_path / "exports" / "run1" / "model" / "model.skops").exists()


def test_tampered_index_is_refused(store: Store, model_dir: Path, tmp_path: Path) -> None:
    ref = store.put_dir(store.uri("p", "r", "train", "model"), model_dir)
    (local(ref.uri) / "model.skops").write_bytes(b"malicious pickle")
    index_path = local(ref.uri) / "_conveyor_dir.json"
    index = json.loads(index_path.read_text())
    index["files"]["model.skops"] = hashlib.sha256(b"malicious pickle").hexdigest()
    index["sha256"] = files_digest(index["files"])
    index_path.write_text(json.dumps(index))
    with pytest.raises(StoreError, match=r"folder .* does not match its recorded sha256"):
        store.get_dir(ref, tmp_path / "download")
    target = Store((tmp_path / "exports").as_uri())
    with pytest.raises(StoreError, match="does not match"):
        store.copy_dir(ref, target, target.uri("run1", "model"))
    assert not (tmp_path / "exports").exists()


def test_missing_file_in_folder_is_refused(store: Store, model_dir: Path, tmp_path: Path) -> None:
    ref = store.put_dir(store.uri("p", "r", "train", "model"), model_dir)
    (local(ref.uri) / "MLmodel").unlink()
    with pytest.raises(StoreError, match="artifact not found"):
        store.get_dir(ref, tmp_path / "download")


def _traversal_folder(store: Store, tmp_path: Path) -> ArtifactRef:
    """A folder whose index (with a matching digest) lists ``../evil.txt``."""
    root = local(store.root)
    (root / "src" / "model").mkdir(parents=True)
    (root / "src" / "evil.txt").write_bytes(b"evil")
    (root / "src" / "model" / "MLmodel").write_bytes(b"m")
    files = {"MLmodel": hashlib.sha256(b"m").hexdigest(),
             "../evil.txt": hashlib.sha256(b"evil").hexdigest()}
    (root / "src" / "model" / "_conveyor_dir.json").write_text(
        json.dumps({"files": files, "sha256": files_digest(files)}))
    return ArtifactRef(uri=f"{store.root}/src/model", sha256=files_digest(files), size=5)


def test_get_dir_refuses_index_listing_files_outside(store: Store, tmp_path: Path) -> None:
    ref = _traversal_folder(store, tmp_path)
    with pytest.raises(StoreError, match="lists a file outside it"):
        store.get_dir(ref, tmp_path / "dl" / "model")
    assert not (tmp_path / "dl" / "evil.txt").exists()


def test_copy_dir_refuses_index_listing_files_outside(store: Store, tmp_path: Path) -> None:
    ref = _traversal_folder(store, tmp_path)
    target = Store((tmp_path / "exports").as_uri())
    try:
        with pytest.raises(StoreError):
            store.copy_dir(ref, target, target.uri("run1", "model"))
    finally:
        escaped = tmp_path / "exports" / "run1" / "evil.txt"
        assert not escaped.exists(), "copy_dir wrote outside the target folder"


# --------------------------------------------------------------------------- keys


TRAVERSAL_CORPUS = [
    "..", "../x", "x/..", "a/b", "%2e%2e", "%2e%2e%2fetc", "..%2f", "\\", "..\\x", "a\\b",
    "", ".", ".hidden", "a" * 129, "a" * 200, "a..b", "/etc", "x y", "x#y", "x;y", "x?y",
    "x:y", "~", "a\x00b", "é", "*", "x\n", "\nx",
]


@pytest.mark.parametrize("value", [
    pytest.param(v, id=repr(v)[:20]) for v in TRAVERSAL_CORPUS if v != "x\n"
])
def test_check_key_refuses_traversal_corpus(value: str) -> None:
    with pytest.raises(StoreError, match="is not a safe name"):
        check_key(value, "run id")


def test_check_key_refuses_trailing_newline() -> None:
    with pytest.raises(StoreError):
        check_key("x\n", "run id")


@pytest.mark.parametrize("value", ["run1", "20261123T101500-3f9a1c", "a.b_c-d", "_cache",
                                   "A" * 128, "manifest.json"])
def test_check_key_accepts_safe_names(value: str) -> None:
    assert check_key(value, "run id") == value


@pytest.mark.parametrize("parts", [("p", "../r"), ("p", "r/../../x"), ("p", ""), ("p//q",),
                                   ("p", ".git"), ("p", "r\\..\\x")])
def test_uri_checks_every_segment(store: Store, parts: tuple[str, ...]) -> None:
    with pytest.raises(StoreError, match="storage key segment"):
        store.uri(*parts)


def test_uri_joins_under_the_root(store: Store) -> None:
    assert store.uri("p", "r/s", "x.json") == f"{store.root}/p/r/s/x.json"


def test_put_bytes_refuses_uri_escaping_the_root(store: Store, tmp_path: Path) -> None:
    try:
        with pytest.raises(StoreError):
            store.put_bytes(f"{store.root}/../outside.txt", b"x")
    finally:
        assert not (tmp_path / "outside.txt").exists(), "wrote outside the store root"


def test_other_filesystem_uri_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="not on this store's filesystem"):
        store.get_bytes("memory://bucket/x.json")


# --------------------------------------------------------------------------- to_uri


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://bucket/prefix/", "s3://bucket/prefix"),
        ("s3://bucket/prefix", "s3://bucket/prefix"),
        ("gs://b/p//", "gs://b/p"),
        ("/abs/path/", "file:///abs/path"),
        ("/abs/a/../b", "file:///abs/b"),
        ("file:///abs/a/../b", "file:///abs/b"),
        ("rel/x", "file:///base/dir/rel/x"),
        ("../up", "file:///base/up"),
        ("./here", "file:///base/dir/here"),
    ],
)
def test_to_uri(location: str, expected: str) -> None:
    assert to_uri(location, Path("/base/dir")) == expected


def test_to_uri_relative_defaults_to_cwd_and_expands_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert to_uri("data.csv") == (tmp_path / "data.csv").resolve().as_uri()
    assert to_uri("~/x.csv") == "file://" + str((tmp_path / "home" / "x.csv").resolve())


def test_to_uri_resolves_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert to_uri("link/f.csv", tmp_path) == "file://" + str(real / "f.csv")


def test_store_root_is_normalised() -> None:
    assert Store("file:///tmp/x/").root == "file:///tmp/x"
    assert repr(Store("s3://b/p")) == "Store('s3://b/p')"


def test_create_bytes_writes_once_and_refuses_a_filesystem_without_it(tmp_path: Path) -> None:
    memory = Store("memory://conveyor-test")
    with pytest.raises(StoreError, match="exclusive create needs a local folder or S3"):
        memory.create_bytes("memory://conveyor-test/x.json", b"{}")
    local = Store(tmp_path.as_uri())
    first = local.create_bytes(f"{tmp_path.as_uri()}/c/x.json", b"1")
    assert first is not None and first.size == 1
    assert local.create_bytes(f"{tmp_path.as_uri()}/c/x.json", b"2") is None
    assert (tmp_path / "c" / "x.json").read_bytes() == b"1"
    assert os.listdir(tmp_path / "c") == ["x.json"]  # no temporary files left
    with pytest.raises(StoreError, match="not allowed"):
        local.create_bytes(f"{tmp_path.as_uri()}/c/../y.json", b"3")


def test_create_bytes_has_one_winner_among_racing_processes(tmp_path: Path) -> None:
    import multiprocessing

    uri = f"{tmp_path.as_uri()}/race/claim.json"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        won = pool.starmap(_create, [(tmp_path.as_uri(), uri, str(i).encode())
                                     for i in range(16)])
    assert sum(won) == 1
    assert (tmp_path / "race" / "claim.json").read_bytes() == str(won.index(True)).encode()


def _create(root: str, uri: str, data: bytes) -> bool:
    return Store(root).create_bytes(uri, data) is not None


def test_size_counts_a_file_a_folder_and_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path.as_uri())
    store.put_bytes(store.uri("run", "a.bin"), b"x" * 10)
    store.put_bytes(store.uri("run", "step", "b.bin"), b"y" * 32)
    assert store.size(store.uri("run", "a.bin")) == 10
    assert store.size(store.uri("run")) == 42
    assert store.size(store.uri("gone")) == 0


def test_store_root_is_the_spec_s_root_or_the_home_s_artifacts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    assert store_root() == (tmp_path / "home" / "artifacts").resolve().as_uri()
    assert store_root("") == store_root(None) == store_root()
    assert store_root("runs", tmp_path) == (tmp_path / "runs").resolve().as_uri()
    assert store_root("s3://bucket/runs/", tmp_path) == "s3://bucket/runs"
