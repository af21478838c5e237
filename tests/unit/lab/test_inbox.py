"""The watched folder and the ledger: what is read, what is claimed, what is moved aside."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from conveyor.errors import BadInputError, StoreError
from conveyor.lab.inbox import Inbox, safe_name
from conveyor.lab.ledger import Ledger
from conveyor.store import Store

OLD = time.time() - 3600
CONFIG = b"model: svc\nparams: {C: 1.0}\n"


def drop(folder: Path, name: str, data: bytes = CONFIG, *, old: bool = True) -> Path:
    path = folder / name
    path.write_bytes(data)
    if old:
        os.utime(path, (OLD, OLD))
    return path


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store((tmp_path / "store").as_uri())


@pytest.mark.parametrize("name", ["rf.yaml", "RF small v2.yml", "a.json", "x_1-2+3.YAML",
                                  "9.yml"])
def test_plain_names_are_safe(name: str) -> None:
    assert safe_name(name)


@pytest.mark.parametrize("name", [
    ".hidden.yaml", ".rf.yaml.swp", "rf.yaml~", "~rf.yaml", "rf.yaml.part", "rf.yaml.tmp",
    "#rf.yaml#", "..yaml", "a..b.yaml", "../rf.yaml", "..%2frf.yaml", "a/b.yaml", "a\\b.yaml",
    "rf\n.yaml", "rf\x00.yaml", "rf\x1b[31m.yaml", "rf .yaml", "rf.yaml ", " rf.yaml",
    "r;f.yaml", "rf#x.yaml", "é.yaml", "a" * 130 + ".yaml", "rf.txt", "rf", "rejected",
    "rf  x.yaml",
])
def test_tricky_names_are_not_safe(name: str) -> None:
    assert not safe_name(name)


def test_scan_reads_only_safe_settled_regular_files(folder: Path, tmp_path: Path) -> None:
    drop(folder, "good.yaml")
    drop(folder, "good-copy.json", CONFIG)
    drop(folder, ".hidden.yaml")
    drop(folder, "rf.yaml~")
    drop(folder, "rf.yaml.part")
    drop(folder, "young.yaml", old=False)
    drop(folder, "big.yaml", b"#" * 5000)
    outside = tmp_path / "secret.yaml"
    outside.write_bytes(b"model: svc\n")
    os.utime(outside, (OLD, OLD))
    (folder / "link.yaml").symlink_to(outside)
    (folder / "inner-link.yaml").symlink_to(folder / "good.yaml")
    os.link(outside, folder / "hardlink.yaml")
    (folder / "sub").mkdir()
    drop(folder / "sub", "nested.yaml")
    os.mkfifo(folder / "pipe.yaml")

    scan = Inbox(folder.as_uri(), min_age=5, max_bytes=4096).scan()

    assert sorted(f.name for f in scan.files) == ["good-copy.json", "good.yaml"]
    assert all(f.sha256 == hashlib.sha256(CONFIG).hexdigest() for f in scan.files)
    reasons = {s.name: s.reason for s in scan.skipped}
    assert reasons == {
        ".hidden.yaml": "hidden or temporary file",
        "rf.yaml~": "not a .json, .yaml or .yml file",
        "rf.yaml.part": "not a .json, .yaml or .yml file",
        "young.yaml": "modified less than 5s ago (may be half-written)",
        "big.yaml": "larger than 4096 bytes",
        "link.yaml": "symlink",
        "inner-link.yaml": "symlink",
        "hardlink.yaml": "hard-linked file (it also lives outside the folder)",
        "pipe.yaml": "not a regular file",
    }


def test_a_file_being_written_is_caught_by_the_second_look(folder: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    path = drop(folder, "growing.yaml")
    inbox = Inbox(folder.as_uri(), min_age=0)
    real_read = os.read
    appended = []

    def read_while_appending(fd: int, n: int) -> bytes:
        chunk = real_read(fd, n)
        if not appended:  # a writer appends between our open and our read's end
            appended.append(1)
            with open(path, "ab") as handle:
                handle.write(b"# more\n")
        return chunk

    monkeypatch.setattr(os, "read", read_while_appending)
    scan = inbox.scan()
    assert scan.files == []
    assert [s.reason for s in scan.skipped] == ["changed while being read (still being written?)"]
    monkeypatch.setattr(os, "read", real_read)
    assert [f.name for f in inbox.scan().files] == ["growing.yaml"]


def test_missing_folder_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        Inbox((tmp_path / "nope").as_uri()).scan()


def test_reject_writes_its_report_synced_and_whole(folder: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    drop(folder, "bad.yaml", b"model: nope\n")
    inbox = Inbox(folder.as_uri(), min_age=0)
    sha = hashlib.sha256(b"model: nope\n").hexdigest()
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    inbox.reject("bad.yaml", sha256=sha, error="first")
    assert synced  # the report reached the disk before it was renamed into place

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    drop(folder, "worse.yaml", b"model: worse\n")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StoreError, match="No space left"):
        inbox.reject("worse.yaml", sha256=hashlib.sha256(b"model: worse\n").hexdigest(),
                     error="second")
    # no half-written report and no temporary file left behind
    assert sorted(p.name for p in (folder / "rejected").iterdir()) == [
        "bad.yaml", "bad.yaml.error.json", "worse.yaml"]


def test_reject_moves_the_file_and_writes_the_error_beside_it(folder: Path) -> None:
    drop(folder, "bad.yaml", b"model: nope\n")
    drop(folder, "other.yaml")
    inbox = Inbox(folder.as_uri(), min_age=0)
    sha = hashlib.sha256(b"model: nope\n").hexdigest()
    report = inbox.reject("bad.yaml", sha256=sha, error=BadInputError("unknown estimator"),
                          lab="lab")
    assert report == f"{folder.as_uri()}/rejected/bad.yaml.error.json"
    assert not (folder / "bad.yaml").exists() and (folder / "other.yaml").exists()
    assert (folder / "rejected" / "bad.yaml").read_bytes() == b"model: nope\n"
    body = json.loads((folder / "rejected" / "bad.yaml.error.json").read_text())
    assert body["error"] == "unknown estimator" and body["sha256"] == sha
    assert body["error_type"] == "BadInputError" and body["rejected_at"]
    # the same name rejected again with other content does not overwrite the first
    drop(folder, "bad.yaml", b"model: nope2\n")
    sha2 = hashlib.sha256(b"model: nope2\n").hexdigest()
    inbox.reject("bad.yaml", sha256=sha2, error="again")
    assert (folder / "rejected" / f"{sha2[:12]}-bad.yaml").read_bytes() == b"model: nope2\n"
    assert (folder / "rejected" / "bad.yaml").read_bytes() == b"model: nope\n"
    # the rejected folder is never scanned
    assert [f.name for f in inbox.scan().files] == ["other.yaml"]


def test_reject_leaves_a_file_rewritten_since_it_failed(folder: Path) -> None:
    drop(folder, "x.yaml", b"model: fixed\n")
    inbox = Inbox(folder.as_uri(), min_age=0)
    inbox.reject("x.yaml", sha256="0" * 64, error="old content was bad")
    assert (folder / "x.yaml").exists()
    body = json.loads((folder / "rejected" / "x.yaml.error.json").read_text())
    assert body["moved_to"] is None
    assert inbox.reject("../x.yaml", sha256="0" * 64, error="x") is None


# --------------------------------------------------------------------------- ledger


def test_a_content_hash_is_claimed_once(store: Store) -> None:
    first, second = Ledger(store, "lab"), Ledger(store, "lab")
    claim = first.claim(CONFIG, file="a.yaml", file_uri="file:///in/a.yaml", owner="one")
    assert claim is not None and claim.attempt == 1 and claim.owner == "one"
    assert second.claim(CONFIG, file="copy.yaml", file_uri="file:///in/copy.yaml",
                        owner="two") is None
    assert first.read_blob(claim) == CONFIG
    assert not first.is_pending(claim.sha256)
    first.record(claim, {"status": "trained", "versions": ["1"]})
    assert second.outcome(claim.sha256)["versions"] == ["1"]
    # content with an outcome is never claimed again, even after the claim expired
    assert second.claim(CONFIG, file="again.yaml", file_uri="x", owner="two",
                        now=time.time() + 10**6) is None


def test_an_expired_claim_is_claimed_again_once(store: Store) -> None:
    ledger = Ledger(store, "lab", claim_ttl=60)
    first = ledger.claim(CONFIG, file="a.yaml", file_uri="x", owner="dead")
    assert first is not None
    assert ledger.claim(CONFIG, file="a.yaml", file_uri="x", owner="b") is None
    later = time.time() + 120
    assert ledger.is_pending(first.sha256, now=later)
    second = ledger.claim(CONFIG, file="a.yaml", file_uri="x", owner="b", now=later)
    assert second is not None and second.attempt == 2
    assert ledger.claim(CONFIG, file="a.yaml", file_uri="x", owner="c", now=later) is None


def test_a_released_claim_can_be_claimed_at_once(store: Store) -> None:
    ledger = Ledger(store, "lab")
    claim = ledger.claim(CONFIG, file="a.yaml", file_uri="x", owner="a")
    assert claim is not None
    ledger.release(claim)
    again = ledger.claim(CONFIG, file="a.yaml", file_uri="x", owner="b")
    assert again is not None and again.owner == "b"


def test_a_tampered_blob_is_refused(store: Store) -> None:
    ledger = Ledger(store, "lab")
    claim = ledger.claim(CONFIG, file="a.yaml", file_uri="x", owner="a")
    assert claim is not None
    store.put_bytes(ledger.blob_uri(claim.sha256), b"model: evil\n")
    with pytest.raises(StoreError, match="does not match"):
        ledger.read_blob(claim)


def _claim_all(inbox_uri: str, store_root: str, owner: str, start: multiprocessing.Barrier,
               out: multiprocessing.Queue) -> None:
    from conveyor.lab.inbox import Inbox
    from conveyor.lab.ledger import Ledger
    from conveyor.store import Store

    inbox, ledger = Inbox(inbox_uri, min_age=0), Ledger(Store(store_root), "lab")
    files = inbox.scan().files
    start.wait(timeout=60)
    won = [f.name for f in files
           if ledger.claim(f.data, file=f.name, file_uri=f.uri, owner=owner) is not None]
    out.put((owner, won))


def test_two_processes_claiming_the_same_files_get_one_winner_each(folder: Path,
                                                                   store: Store) -> None:
    names = [f"c{i:02d}.yaml" for i in range(40)]
    for i, name in enumerate(names):
        drop(folder, name, CONFIG + f"# {i}\n".encode())
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_claim_all, args=(folder.as_uri(), store.root, owner,
                                                    start, out))
               for owner in ("watcher-a", "watcher-b")]
    for worker in workers:
        worker.start()
    results = dict(out.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    a, b = set(results["watcher-a"]), set(results["watcher-b"])
    assert a | b == set(names)
    assert not a & b
    claims = sorted(os.listdir(Path(store.root.removeprefix("file://")) / "lab" / "_inbox" /
                               "claims"))
    assert len(claims) == 40 and all(c.endswith(".1.json") for c in claims)
