"""The watched folder: which files may be read, reading them safely, moving failures aside.

A file is read only when all of these hold (anything else is skipped with a reason, never
read, never moved):

* its name is plain: letters, digits, ``space . _ + -``, starting with a letter or digit,
  ending in ``.json``, ``.yaml`` or ``.yml``, no ``..``, at most 128 characters. This refuses
  dot files, editor and upload temporaries (``.x.swp``, ``x.yaml~``, ``x.yaml.part``),
  ``~``, control characters and every path trick (a name is one segment: no separators);
* it sits directly in the folder (no sub-folders are read; ``rejected/`` is one);
* it is a regular file with one link, not a symlink (opened with ``O_NOFOLLOW``, checked with
  ``fstat``): nothing outside the folder is ever read through it;
* it is not larger than ``max_bytes``;
* it is settled: last modified at least ``min_age`` seconds ago, and its size, mtime and
  inode are the same before and after the read (a writer still appending is caught even
  inside the age window). On S3 an object appears whole with its PUT, so age is enough.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from conveyor.errors import BadInputError, StoreError
from conveyor.ids import now_iso
from conveyor.store import write_atomic

__all__ = ["REJECTED_DIR", "Inbox", "InboxFile", "Scan", "Skipped", "safe_name"]

log = logging.getLogger(__name__)

REJECTED_DIR = "rejected"
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 ._+-]{0,118}[A-Za-z0-9_-])?\.(?:json|ya?ml)$",
                   re.IGNORECASE)


def safe_name(name: str) -> bool:
    """Whether ``name`` may be read from the inbox (see the module's rules)."""
    return bool(_NAME.match(name)) and ".." not in name and "  " not in name


@dataclass(frozen=True)
class InboxFile:
    """A settled, safe file of the inbox and its bytes."""

    name: str
    uri: str
    size: int
    mtime: float
    sha256: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Skipped:
    """A folder entry that was not read, and why."""

    name: str
    reason: str


@dataclass
class Scan:
    """One look at the inbox."""

    files: list[InboxFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


class Inbox:
    """A watched folder of config files (local path or ``s3://`` prefix).

    Args:
        uri: the folder's URI (``file:///abs/path`` or ``s3://bucket/prefix``).
        storage_options: fsspec options (never secrets).
        min_age: seconds a file must be left untouched before it is read.
        max_bytes: larger files are skipped.
    """

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None, *,
                 min_age: float = 5.0, max_bytes: int = 256 * 1024) -> None:
        self.uri = uri.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.min_age = min_age
        self.max_bytes = max_bytes
        self._fs: Any = None
        self._root: str = ""

    def __repr__(self) -> str:
        return f"Inbox({self.uri!r})"

    @property
    def fs(self) -> Any:
        if self._fs is None:
            try:
                self._fs, self._root = fsspec.core.url_to_fs(self.uri, **self.storage_options)
            except (ImportError, ValueError) as exc:
                raise StoreError(f"cannot open the watched folder {self.uri}: {exc}") from exc
            self._root = self._root.rstrip("/")
        return self._fs

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def file_uri(self, name: str) -> str:
        return f"{self.uri}/{name}"

    # ------------------------------------------------------------------ scanning
    def scan(self, *, now: float | None = None) -> Scan:
        """Look at the folder once; return the settled, safe files with their bytes."""
        now = time.time() if now is None else now
        if self.is_local:
            return self._scan_local(now)
        return self._scan_remote(now)

    def _scan_local(self, now: float) -> Scan:
        folder = os.path.realpath(self._root)
        if not os.path.isdir(folder):
            raise BadInputError(f"the watched folder {self.uri} does not exist; create it "
                                "or fix watch.folder in the lab spec")
        scan = Scan()
        with os.scandir(folder) as entries:  # sub-folders (rejected/ among them) are not read
            names = sorted(e.name for e in entries if not e.is_dir(follow_symlinks=False))
        for name in names:
            reason = self._why_not_name(name)
            if reason:
                scan.skipped.append(Skipped(name, reason))
                continue
            found = self._read_local(os.path.join(folder, name), now)
            if isinstance(found, str):
                if found != "directory":
                    scan.skipped.append(Skipped(name, found))
                continue
            data, st = found
            scan.files.append(InboxFile(name=name, uri=self.file_uri(name), size=len(data),
                                        mtime=st.st_mtime,
                                        sha256=hashlib.sha256(data).hexdigest(), data=data))
        return scan

    def _why_not_name(self, name: str) -> str:
        if safe_name(name):
            return ""
        if name.startswith("."):
            return "hidden or temporary file"
        if not name.lower().endswith((".json", ".yaml", ".yml")):
            return "not a .json, .yaml or .yml file"
        return "unsafe file name (only letters, digits, space, '.', '_', '+', '-')"

    def _read_local(self, path: str, now: float) -> tuple[bytes, os.stat_result] | str:
        """The file's bytes and stat, or the reason it was not read."""
        try:
            before = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return "vanished"
        if stat.S_ISLNK(before.st_mode):
            return "symlink"
        if stat.S_ISDIR(before.st_mode):
            return "directory"
        if not stat.S_ISREG(before.st_mode):
            return "not a regular file"
        if before.st_nlink != 1:
            return "hard-linked file (it also lives outside the folder)"
        if before.st_size > self.max_bytes:
            return f"larger than {self.max_bytes} bytes"
        if now - before.st_mtime < self.min_age:
            return f"modified less than {self.min_age:g}s ago (may be half-written)"
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:  # ELOOP: swapped for a symlink after the stat
            return f"cannot open safely ({exc.strerror})"
        try:
            opened = os.fstat(fd)
            if (opened.st_ino, opened.st_dev) != (before.st_ino, before.st_dev) \
                    or not stat.S_ISREG(opened.st_mode):
                return "replaced while being read"
            chunks = []
            remaining = self.max_bytes + 1
            while remaining > 0:
                chunk = os.read(fd, min(65536, remaining))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            data = b"".join(chunks)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if len(data) > self.max_bytes:
            return f"larger than {self.max_bytes} bytes"
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) \
                or len(data) != before.st_size:
            return "changed while being read (still being written?)"
        return data, after

    def _scan_remote(self, now: float) -> Scan:
        fs = self.fs
        try:
            fs.invalidate_cache(self._root)
            listing = fs.ls(self._root, detail=True)
        except FileNotFoundError:
            listing = []
        except OSError as exc:
            raise StoreError(f"cannot list the watched folder {self.uri}: {exc}") from exc
        scan = Scan()
        for info in sorted(listing, key=lambda i: str(i["name"])):
            key = str(info["name"]).rstrip("/")
            name = key.rsplit("/", 1)[-1]
            if info.get("type") == "directory" or name == REJECTED_DIR:
                continue
            if key != f"{self._root}/{name}":
                scan.skipped.append(Skipped(name, "outside the folder"))
                continue
            reason = self._why_not_name(name)
            if reason:
                scan.skipped.append(Skipped(name, reason))
                continue
            size = int(info.get("size") or 0)
            if size > self.max_bytes:
                scan.skipped.append(Skipped(name, f"larger than {self.max_bytes} bytes"))
                continue
            modified = _timestamp(info.get("LastModified") or info.get("mtime"))
            if modified is not None and now - modified < self.min_age:
                scan.skipped.append(Skipped(
                    name, f"modified less than {self.min_age:g}s ago (may be half-written)"))
                continue
            try:
                data = fs.cat_file(key)
            except FileNotFoundError:
                scan.skipped.append(Skipped(name, "vanished"))
                continue
            if len(data) != size:
                scan.skipped.append(Skipped(name, "changed while being read"))
                continue
            scan.files.append(InboxFile(name=name, uri=self.file_uri(name), size=size,
                                        mtime=modified or now,
                                        sha256=hashlib.sha256(data).hexdigest(), data=data))
        return scan

    def current_sha256(self, name: str) -> str | None:
        """The hash of the file ``name`` now (``None`` if it is gone or not readable)."""
        if not safe_name(name):
            return None
        if self.is_local:
            found = self._read_local(os.path.join(os.path.realpath(self._root), name),
                                     now=float("inf"))
            return hashlib.sha256(found[0]).hexdigest() if isinstance(found, tuple) else None
        try:
            return hashlib.sha256(self.fs.cat_file(f"{self._root}/{name}")).hexdigest()
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ rejecting
    def reject(self, name: str, *, sha256: str, error: BaseException | str,
               lab: str | None = None) -> str | None:
        """Move ``name`` to ``rejected/`` with ``<name>.error.json`` beside it.

        The file is moved only if it still holds the content that failed (``sha256``): a file
        rewritten since is left for the next scan. The error report is written either way.

        Returns:
            The URI of the error report, or ``None`` when ``name`` is not a safe name.
        """
        if not safe_name(name):
            return None
        moved = self.current_sha256(name) == sha256
        target = self._free_name(name, sha256)
        report = {
            "file": name, "sha256": sha256, "lab": lab,
            "error": str(error),
            "error_type": type(error).__name__ if not isinstance(error, str) else "Error",
            "rejected_at": now_iso(),
            "moved_to": f"{REJECTED_DIR}/{target}" if moved else None,
        }
        text = (json.dumps(report, indent=2, sort_keys=True) + "\n").encode()
        rejected = f"{self._root}/{REJECTED_DIR}"
        try:
            if self.is_local:
                os.makedirs(rejected, exist_ok=True)
                if moved:
                    _move_local(f"{self._root}/{name}", f"{rejected}/{target}")
                write_atomic(f"{rejected}/{target}.error.json", text)
            else:
                if moved:
                    self.fs.mv(f"{self._root}/{name}", f"{rejected}/{target}")
                self.fs.pipe_file(f"{rejected}/{target}.error.json", text)
        except OSError as exc:
            raise StoreError(f"cannot move {name} to {REJECTED_DIR}/ in {self.uri}: {exc}") \
                from exc
        log.warning("rejected %s (%s): %s", name, sha256[:12], error)
        return f"{self.uri}/{REJECTED_DIR}/{target}.error.json"

    def _free_name(self, name: str, sha256: str) -> str:
        """``name``, or ``<sha12>-name`` when ``rejected/`` already holds another ``name``."""
        for candidate in (name, f"{sha256[:12]}-{name}"):
            if not self.fs.exists(f"{self._root}/{REJECTED_DIR}/{candidate}"):
                return candidate
        return f"{sha256[:12]}-{int(time.time())}-{name}"


def _move_local(source: str, target: str) -> None:
    # link + unlink, not rename: rename would silently replace an existing target
    os.link(source, target, follow_symlinks=False)
    os.unlink(source)


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None
