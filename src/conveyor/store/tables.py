"""A table written as Parquet batch by batch, in bounded memory (ADR 0044).

A source read in chunks (a CSV larger than memory, a SQL cursor) hands its rows over as
pandas DataFrames, one chunk at a time. Each chunk's types are inferred on their own: a
column of integers in the first chunk may hold a missing value (float) or a typo (text) in
the tenth. :class:`BatchWriter` keeps one schema for the file and *widens* it when a chunk
needs more (null → bool → int64 → float64 → string): the rows already written are copied,
row group by row group, into a file with the wider schema, so the result is the table one
``pandas.read_csv`` of the whole file would give, column types included, without ever
holding more than one chunk.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["BatchWriter", "concat_frames", "write_batches"]

# The order types widen in; a pair not on this line (text and a date, say) becomes text.
_RANK = {"null": 0, "bool": 1, "int64": 2, "double": 3, "string": 4}


def _rank(kind: Any) -> str:
    import pyarrow as pa

    if pa.types.is_null(kind):
        return "null"
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_integer(kind):
        return "int64"
    if pa.types.is_floating(kind):
        return "double"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "string"
    return str(kind)


def _wider(left: Any, right: Any) -> Any:
    """The type that holds values of both ``left`` and ``right``."""
    import pyarrow as pa

    if left.equals(right):
        return left
    a, b = _rank(left), _rank(right)
    if a == "null":
        return right
    if b == "null":
        return left
    if a in _RANK and b in _RANK:
        top = max(a, b, key=_RANK.__getitem__)
        if {a, b} == {"bool", "int64"} or {a, b} == {"bool", "double"}:
            top = "string"  # pandas reads True and 1 in one column as text
        return {"bool": pa.bool_(), "int64": pa.int64(), "double": pa.float64(),
                "string": pa.string()}[top]
    return pa.string()


def _cast(table: Any, schema: Any) -> Any:
    """``table`` in ``schema`` (whose types are each as wide as the table's)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for field in schema:
        column = table.column(field.name)
        if not column.type.equals(field.type):
            if pa.types.is_string(field.type) and pa.types.is_floating(column.type):
                # 1.0 as "1.0" would differ from what pandas shows for the number; keep
                # whole numbers as the text a file would hold for them
                whole = pc.and_(pc.is_finite(column), pc.equal(column, pc.floor(column)))
                column = pc.if_else(whole,
                                    pc.cast(pc.cast(column, pa.int64(), safe=False),
                                            pa.string()),
                                    pc.cast(column, pa.string()))
            else:
                column = column.cast(field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


class BatchWriter:
    """Write DataFrames with the same columns into one local Parquet file.

    Args:
        path: the local file to write (created or replaced).

    Attributes:
        rows: rows written so far.
        columns: the column names (from the first batch).
        widened: how many times the schema was widened (each copies the rows written).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.rows = 0
        self.columns: list[str] | None = None
        self.widened = 0
        self._schema: Any = None
        self._writer: Any = None

    def write(self, frame: Any) -> None:
        """Append one chunk; its columns must be the first chunk's, in the same order.

        Raises:
            ValueError: the chunk's columns differ from the first chunk's.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame.columns = [str(c) for c in frame.columns]
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.columns is None:
            self.columns = list(table.column_names)
            self._schema = pa.schema([pa.field(f.name, f.type) for f in table.schema])
            self._writer = pq.ParquetWriter(self.path, self._schema)
        elif list(table.column_names) != self.columns:
            raise ValueError(f"columns {table.column_names} differ from the first chunk's "
                             f"{self.columns}")
        wider = pa.schema([pa.field(f.name, _wider(f.type, table.schema.field(f.name).type))
                           for f in self._schema])
        if not wider.equals(self._schema):
            self._widen(wider)
        self._writer.write_table(_cast(table, self._schema))
        self.rows += len(frame)

    def _widen(self, schema: Any) -> None:
        import pyarrow.parquet as pq

        self._writer.close()
        old = self.path.with_name(self.path.name + ".narrow")
        os.replace(self.path, old)
        try:
            self._writer = pq.ParquetWriter(self.path, schema)
            source = pq.ParquetFile(old)
            for group in range(source.num_row_groups):
                self._writer.write_table(_cast(source.read_row_group(group), schema))
            source.close()
        finally:
            old.unlink(missing_ok=True)
        self._schema = schema
        self.widened += 1

    def close(self) -> None:
        """Finish the file (its footer)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def write_batches(frames: Iterable[Any], folder: str | os.PathLike[str] | None = None
                  ) -> tuple[Path, BatchWriter, str]:
    """Write every chunk of ``frames`` into a temporary Parquet file.

    Returns:
        The file (the caller moves or deletes it), the writer's counts, and the file's sha256.
        A file with no chunks has no columns and no rows.
    """
    # hidden, beside the final key: a killed process leaves no file that looks like output
    handle, name = tempfile.mkstemp(prefix=".conveyor-table-", suffix=".parquet.tmp",
                                    dir=folder)
    os.close(handle)
    writer = BatchWriter(name)
    try:
        for frame in frames:
            writer.write(frame)
        writer.close()
    except BaseException:
        writer.close()
        Path(name).unlink(missing_ok=True)
        raise
    digest = hashlib.sha256()
    with open(name, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return Path(name), writer, digest.hexdigest()


def concat_frames(frames: Iterable[Any]) -> Any:
    """The chunks as one DataFrame, typed as the Store would keep them (through Parquet)."""
    import pandas as pd

    path, writer, _ = write_batches(frames)
    try:
        return pd.read_parquet(path) if writer.columns is not None else pd.DataFrame()
    finally:
        path.unlink(missing_ok=True)
