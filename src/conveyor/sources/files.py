"""Tables from files reachable through fsspec: CSV, Parquet, JSON lines."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd

from conveyor.errors import DataError, StoreError
from conveyor.spec.models import FileSource
from conveyor.store import to_uri

__all__ = ["read_file_source"]

log = logging.getLogger(__name__)


def _format(source: FileSource, uri: str) -> str:
    if source.format:
        return source.format
    suffix = Path(uri.split("?", 1)[0]).suffix.lower()
    return {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(
        suffix, "csv"
    )


def read_file_source(source: FileSource, base_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the table a file source names.

    Returns:
        The table and facts about it: its URI, byte size, and the line of the first data row
        (so later errors can name a line of the file).

    Raises:
        DataError: the file is missing, too large, empty, not decodable or malformed.
    """
    uri = to_uri(source.uri, base_dir)
    name = uri.rsplit("/", 1)[-1]
    try:
        fs, path = fsspec.core.url_to_fs(uri, **source.storage_options)
        info = fs.info(path)
    except FileNotFoundError:
        raise DataError(f"data file not found: {uri} (data.uri)") from None
    except ImportError as exc:
        raise DataError(f"cannot read {uri}: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"cannot reach {uri}: {exc}") from exc
    if info.get("type") == "directory":
        raise DataError(f"data.uri {uri} is a folder; name a file")
    size = int(info.get("size") or 0)
    if size > source.max_bytes:
        raise DataError(
            f"{name} is {size:,} bytes, over the limit of {source.max_bytes:,} (data.max_bytes)"
        )
    if size == 0:
        raise DataError(f"{name} is empty (0 bytes)")
    raw = fs.cat_file(path)
    fmt = _format(source, uri)
    first_line = 1
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(io.BytesIO(raw))
        elif fmt == "jsonl":
            frame = pd.read_json(io.BytesIO(raw), lines=True, dtype=False)
        else:
            text = _decode(raw, name)
            frame = _read_csv(text, source, name)
            first_line = 2 if source.header else 1
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
    return frame, {"uri": uri, "bytes": size, "first_line": first_line, "format": fmt}


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")  # a BOM is not part of the first column's name
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{name} line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8; "
            "re-save the file as UTF-8"
        ) from None


def _read_csv(text: str, source: FileSource, name: str) -> pd.DataFrame:
    if not text.strip():
        raise DataError(f"{name} is empty (only blank lines)")
    first = text.split("\n", 1)[0]
    fields = len(first.split(source.separator))
    if not source.header:
        if source.columns is None:
            raise DataError(f"{name} has no header row: name its columns in data.columns")
        if fields != len(source.columns):
            raise DataError(
                f"{name} has {fields} fields per row but data.columns names "
                f"{len(source.columns)}"
            )
    expected = len(source.columns) if not source.header and source.columns else fields
    _check_field_counts(text, source.separator, expected, name)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
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
        raise DataError(f"{name}: {_first_line(exc)}") from None
    if source.header and source.columns is not None:
        missing = [c for c in source.columns if c not in frame.columns]
        if missing:
            raise DataError(f"{name} has no column(s) {', '.join(missing)} (data.columns)")
        frame = frame[list(source.columns)]
    return frame


def _check_field_counts(text: str, separator: str, expected: int, name: str) -> None:
    """Refuse a row with more or fewer fields than the header: pandas would pad it with NaN."""
    reader = csv.reader(io.StringIO(text), delimiter=separator)
    for row in reader:
        if row and len(row) != expected:
            raise DataError(f"{name} line {reader.line_num}: {len(row)} fields, expected "
                            f"{expected}")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
