"""Tables from files reachable through fsspec: CSV, Parquet, JSON lines."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd

from conveyor.errors import DataError, StoreError
from conveyor.sources.lines import LineMap
from conveyor.spec.models import FileSource
from conveyor.store import to_uri

__all__ = ["DataFileError", "read_file_source", "stat_file_source"]

log = logging.getLogger(__name__)


def _format(source: FileSource, uri: str) -> str:
    if source.format:
        return source.format
    suffix = Path(uri.split("?", 1)[0]).suffix.lower()
    return {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(
        suffix, "csv"
    )


class DataFileError(DataError):
    """The data file itself is wrong (missing, a folder, empty, too large).

    Args:
        reason: what is wrong.
        key: the spec key to change (``data.uri``, ``data.max_bytes``).
    """

    def __init__(self, reason: str, *, key: str) -> None:
        self.reason = reason
        self.key = key
        super().__init__(f"{reason} ({key})")


def stat_file_source(
    source: FileSource, base_dir: Path, *, quick: bool = False
) -> tuple[str, int]:
    """Check that the file a source names is there, is a file and is within ``max_bytes``.

    One metadata request (a ``stat``, or a HEAD on an object store); nothing is read.

    Args:
        source: the ``data:`` section.
        base_dir: the folder relative paths resolve against (the spec's).
        quick: one attempt with short timeouts on a remote store (a check, not a run).

    Returns:
        The file's URI and its size in bytes.

    Raises:
        DataFileError: the file is missing, is a folder, is empty or is too large.
        StoreError: the store holding it cannot be reached.
    """
    uri = to_uri(source.uri, base_dir)
    try:
        fs, path = fsspec.core.url_to_fs(uri, **_options(source, uri, quick=quick))
        if quick and hasattr(fs, "retries"):
            fs.retries = 1  # s3fs retries 5 times with backoff, on top of botocore's attempts
        info = fs.info(path)
    except FileNotFoundError:
        relative = "://" not in source.uri and not Path(source.uri).expanduser().is_absolute()
        how = f" ({source.uri} resolved against the spec's folder)" if relative else ""
        raise DataFileError(f"data file not found: {_shown(uri)}{how}", key="data.uri") from None
    except ImportError as exc:
        raise DataFileError(f"cannot read {uri}: {exc}", key="data.uri") from exc
    except Exception as exc:  # botocore's errors derive from Exception only
        raise StoreError(f"cannot reach {uri}: {_first_line(exc)}") from exc
    if info.get("type") == "directory":
        raise DataFileError(f"{_shown(uri)} is a folder; name a file", key="data.uri")
    size = int(info.get("size") or 0)
    if size > source.max_bytes:
        raise DataFileError(f"{_shown(uri)} is {size:,} bytes, over the limit of "
                            f"{source.max_bytes:,}", key="data.max_bytes")
    if size == 0:
        raise DataFileError(f"{_shown(uri)} is empty (0 bytes)", key="data.uri")
    return uri, size


def read_file_source(source: FileSource, base_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the table a file source names.

    Returns:
        The table and facts about it: its URI, byte size, format, and where each row starts
        in the file (``lines``, a :class:`LineMap` as JSON; None for Parquet) so later errors
        can name the line an editor shows.

    Raises:
        DataError: the file is missing, too large, empty, not decodable or malformed.
    """
    uri, size = stat_file_source(source, base_dir)
    name = uri.rsplit("/", 1)[-1]
    fs, path = fsspec.core.url_to_fs(uri, **_options(source, uri))
    raw = fs.cat_file(path)
    fmt = _format(source, uri)
    lines: LineMap | None = None
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(io.BytesIO(raw))
        elif fmt == "jsonl":
            frame = _uniform(pd.read_json(io.BytesIO(raw), lines=True, dtype=False))
            # pandas skips blank lines; every other line is one record
            starts = [i + 1 for i, text in enumerate(raw.split(b"\n")) if text.strip()]
            lines = _checked(starts, frame, name)
        else:
            text = _decode(raw, name)
            frame, lines = _read_csv(text, source, name)
    except DataError:
        raise
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{name} is not a readable {fmt} file: {_first_line(exc)}") from None
    if frame.empty:
        what = "a header but no rows" if len(frame.columns) else "no rows"
        raise DataError(f"{name} has {what}")
    if source.columns is not None and fmt != "csv":
        missing = [c for c in source.columns if c not in frame.columns]
        if missing:
            raise DataError(f"{name} has no column(s) {', '.join(missing)} (data.columns)")
        frame = frame[list(source.columns)]
    frame.columns = [str(c) for c in frame.columns]
    log.info("read %s: %d rows x %d columns", uri, len(frame), len(frame.columns))
    return frame, {"uri": uri, "bytes": size, "format": fmt,
                   "first_line": lines.line(0) if lines else None,
                   "lines": lines.to_json() if lines else None}


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


def _checked(starts: list[int], frame: pd.DataFrame, name: str) -> LineMap | None:
    """The rows' lines, if there is one per row of the table; else None (better no line
    than a wrong one)."""
    if len(starts) == len(frame):
        return LineMap.from_lines(starts) if starts else None
    log.warning("%s: pandas read %d rows where %d were counted; errors will name rows, not "
                "lines", name, len(frame), len(starts))
    return None


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")  # a BOM is not part of the first column's name
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1
        raise DataError(
            f"{name} line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8; "
            "re-save the file as UTF-8"
        ) from None


def _records(text: str, separator: str, *, strict: bool = False) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank record of a CSV text with the line it starts on, as an editor counts.

    Lines end with \\n, \\r\\n or \\r (as pandas reads them); a quoted field may span lines;
    blank and whitespace-only lines are skipped, as pandas skips them.
    """
    # TextIOWrapper decodes as it reads; io.StringIO(text) would hold 4 bytes a character
    # (763 MiB for a 200 MB file), the peak of a big run (ADR 0043)
    lines = io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="utf-8", newline=None)
    reader = csv.reader(lines, delimiter=separator, skipinitialspace=True, strict=strict)
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


def _read_csv(text: str, source: FileSource, name: str) -> tuple[pd.DataFrame, LineMap | None]:
    if not text.strip():
        raise DataError(f"{name} is empty (only blank lines)")
    starts: list[int] = []
    expected: int | None = len(source.columns) if not source.header and source.columns else None
    if not source.header and source.columns is None:
        raise DataError(f"{name} has no header row: name its columns in data.columns")
    try:
        for line, row in _records(text, source.separator):
            if expected is None:  # the header row sets the width
                expected = len(row)
                continue
            if len(row) != expected:
                if not starts and not source.header:
                    raise DataError(
                        f"{name} has {len(row)} fields per row but data.columns names "
                        f"{expected}")
                raise DataError(f"{name} line {line}: {len(row)} fields, expected {expected}"
                                + _hint(row, source.separator))
            starts.append(line)
    except _CsvSyntaxError as exc:
        raise DataError(f"{name} line {exc.line}: {exc}") from None
    try:
        frame = pd.read_csv(
            io.BytesIO(text.encode("utf-8")),  # not StringIO: 4 bytes a character
            encoding="utf-8",
            sep=source.separator,
            header=0 if source.header else None,
            names=None if source.header else source.columns,
            index_col=False,
            na_values=source.na_values,
            keep_default_na=False,
            skipinitialspace=True,
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} has no columns") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{name}: {_parser_error(text, source.separator, exc)}") from None
    if source.header and source.columns is not None:
        missing = [c for c in source.columns if c not in frame.columns]
        if missing:
            raise DataError(f"{name} has no column(s) {', '.join(missing)} (data.columns)")
        frame = frame[list(source.columns)]
    return frame, _checked(starts, frame, name)


def _hint(row: list[str], separator: str) -> str:
    """Why a row may have the wrong width: a field that spans lines means an open quote."""
    if any("\n" in field for field in row):
        return "; a quoted field in it spans lines (an unclosed quote?)"
    return ""


def _parser_error(text: str, separator: str, exc: Exception) -> str:
    """pandas counts rows, not lines: find the line with the strict reader where it can."""
    try:
        for _ in _records(text, separator, strict=True):
            pass
    except _CsvSyntaxError as found:
        return f"line {found.line}: {found}"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
