"""The artifact store: object storage addressed by URI through fsspec, with atomic writes.

Layout: ``{root}/{pipeline}/{run_id}/{step}/{artifact}``. Every write goes to a temporary key
and is moved into place (local files), or is one PUT (object stores, where an object appears
whole or not at all), so a failed write never leaves a partial object at a final key. Every
write returns an :class:`ArtifactRef` with the content's sha256, and reads can verify it.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import io
import json
import logging
import os
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from conveyor.errors import ConveyorError, StoreError
from conveyor.spec.identity import resolve_location

__all__ = [
    "HOME_MARKERS",
    "ArtifactRef",
    "Home",
    "Store",
    "check_key",
    "files_digest",
    "folder_digest",
    "home_dir",
    "locate_home",
    "store_root",
    "to_uri",
    "write_atomic",
]

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_MEMO_SIZE = 32
#: The process memo keeps a decoded table only up to this many bytes in memory, and tables
#: up to this many in all (ADR 0050): re-reading a small table costs more than keeping it,
#: a large one costs its size in memory for the whole run.
MEMO_TABLE_BYTES = 16 * 2**20
MEMO_TABLES_BYTES = 64 * 2**20
#: A large table goes to Arrow, on its way to Parquet, this many bytes of rows at a time.
_SLICE_BYTES = 32 * 2**20


#: What makes a folder a project whose runs share one home (ADR 0024), nearest first.
HOME_MARKERS = (".conveyor", "pyproject.toml", ".git")


@dataclass(frozen=True)
class Home:
    """Where the embedded default keeps everything, and why there.

    Attributes:
        path: the folder (the Store under ``artifacts/``, ``mlflow.db``, ``exports/``).
        reason: how it was chosen, for the terminal (``CONVEYOR_HOME``, a project marker).
    """

    path: Path
    reason: str


#: A home given for the current call (``conveyor.run(..., home=...)``): per thread and
#: per task, never process-wide, so two calls with different homes can run at once.
_GIVEN_HOME: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "conveyor_home", default=None)


@contextlib.contextmanager
def use_home(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Within the block, in this thread or task only, the home is ``path``.

    It wins over ``CONVEYOR_HOME`` and the project rule; nothing process-wide changes.
    """
    chosen = Path(path).expanduser().resolve()
    token = _GIVEN_HOME.set(chosen)
    try:
        yield chosen
    finally:
        _GIVEN_HOME.reset(token)


def locate_home(*starts: Path) -> Home:
    """The home: one given by :func:`use_home`, else ``CONVEYOR_HOME``, else ``.conveyor`` in
    the nearest project, else ``~``'s.

    The project is the nearest folder, going up from each of ``starts`` (the spec's folder)
    and then from the working folder, that holds a ``.conveyor/`` folder, a
    ``pyproject.toml`` or a ``.git``. So every command run inside one project, from any of
    its folders, uses the same Store and MLflow registry.
    """
    given = _GIVEN_HOME.get()
    if given is not None:
        return Home(given, "given to this call")
    chosen = os.environ.get("CONVEYOR_HOME")
    if chosen:
        return Home(Path(chosen).expanduser().resolve(), "CONVEYOR_HOME")
    for start in (*starts, Path.cwd()):
        folder = Path(start).expanduser().resolve()
        for candidate in (folder, *folder.parents):
            for marker in HOME_MARKERS:
                found = candidate / marker
                if found.is_dir() if marker == ".conveyor" else found.exists():
                    return Home(candidate / ".conveyor", f"project folder, has {found}")
    try:
        user = Path.home().resolve()
    except RuntimeError:  # no HOME and no passwd entry (a bare container)
        return Home(Path.cwd().resolve() / ".conveyor", "no project folder and no user home")
    return Home(user / ".conveyor", "no project folder found")


def home_dir() -> Path:
    """The embedded default's home: see :func:`locate_home` (from the working folder)."""
    return locate_home().path


def to_uri(location: str, base_dir: Path | None = None) -> str:
    """A URI with a scheme for a location from a user; bare paths resolve against ``base_dir``.

    The spec hash resolves locations by the same rule (one definition, in the spec layer).
    """
    return resolve_location(location, base_dir or Path.cwd())


def store_root(root: str | None = None, base_dir: Path | None = None) -> str:
    """The root URI of a store: ``root`` as a spec spells it, or the embedded default.

    Args:
        root: ``store.root`` of a spec or lab spec (a path or URI); ``None`` or empty for
            the default, ``CONVEYOR_HOME/artifacts`` (see :func:`locate_home`).
        base_dir: what a relative ``root`` resolves against (the spec's folder).
    """
    return to_uri(root, base_dir) if root else (home_dir() / "artifacts").as_uri()


def write_atomic(path: str | os.PathLike[str], data: bytes,
                 publish: Callable[[str, str], None] | None = None) -> None:
    """Write a local file whole or not at all: a synced temporary file, then ``publish``.

    The temporary file sits beside ``path`` (same filesystem) under a unique name, so
    concurrent writers never share one. ``publish`` is ``os.replace`` by default (last writer
    wins) or ``os.link`` (refuses an existing ``path`` with ``FileExistsError``: exclusive
    create).
    """
    path = os.fspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder or ".", exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        (publish or os.replace)(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_key(value: str, what: str) -> str:
    """Refuse a name that would be unsafe as one segment of a storage key."""
    if not isinstance(value, str) or not _KEY.fullmatch(value) or ".." in value:
        raise StoreError(
            f"{what} {value!r} is not a safe name: use letters, digits, '.', '_' or '-' "
            "(at most 128, no '..')"
        )
    return value


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact is and what it holds.

    Attributes:
        uri: its URI (a folder for a model).
        sha256: the content hash (for a folder, the hash of its files' names and hashes).
        size: bytes stored.
    """

    uri: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactRef:
        return cls(uri=data["uri"], sha256=data["sha256"], size=int(data["size"]))


class Store:
    """Artifact storage under one root URI.

    Args:
        root: the root URI (``file:///abs/path``, ``s3://bucket/prefix``).
        storage_options: fsspec options for the root's filesystem (never secrets; those come
            from the environment or a profile).
    """

    def __init__(self, root: str, storage_options: dict[str, Any] | None = None) -> None:
        self.root = root.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self._fs: fsspec.AbstractFileSystem | None = None
        self._memo: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._memo_bytes: dict[tuple[str, str], int] = {}

    def __repr__(self) -> str:
        return f"Store({self.root!r})"

    # ------------------------------------------------------------------ addressing
    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The filesystem, built on first use (never at import or parse time)."""
        if self._fs is None:
            options = dict(self.storage_options)
            if self.root.startswith(("s3://", "s3a://")):
                # botocore waits 60 s per connect and retries for minutes by default
                config = dict(options.get("config_kwargs") or {})
                config.setdefault("connect_timeout", 10)
                config.setdefault("read_timeout", 60)
                config.setdefault("retries", {"max_attempts": 3, "mode": "standard"})
                options["config_kwargs"] = config
            try:
                self._fs, _ = fsspec.core.url_to_fs(self.root, **options)
            except (ImportError, ValueError) as exc:
                raise StoreError(f"cannot open store {self.root}: {exc}") from exc
        return self._fs

    def uri(self, *parts: str) -> str:
        """The URI of ``parts`` under the root; each part must be a safe key."""
        for part in parts:
            for segment in part.split("/"):
                check_key(segment, "storage key segment")
        return "/".join((self.root, *parts))

    def _path(self, uri: str) -> str:
        rest = uri[len(self.root):] if uri.startswith(self.root) else uri.split("://", 1)[-1]
        if any(segment in ("..", ".") for segment in rest.replace("\\", "/").split("/")):
            raise StoreError(f"{uri}: '.' and '..' are not allowed in a storage key")
        if not uri.startswith(self.root + "/") and uri != self.root:
            fs, path = fsspec.core.url_to_fs(uri, **self.storage_options)
            if type(fs) is not type(self.fs):
                raise StoreError(f"{uri} is not on this store's filesystem ({self.root})")
            return path
        return self.fs._strip_protocol(uri)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    # ------------------------------------------------------------------ bytes
    def put_bytes(self, uri: str, data: bytes) -> ArtifactRef:
        """Write ``data`` at ``uri`` atomically, replacing what is there; its reference."""
        path = self._path(uri)
        try:
            if self.is_local:
                write_atomic(path, data)
            else:
                # One PUT: the object appears whole or not at all (an exception inside
                # ``fs.open(..., "wb")`` would publish a partial object on close).
                self.fs.pipe_file(path, data)
        except Exception as exc:
            raise StoreError(f"cannot write {uri}: {exc}") from exc
        return ArtifactRef(uri=uri, sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def create_bytes(self, uri: str, data: bytes) -> ArtifactRef | None:
        """Write ``data`` at ``uri`` only if nothing is there, atomically; ``None`` if taken.

        Of several writers racing for one ``uri``, exactly one gets a reference: a hard link
        of a complete temporary file on a local folder (``os.link`` refuses an existing
        name), a conditional PUT (``If-None-Match: *``) on S3.

        Raises:
            StoreError: the filesystem offers no atomic exclusive create, or refused.
        """
        path = self._path(uri)
        ref = ArtifactRef(uri=uri, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        protocols = {self.fs.protocol} if isinstance(self.fs.protocol, str) \
            else set(self.fs.protocol)
        if self.is_local:
            try:
                write_atomic(path, data, os.link)
            except FileExistsError:
                return None
            except OSError as exc:
                raise StoreError(f"cannot create {uri}: {exc}") from exc
            return ref
        if protocols & {"s3", "s3a"}:
            try:
                self.fs.pipe_file(path, data, mode="create")
            except FileExistsError:
                return None
            except OSError as exc:
                # 409 ConditionalRequestConflict: another conditional PUT is in flight.
                self.fs.invalidate_cache(path)
                if self.fs.exists(path):
                    return None
                raise StoreError(f"cannot create {uri}: {exc}") from exc
            return ref
        raise StoreError(f"{uri}: an exclusive create needs a local folder or S3 (conditional "
                         "writes), not " + ", ".join(sorted(protocols)))

    def get_bytes(self, uri: str, *, sha256: str | None = None) -> bytes:
        """Read ``uri``; with ``sha256``, refuse content that does not match it."""
        try:
            data = self.fs.cat_file(self._path(uri))
        except FileNotFoundError:
            raise StoreError(f"artifact not found: {uri}") from None
        except Exception as exc:
            raise StoreError(f"cannot read {uri}: {exc}") from exc
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise StoreError(f"artifact {uri} does not match its recorded sha256 (tampered?)")
        return data

    def local_file(self, ref: ArtifactRef, folder: Path) -> Path:
        """A local file holding the artifact ``ref``, its sha256 checked by a streamed read:
        the file itself in a local store, else a copy downloaded into ``folder``. For tables
        read in chunks, never whole in memory (ADR 0051)."""
        path = self._path(ref.uri)
        try:
            if not self.is_local:
                local = folder / f"{uuid.uuid4().hex}-{os.path.basename(path)}"
                self.fs.get_file(path, str(local))
                path = str(local)
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except FileNotFoundError:
            raise StoreError(f"artifact not found: {ref.uri}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {ref.uri}: {exc}") from exc
        if digest.hexdigest() != ref.sha256:
            raise StoreError(f"artifact {ref.uri} does not match its recorded sha256 (tampered?)")
        return Path(path)

    def exists(self, uri: str) -> bool:
        try:
            return bool(self.fs.exists(self._path(uri)))
        except Exception as exc:
            raise StoreError(f"cannot reach {uri}: {exc}") from exc

    def delete(self, uri: str) -> None:
        path = self._path(uri)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def size(self, uri: str) -> int:
        """Bytes under ``uri`` (a file, or a folder with everything below it)."""
        try:
            return int(self.fs.du(self._path(uri)))
        except FileNotFoundError:
            return 0
        except Exception as exc:
            raise StoreError(f"cannot measure {uri}: {exc}") from exc

    def list(self, uri: str) -> list[str]:
        """Names directly under ``uri`` (empty when it does not exist)."""
        try:
            entries = self.fs.ls(self._path(uri), detail=False)
        except FileNotFoundError:
            return []
        return sorted(os.path.basename(str(e).rstrip("/")) for e in entries)

    # ------------------------------------------------------------------ typed
    def put_json(self, uri: str, data: Any) -> ArtifactRef:
        text = json.dumps(data, indent=2, sort_keys=True, default=str, allow_nan=False)
        return self.put_bytes(uri, text.encode() + b"\n")

    def get_json(self, uri: str, *, sha256: str | None = None) -> Any:
        return json.loads(self.get_bytes(uri, sha256=sha256))

    def put_table(self, uri: str, frame: Any) -> ArtifactRef:
        """Write a pandas DataFrame as Parquet; a small one is kept for this process's later
        reads (a shallow copy: copy-on-write keeps the caller's later edits out of it)."""
        ref = self.put_bytes(uri, _parquet_bytes(frame))
        self._remember_table((ref.uri, ref.sha256), frame)
        return ref

    # -- chunked tables (ADR 0044): a source read in chunks, never whole in memory
    def put_table_batches(self, uri: str, frames: Iterable[Any], *,
                          check: Callable[[int, list[str]], None] | None = None,
                          ) -> tuple[ArtifactRef, int, list[str]]:
        """Write DataFrame chunks as one Parquet table at ``uri``, in bounded memory.

        The chunks go to a local temporary file (their types widened as later chunks need,
        :mod:`conveyor.store.tables`), which is published whole once the last chunk is in:
        an exception from ``frames`` publishes nothing.

        Args:
            uri: where the table goes.
            frames: the chunks (pandas DataFrames with the same columns).
            check: called with the row count and columns before anything is published; an
                exception it raises publishes nothing.

        Returns:
            The reference, the number of rows and the column names.
        """
        from conveyor.store.tables import write_batches

        path = self._path(uri)
        local_dir = os.path.dirname(path) if self.is_local else None
        if local_dir:
            os.makedirs(local_dir, exist_ok=True)
        tmp, writer, sha256 = write_batches(frames, local_dir)
        try:
            if check is not None:
                check(writer.rows, writer.columns or [])
            size = tmp.stat().st_size
            if self.is_local:
                os.replace(tmp, path)
            else:  # one (multipart) upload: an unfinished one leaves no object behind
                self.fs.put_file(str(tmp), path)
        except ConveyorError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot write {uri}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return ArtifactRef(uri=uri, sha256=sha256, size=size), writer.rows, writer.columns or []

    def put_table_once(self, uri: str, frame: Any) -> ArtifactRef:
        """Write ``frame`` at ``uri`` unless something is there; the reference of what is.

        For a table whose ``uri`` is derived from its content (a hold-out set): the first
        writer's bytes stay, so every version registered with that set names the same hash.
        """
        if self.exists(uri):
            data = self.get_bytes(uri)
            return ArtifactRef(uri=uri, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        return self.put_table(uri, frame)

    def get_table(self, ref: ArtifactRef) -> Any:
        """Read a Parquet table, verifying its hash (the caller's own: it may change it).

        A small table comes from this process's memo (a shallow copy, which copy-on-write
        keeps apart from the memo); a large one is read again from its bytes, which are let
        go before the frame is built (ADR 0050).
        """
        key = (ref.uri, ref.sha256)
        cached = self._memo.get(key)
        if cached is not None:
            self._memo.move_to_end(key)
            return cached.copy(deep=False)
        frame = _read_parquet(self.get_bytes(ref.uri, sha256=ref.sha256))
        self._remember_table(key, frame)
        return frame

    def put_dir(self, uri: str, local_dir: Path) -> ArtifactRef:
        """Upload a local folder (a saved model); each file is written atomically.

        The folder's hash covers every file's relative name and sha256, and is written last
        as ``_conveyor_dir.json`` inside the folder so readers can verify it.
        """
        files: dict[str, str] = {}
        size = 0
        for path in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
            rel = path.relative_to(local_dir).as_posix()
            ref = self.put_bytes(f"{uri}/{rel}", path.read_bytes())
            files[rel] = ref.sha256
            size += ref.size
        digest = files_digest(files)
        self.put_json(f"{uri}/_conveyor_dir.json", {"files": files, "sha256": digest})
        return ArtifactRef(uri=uri, sha256=digest, size=size)

    def get_dir(self, ref: ArtifactRef, local_dir: Path) -> Path:
        """Download a folder written by :meth:`put_dir`, verifying every file's hash."""
        index = self.get_json(f"{ref.uri}/_conveyor_dir.json")
        files: dict[str, str] = index["files"]
        if files_digest(files) != ref.sha256:
            raise StoreError(f"folder {ref.uri} does not match its recorded sha256 (tampered?)")
        for rel, sha in files.items():
            target = Path(local_dir) / rel
            if not target.resolve().is_relative_to(Path(local_dir).resolve()):
                raise StoreError(f"folder {ref.uri} lists a file outside it: {rel!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.get_bytes(f"{ref.uri}/{rel}", sha256=sha))
        return Path(local_dir)

    def copy_dir(self, ref: ArtifactRef, target: Store, uri: str) -> ArtifactRef:
        """Copy a folder written by :meth:`put_dir` to ``uri`` on ``target``, verified."""
        index = self.get_json(f"{ref.uri}/_conveyor_dir.json")
        files: dict[str, str] = index["files"]
        if files_digest(files) != ref.sha256:
            raise StoreError(f"folder {ref.uri} does not match its recorded sha256 (tampered?)")
        size = 0
        for rel in files:
            for segment in rel.split("/"):
                check_key(segment, f"file name in {ref.uri}")
        for rel, sha in files.items():
            size += target.put_bytes(f"{uri}/{rel}", self.get_bytes(f"{ref.uri}/{rel}",
                                                                    sha256=sha)).size
        target.put_json(f"{uri}/_conveyor_dir.json", index)
        return ArtifactRef(uri=uri, sha256=ref.sha256, size=size)

    # ------------------------------------------------------------------ memo
    def remember(self, ref: ArtifactRef, value: Any) -> None:
        """Keep a decoded object for this process, keyed by URI and hash (the local runner)."""
        self._remember((ref.uri, ref.sha256), value)

    def recall(self, ref: ArtifactRef) -> Any | None:
        return self._memo.get((ref.uri, ref.sha256))

    def _remember(self, key: tuple[str, str], value: Any, size: int = 0) -> None:
        self._memo[key] = value
        self._memo_bytes[key] = size
        self._memo.move_to_end(key)
        while len(self._memo) > _MEMO_SIZE or (
                len(self._memo) > 1 and sum(self._memo_bytes.values()) > MEMO_TABLES_BYTES):
            old, _ = self._memo.popitem(last=False)
            self._memo_bytes.pop(old, None)

    def _remember_table(self, key: tuple[str, str], frame: Any) -> None:
        """Keep ``frame`` (a shallow copy) if it is small; forget a stale one if not."""
        size = int(frame.memory_usage(index=True, deep=False).sum())
        if size > MEMO_TABLE_BYTES:
            self._memo.pop(key, None)
            self._memo_bytes.pop(key, None)
            return
        self._remember(key, frame.copy(deep=False), size)


def _read_parquet(data: bytes) -> Any:
    """A DataFrame from Parquet bytes, as ``pd.read_parquet`` gives it, in less memory (ADR
    0050): Arrow reads the bytes in place (a ``BytesIO`` it would copy in), each Arrow column
    goes once pandas has it (``self_destruct``, one block per column, so no block is
    assembled from copies), and Arrow's pool gives the decoding buffers back at once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data))
    # a block per column spares the consolidated copy (its peak is 1.3x the table's size
    # less at 1M rows); past 100 blocks pandas warns that a frame is fragmented on insert
    frame = table.to_pandas(split_blocks=table.num_columns <= 100, self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()  # the decoding buffers, before the caller works
    return frame


def _parquet_bytes(frame: Any) -> bytes:
    """``frame`` as Parquet, the table ``frame.to_parquet(index=False)`` writes, converted to
    Arrow a slice of rows at a time (a row group each): the whole-table Arrow copy that
    ``to_parquet`` makes would cost the table's size again (ADR 0050)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = int(frame.memory_usage(index=False, deep=False).sum())
    buffer = io.BytesIO()
    if size <= _SLICE_BYTES or len(frame) < 2:
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    rows = max(1, len(frame) * _SLICE_BYTES // size)
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    with pq.ParquetWriter(buffer, schema, compression="snappy") as writer:
        for start in range(0, len(frame), rows):
            writer.write_table(pa.Table.from_pandas(frame.iloc[start:start + rows],
                                                    schema=schema, preserve_index=False))
    return buffer.getvalue()


def files_digest(files: Mapping[str, str]) -> str:
    """The sha256 of a folder from its files' relative names and sha256s (order-free).

    One rule for every folder Conveyor hashes: a stored model (:meth:`Store.put_dir`) and a
    registered model's files.
    """
    lines = "".join(f"{name}\0{sha}\n" for name, sha in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def folder_digest(folder: Path, *, skip: frozenset[str] = frozenset()) -> str:
    """sha256 over a local folder's files (relative names and contents), as :meth:`Store.put_dir`
    records it; files named in ``skip`` (relative POSIX paths) are left out.

    Raises:
        StoreError: the folder holds no file.
    """
    files = {}
    for path in Path(folder).rglob("*"):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel not in skip:
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    if not files:
        raise StoreError(f"folder {folder} holds no files")
    return files_digest(files)
