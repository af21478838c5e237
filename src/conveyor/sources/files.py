"""Tables from files reachable through fsspec: CSV, Parquet, JSON lines."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd

from conveyor.errors import DataError, StoreError
from conveyor.sources.base import KeyedMessage, SourceUnreachableError
from conveyor.sources.lines import LineMap
from conveyor.spec.models import FileSource
from conveyor.store import to_uri

__all__ = ["DataFileError", "list_file_source", "read_file_source", "scan_file_source",
           "stat_file_source"]

log = logging.getLogger(__name__)


def _format(source: FileSource, uri: str) -> str:
    if source.format:
        return source.format
    suffix = Path(uri.split("?", 1)[0]).suffix.lower()
    return {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(
        suffix, "csv"
    )


class DataFileError(KeyedMessage, DataError):
    """The data file itself is wrong (missing, a folder, empty, too large).

    Args:
        reason: what is wrong.
        key: the spec key to change (``data.uri``, ``data.max_bytes``).
    """


def _is_glob(uri: str) -> bool:
    return any(mark in uri.split("://", 1)[-1] for mark in "*?[")


def _is_data_file(path: str) -> bool:
    # partitioned writers leave markers beside the data (_SUCCESS, _metadata, .crc files)
    return not path.rstrip("/").rsplit("/", 1)[-1].startswith(("_", "."))


def list_file_source(
    source: FileSource, base_dir: Path, *, quick: bool = False
) -> tuple[str, list[tuple[str, int | None]]]:
    """The files a source names: one file, the files a glob matches, or those in a folder.

    Metadata requests only (a ``stat``, a listing, a HEAD); nothing is read. A folder is a
    partitioned data set: every file under it, in name order, except hidden and ``_`` files.

    Args:
        source: the ``data:`` section.
        base_dir: the folder relative paths resolve against (the spec's).
        quick: one attempt with short timeouts on a remote store (a check, not a run).

    Returns:
        The URI as given (resolved) and each file's URI and size (``None`` when an HTTP
        server does not say; the limit is then enforced while reading).

    Raises:
        DataFileError: nothing there, an empty folder, an empty or too large file, or an
            unreachable web server (naming ``data.uri``).
        StoreError: the object store holding it cannot be reached.
    """
    uri = to_uri(source.uri, base_dir)
    web = uri.startswith(("http://", "https://"))
    try:
        fs, path = fsspec.core.url_to_fs(uri, **_options(source, uri, quick=quick))
        if quick and hasattr(fs, "retries"):
            fs.retries = 1  # s3fs retries 5 times with backoff, on top of botocore's attempts
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        if _is_glob(uri) and not web:
            found = sorted(fs.glob(path, detail=True).items())
            files = [(p, i) for p, i in found if i.get("type") != "directory"
                     and _is_data_file(p)]
            if not files:
                raise DataFileError(f"no file matches {_shown(uri)}", key="data.uri")
        else:
            info = fs.info(path)
            if info.get("type") == "directory":
                found = sorted(fs.find(path, detail=True).items())
                files = [(p, i) for p, i in found if _is_data_file(p[len(path):])]
                if not files:
                    raise DataFileError(f"{_shown(uri)} is a folder with no data files in it",
                                        key="data.uri")
            else:
                files = [(path, info)]
    except FileNotFoundError as exc:
        cause = exc.__cause__  # fsspec's HTTP info() reports a dead host as "not found"
        if web and isinstance(cause, (OSError, TimeoutError)) and not isinstance(
                cause, FileNotFoundError):
            raise SourceUnreachableError(f"cannot reach {uri}: {_first_line(cause)}",
                                         key="data.uri") from None
        relative = "://" not in source.uri and not Path(source.uri).expanduser().is_absolute()
        how = f" ({source.uri} resolved against the spec's folder)" if relative else ""
        raise DataFileError(f"data file not found: {_shown(uri)}{how}", key="data.uri") from None
    except DataFileError:
        raise
    except ImportError as exc:
        raise DataFileError(f"cannot read {uri}: {exc}", key="data.uri") from exc
    except Exception as exc:  # botocore's and aiohttp's errors derive from Exception only
        if web:  # no answer may pass: exit 1 and a retry, the key named (ADR 0053)
            raise SourceUnreachableError(f"cannot reach {uri}: {_first_line(exc)}",
                                         key="data.uri") from None
        raise StoreError(f"cannot reach {uri}: {_first_line(exc)}") from exc
    listed: list[tuple[str, int | None]] = []
    for path_, info in files:
        file_uri = path_ if "://" in path_ or protocol in ("http", "https") else (
            f"{protocol}://{path_}" if protocol != "file" else "file://" + path_)
        size = info.get("size")
        if size is not None and int(size) > source.max_bytes:
            raise DataFileError(f"{_shown(file_uri)} is {int(size):,} bytes, over the limit "
                                f"of {source.max_bytes:,}", key="data.max_bytes")
        if size is not None and int(size) == 0 and len(files) == 1:
            raise DataFileError(f"{_shown(file_uri)} is empty (0 bytes)", key="data.uri")
        listed.append((file_uri, None if size is None else int(size)))
    return uri, listed


def stat_file_source(
    source: FileSource, base_dir: Path, *, quick: bool = False
) -> tuple[str, int]:
    """Check that the files a source names are there and within ``max_bytes``.

    Returns:
        The source's URI and the bytes its files hold (0 when a web server does not say).

    Raises:
        DataFileError: the file is missing, a folder without data files, empty or too large.
        StoreError: the store holding it cannot be reached.
    """
    uri, files = list_file_source(source, base_dir, quick=quick)
    return uri, sum(size or 0 for _, size in files)


def read_file_source(source: FileSource, base_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the whole table a file source names (:func:`scan_file_source`, concatenated).

    Returns:
        The table and facts about it: its URI, byte size, format, and where each row starts
        in the file (``lines``, a :class:`LineMap` as JSON; None for Parquet) so later errors
        can name the line an editor shows.

    Raises:
        DataError: the file is missing, too large, empty, not decodable or malformed.
    """
    from conveyor.store.tables import concat_frames

    frames, facts = scan_file_source(source, base_dir)
    frame = concat_frames(list(frames))
    return frame, facts


def scan_file_source(source: FileSource, base_dir: Path
                     ) -> tuple[Iterator[pd.DataFrame], dict[str, Any]]:
    """The table a file source names, as chunks of at most ``data.chunk_rows`` rows.

    Each file is read twice, one chunk at a time: a first pass checks every record's width
    and notes the line it starts on (so nothing is written when line 900,001 is malformed),
    a second parses it with pandas. A remote file is first copied to a local temporary file
    (one download, read twice). Nothing is held whole in memory.

    Returns:
        The chunks and the facts, which are complete once the chunks are exhausted: ``uri``,
        ``bytes``, ``format``, ``files``, ``first_line`` and ``lines`` (a one-file source;
        None for Parquet and for several files, whose first rows ``parts`` names instead).

    Raises:
        DataError: (while iterating) a file is missing, too large, empty, not decodable or
            malformed; the message names the file and line.
    """
    uri, files = list_file_source(source, base_dir)
    formats = {_format(source, f) for f, _ in files}
    if len(formats) > 1:
        odd = next(f for f, _ in files if _format(source, f) != _format(source, files[0][0]))
        raise DataFileError(f"{_shown(uri)} mixes formats ({', '.join(sorted(formats))}; "
                            f"{_shown(odd)}); set data.format or keep one kind of file",
                            key="data.format")
    fmt = formats.pop()
    facts: dict[str, Any] = {"uri": uri, "bytes": sum(s or 0 for _, s in files),
                             "format": fmt, "files": len(files), "first_line": None,
                             "lines": None}
    if len(files) > 1:
        facts["parts"] = []
    return _chunks(source, uri, files, fmt, facts), facts


def _chunks(source: FileSource, uri: str, files: list[tuple[str, int | None]], fmt: str,
            facts: dict[str, Any]) -> Iterator[pd.DataFrame]:
    rows = 0
    root = uri.split("://", 1)[-1].rstrip("/")
    for file_uri, _ in files:
        name = file_uri.rsplit("/", 1)[-1]
        partition = _hive(root, file_uri, source)
        with _local(file_uri, source) as local:
            reader = _FileReader(local, name, fmt, source)
            for chunk in reader.chunks():
                for key, value in partition.items():
                    if key in chunk.columns:
                        raise DataError(f"{name}: partition column {key!r} is also a column "
                                        "of the file (data.partitioning)")
                    chunk[key] = value
                yield chunk
            if len(files) == 1:
                facts["first_line"] = reader.lines.line(0) if reader.lines else None
                facts["lines"] = reader.lines.to_json() if reader.lines else None
            else:
                facts["parts"].append([rows, file_uri])
            rows += reader.rows
            log.info("read %s: %d rows", file_uri, reader.rows)
    if rows == 0 and len(files) > 1:
        raise DataError(f"{_shown(uri)}: its {len(files)} files hold no rows")


def _hive(root: str, file_uri: str, source: FileSource) -> dict[str, str]:
    """``{"year": "2026"}`` for ``root/year=2026/part-0.csv`` when data.partitioning is hive."""
    if source.partitioning != "hive":
        return {}
    relative = file_uri.split("://", 1)[-1]
    if relative.startswith(root):
        relative = relative[len(root):]
    parts = [p for p in relative.strip("/").split("/")[:-1] if "=" in p]
    return dict(p.split("=", 1) for p in parts)


@contextlib.contextmanager
def _local(file_uri: str, source: FileSource) -> Iterator[str]:
    """A local path holding the file: itself, or a temporary copy of a remote one."""
    if file_uri.startswith("file://"):
        yield fsspec.core.url_to_fs(file_uri)[1]
        return
    name = file_uri.rsplit("/", 1)[-1]
    handle, tmp = tempfile.mkstemp(prefix="conveyor-source-", suffix="-" + name[-40:])
    try:
        copied = 0
        try:
            with os.fdopen(handle, "wb") as out, fsspec.open(
                    file_uri, "rb", **_options(source, file_uri)) as remote:
                for block in iter(lambda: remote.read(1 << 20), b""):
                    copied += len(block)
                    if copied > source.max_bytes:
                        raise DataFileError(f"{file_uri} is over the limit of "
                                            f"{source.max_bytes:,} bytes", key="data.max_bytes")
                    out.write(block)
        except DataFileError:
            raise
        except FileNotFoundError:
            raise DataFileError(f"data file not found: {file_uri}", key="data.uri") from None
        except Exception as exc:  # botocore's and aiohttp's errors derive from Exception only
            if file_uri.startswith(("http://", "https://")):
                raise DataFileError(f"cannot read {file_uri}: {_first_line(exc)}",
                                    key="data.uri") from None
            raise StoreError(f"cannot read {file_uri}: {_first_line(exc)}") from exc
        if copied == 0:
            raise DataFileError(f"{file_uri} is empty (0 bytes)", key="data.uri")
        yield tmp
    finally:
        Path(tmp).unlink(missing_ok=True)


class _FileReader:
    """One local file's rows, chunk by chunk; its line map once they are read."""

    def __init__(self, path: str, name: str, fmt: str, source: FileSource) -> None:
        self.path, self.name, self.fmt, self.source = path, name, fmt, source
        self.rows = 0
        self.lines: LineMap | None = None

    def chunks(self) -> Iterator[pd.DataFrame]:
        if Path(self.path).stat().st_size == 0:
            raise DataError(f"{self.name} is empty (0 bytes)")
        try:
            if self.fmt == "parquet":
                yield from self._parquet()
            elif self.fmt == "jsonl":
                yield from self._jsonl()
            else:
                yield from self._csv()
        except DataError:
            raise
        except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise DataError(f"{self.name} is not a readable {self.fmt} file: "
                            f"{_first_line(exc)}") from None
        if self.rows == 0:
            raise DataError(f"{self.name} has {self._nothing}")

    _nothing = "no rows"

    def _selected(self, frame: pd.DataFrame) -> pd.DataFrame:
        columns = self.source.columns
        if columns is not None and (self.fmt != "csv" or self.source.header):
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise DataError(f"{self.name} has no column(s) {', '.join(missing)} "
                                "(data.columns)")
            frame = frame[list(columns)]
        frame.columns = [str(c) for c in frame.columns]
        return frame

    def _parquet(self) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        with pq.ParquetFile(self.path) as table:
            if table.schema_arrow.names:
                self._nothing = "a header but no rows"
            for batch in table.iter_batches(batch_size=self.source.chunk_rows):
                frame = self._selected(batch.to_pandas())
                self.rows += len(frame)
                yield frame

    def _jsonl(self) -> Iterator[pd.DataFrame]:
        starts, count = _nonblank_lines(self.path)
        reader = pd.read_json(self.path, lines=True, dtype=False,
                              chunksize=self.source.chunk_rows, encoding="utf-8")
        with reader:
            for chunk in reader:
                frame = self._selected(_uniform(chunk))
                self.rows += len(frame)
                yield frame
        self.lines = _checked(starts, count, self.rows, self.name)

    def _csv(self) -> Iterator[pd.DataFrame]:
        source, name = self.source, self.name
        starts, count = _scan_csv(self.path, source, name)
        if count == 0:
            raise DataError(f"{name} has a header but no rows")
        try:
            reader = pd.read_csv(
                self.path, sep=source.separator, header=0 if source.header else None,
                names=None if source.header else source.columns, index_col=False,
                na_values=source.na_values, keep_default_na=False, skipinitialspace=True,
                encoding="utf-8-sig", chunksize=source.chunk_rows,
                # one type per column in a chunk: with pandas' default (low_memory) a chunk is
                # parsed in blocks, and a column of numbers with a typo after the first block
                # came out as ints and strs mixed, which Parquet refuses (exit 1, no line)
                low_memory=False)
            with reader:
                for chunk in reader:
                    frame = self._selected(chunk)
                    self.rows += len(frame)
                    yield frame
        except pd.errors.EmptyDataError:
            raise DataError(f"{name} has no columns") from None
        except pd.errors.ParserError as exc:
            raise DataError(f"{name}: {_parser_error(self.path, source.separator, exc)}"
                            ) from None
        self.lines = _checked(starts, count, self.rows, name)


def _options(source: FileSource, uri: str, *, quick: bool = False) -> dict[str, Any]:
    options = dict(source.storage_options)
    if uri.startswith(("s3://", "s3a://")):
        # botocore waits 60 s per connect and retries for minutes by default
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("connect_timeout", 3 if quick else 10)
        config.setdefault("read_timeout", 3 if quick else 60)
        config.setdefault("retries", {"max_attempts": 1 if quick else 3, "mode": "standard"})
        options["config_kwargs"] = config
        if quick:
            options["skip_instance_cache"] = True  # its retries are changed; share it with no one
    return options


def _shown(uri: str) -> str:
    """A local file as the path a user types; other URIs as they are."""
    return uri.removeprefix("file://")


def _uniform(frame: pd.DataFrame) -> pd.DataFrame:
    """JSON values of several types in one column (``1.5`` and ``"N/D"``) as text.

    Parquet stores one type per column; validation then finds the values that are not
    numbers and names their rows, as it does for a CSV file.
    """
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object:
            continue
        present = column[column.notna()]
        if not present.map(lambda v: isinstance(v, str)).all():
            frame[name] = column.map(
                lambda v: v if v is None or isinstance(v, str) or v != v
                else json.dumps(v) if isinstance(v, (dict, list)) else str(v))
    return frame


def _checked(starts: LineMap | None, count: int, rows: int, name: str) -> LineMap | None:
    """The rows' lines, if there is one per row of the table; else None (better no line
    than a wrong one)."""
    if count == rows:
        return starts
    log.warning("%s: pandas read %d rows where %d were counted; errors will name rows, not "
                "lines", name, rows, count)
    return None


def _nonblank_lines(path: str) -> tuple[LineMap | None, int]:
    """Where each non-blank line of a JSON-lines file starts (pandas skips blank ones)."""
    count = 0

    def starts() -> Iterator[int]:
        nonlocal count
        with open(path, "rb") as handle:
            for number, text in enumerate(handle, 1):
                if text.strip():
                    count += 1
                    yield number

    rows = starts()
    lines = LineMap.from_lines(rows)
    for _ in rows:  # past MAX_RUNS: counted, no longer mapped
        pass
    return (lines if count else None), count


def _text(path: str) -> io.TextIOWrapper:
    # universal newlines (\n, \r\n, \r) as pandas reads them; a BOM is not part of the
    # first column's name
    return open(path, encoding="utf-8-sig", newline=None)


def _bad_byte(path: str, name: str) -> DataError:
    """The error for the first byte that is not UTF-8, naming its line (read in binary)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as handle:
        for raw in handle:  # split on \n; a bare \r ends a line too
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as exc:
                before = raw[: exc.start].replace(b"\r\n", b"\n")
                line += before.count(b"\r")
                return DataError(f"{name} line {line}: byte 0x{raw[exc.start]:02x} is not "
                                 "UTF-8; re-save the file as UTF-8")
            line += 1 + raw.replace(b"\r\n", b"\n").rstrip(b"\n").count(b"\r")
    return DataError(f"{name} is not UTF-8; re-save the file as UTF-8")


def _records(handle: Iterable[str], separator: str, *, strict: bool = False
             ) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank record of a CSV text with the line it starts on, as an editor counts.

    Lines end with \\n, \\r\\n or \\r (as pandas reads them); a quoted field may span lines;
    blank and whitespace-only lines are skipped, as pandas skips them.
    """
    reader = csv.reader(handle, delimiter=separator, skipinitialspace=True, strict=strict)
    before = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _CsvSyntaxError(before + 1, str(exc)) from None
        start, before = before + 1, reader.line_num
        if row and row != [""]:
            yield start, row


class _CsvSyntaxError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _scan_csv(path: str, source: FileSource, name: str) -> tuple[LineMap | None, int]:
    """First pass over a CSV file: every record's width, and the line each row starts on.

    Returns:
        The rows' line map and the number of rows (the header not counted).
    """
    expected: int | None = len(source.columns) if not source.header and source.columns else None
    if not source.header and source.columns is None:
        raise DataError(f"{name} has no header row: name its columns in data.columns")
    count = 0
    seen_any = False

    def starts(handle: Iterable[str]) -> Iterator[int]:
        nonlocal expected, count, seen_any
        for line, row in _records(handle, source.separator):
            seen_any = True
            if expected is None:  # the header row sets the width
                expected = len(row)
                continue
            if len(row) != expected:
                if not count and not source.header:
                    raise DataError(
                        f"{name} has {len(row)} fields per row but data.columns names "
                        f"{expected}")
                raise DataError(f"{name} line {line}: {len(row)} fields, expected {expected}"
                                + _hint(row, source.separator))
            count += 1
            yield line

    try:
        with _text(path) as handle:
            rows = starts(handle)
            lines = LineMap.from_lines(rows)
            for _ in rows:  # past MAX_RUNS: checked and counted, no longer mapped
                pass
    except _CsvSyntaxError as exc:
        raise DataError(f"{name} line {exc.line}: {exc}") from None
    except UnicodeDecodeError:
        raise _bad_byte(path, name) from None
    if not seen_any:
        raise DataError(f"{name} is empty (only blank lines)")
    return (lines if count else None), count


def _hint(row: list[str], separator: str) -> str:
    """Why a row may have the wrong width: a field that spans lines means an open quote."""
    if any("\n" in field for field in row):
        return "; a quoted field in it spans lines (an unclosed quote?)"
    return ""


def _parser_error(path: str, separator: str, exc: Exception) -> str:
    """pandas counts rows, not lines: find the line with the strict reader where it can."""
    try:
        with _text(path) as handle:
            for _ in _records(handle, separator, strict=True):
                pass
    except _CsvSyntaxError as found:
        return f"line {found.line}: {found}"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
