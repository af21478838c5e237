"""A table too large for memory, validated chunk by chunk with the whole table's results.

:func:`validate_chunked` gives the report, messages and typed table that
:func:`conveyor.validation.table.validate_table` gives for the same rows (the differential
test holds them equal), reading the table several times, one chunk at a time (ADR 0051):

1. the text columns that may be numbers: how many values parse (the 90 % rule is a share of
   the whole column), the first that does not, and the dtype the whole column would get;
2. the row checks (pandera, per chunk, rows numbered in the whole table); repeated ids by a
   64-bit hash of each id (8 bytes a row), confirmed on the values of the rows found;
3. the kept rows: missing counts and the target column (one column, kept whole: the task,
   the classes and the split need all of it);
4. leakage (distinct values capped at the class count, or the correlation merged by parts),
   the schema's statistics and the comparison with the saved schema;
5. the typed, kept rows, handed to the Store chunk by chunk (:func:`validate_chunked`
   returns a function that yields them).

Memory is one chunk plus what no chunking avoids: a byte per row (the rows dropped), eight
per row for the id hashes and the target column.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.validation.problems import Problem, RowNamer

if TYPE_CHECKING:
    from conveyor.sources.lines import LineMap

__all__ = ["DEFAULT_CHUNK_ROWS", "ParquetChunks", "chunk_rows", "chunks_apply", "take_rows",
           "validate_chunked"]

log = logging.getLogger(__name__)

#: Rows validated (and split) at a time; a table with at most this many is validated whole.
DEFAULT_CHUNK_ROWS = 50_000


def chunk_rows(spec: Any) -> int:
    """Rows validated and split at a time: the spec's ``data.chunk_rows``, the rows ingest
    reads at a time (and so the row groups of the table it writes), else
    :data:`DEFAULT_CHUNK_ROWS` for sources without the setting."""
    return int(getattr(spec.data, "chunk_rows", None) or DEFAULT_CHUNK_ROWS)


def chunks_apply(rows: int, size: int, derive: Any = None) -> bool:
    """Whether a table of ``rows`` is validated in chunks of ``size``: when it has more rows
    than one chunk, and its derived columns are expressions (a custom function sees the whole
    table, and may compute across rows)."""
    return rows > size and all(isinstance(rule, str) for rule in (derive or {}).values())


class ParquetChunks:
    """A Parquet file read ``chunk`` rows at a time, as pandas frames indexed by their rows'
    positions in the file, with the dtypes one whole read gives each column (an integer
    column with a missing value anywhere is float64 in every chunk; a boolean one, object).
    """

    def __init__(self, path: str | os.PathLike[str], chunk: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path, self.chunk = str(path), chunk
        meta = pq.ParquetFile(self.path)
        self.rows = meta.metadata.num_rows
        schema = meta.schema_arrow
        self.columns = [str(n) for n in schema.names]
        nulls = self._nulls(meta)
        self.widen: dict[str, str] = {}
        for i, name in enumerate(schema.names):
            kind = schema.field(i).type
            if nulls[i] and pa.types.is_integer(kind):
                self.widen[name] = "float64"
            elif nulls[i] and pa.types.is_boolean(kind):
                self.widen[name] = "object"

    @staticmethod
    def _nulls(meta: Any) -> list[int]:
        counts = [0] * meta.metadata.num_columns
        for group in range(meta.metadata.num_row_groups):
            stats = [meta.metadata.row_group(group).column(i).statistics
                     for i in range(meta.metadata.num_columns)]
            if all(s is not None and s.has_null_count for s in stats):
                counts = [c + s.null_count for c, s in zip(counts, stats, strict=True)]
            else:  # a writer that kept no statistics: count this row group's nulls
                table = meta.read_row_group(group)
                counts = [c + table.column(i).null_count for i, c in enumerate(counts)]
        return counts

    def __call__(self, columns: Sequence[str] | None = None) -> Iterator[Any]:
        import pandas as pd
        import pyarrow.parquet as pq

        # a row group at a time (iter_batches reads ahead, ~3x the memory here), sliced
        source, start = pq.ParquetFile(self.path), 0
        for group in range(source.num_row_groups):
            table = source.read_row_group(
                group, columns=list(columns) if columns is not None else None)
            for offset in range(0, table.num_rows, self.chunk):
                frame = table.slice(offset, self.chunk).to_pandas()
                for name, dtype in self.widen.items():
                    if name in frame.columns:
                        frame[name] = frame[name].astype(dtype)
                frame.index = pd.RangeIndex(start, start + len(frame))
                start += len(frame)
                yield frame
            del table


@dataclass
class _Plan:
    """What the passes have decided so far about turning a raw chunk into a typed one."""

    numeric: dict[str, Any] = field(default_factory=dict)  # column -> dtype of the whole
    no_inf: list[str] = field(default_factory=list)  # ±inf kept as missing (types: warn)
    drop: Any = None  # the rows dropped (a mask over the whole table)
    target: Any = None  # the kept rows' target, typed as the whole column is


def validate_chunked(
    chunks: Callable[..., Iterator[Any]], columns: Sequence[str], rows: int, ctx_spec: Any, *,
    source: str, lines: LineMap | None = None, baseline: dict[str, Any] | None = None,
) -> tuple[Callable[[], Iterator[Any]], dict[str, Any]]:
    """Validate the table ``chunks()`` yields as :func:`validate_table` validates it whole.

    Args:
        chunks: called with no argument, yields the raw table's chunks in order, each indexed
            by its rows' positions (:class:`ParquetChunks`); may be called several times.
        columns: the raw table's columns.
        rows: the raw table's rows.
        ctx_spec, source, lines, baseline: as for :func:`validate_table`.

    Returns:
        (a function yielding the typed, kept chunks of the table to write, the report).

    Raises:
        DataError: as :func:`validate_table` does, with the same message.
    """
    import numpy as np
    import pandas as pd

    from conveyor.features import feature_types
    from conveyor.features.derive import source_columns
    from conveyor.modeling.tasks import infer_task
    from conveyor.validation.baseline import TableStats, compare_stats
    from conveyor.validation.rules import build_schema, failures, problems_from
    from conveyor.validation.table import (
        _classification_checks,
        _columns_to_type,
        _Findings,
        build_report,
        check_min_rows,
        check_named_columns,
        drop_rows,
        leakage_message,
        missing_share_message,
        not_a_number,
        numeric_target,
    )

    schema, rules = ctx_spec.schema_, ctx_spec.validate_
    derive = getattr(ctx_spec, "derive", None) or {}
    columns = list(dict.fromkeys([*columns, *derive]))
    found = _Findings(RowNamer(lines))
    check_named_columns(columns, schema, source, rules=rules)
    check_min_rows(rows, rules.min_rows, source)
    excluded, candidates, coerce, declared = _columns_to_type(columns, ctx_spec)
    plan = _Plan()

    def raw() -> Iterator[Any]:
        from conveyor.features.derive import derive_frame

        for chunk in chunks():
            yield derive_frame(chunk, derive, source=source) if derive else chunk

    def typed(*, kept: bool) -> Iterator[Any]:
        """The chunks as the whole path's ``typed`` table: coerced, ±inf cleaned, and with
        ``kept`` the dropped rows gone, indexed by position among the kept rows."""
        done = 0
        for chunk in raw():
            for name, dtype in plan.numeric.items():
                chunk[name] = pd.to_numeric(chunk[name], errors="coerce").astype(dtype)
            for name in plan.no_inf:
                values = chunk[name].to_numpy(dtype=float, na_value=np.nan)
                chunk[name] = chunk[name].where(~np.isinf(values))
            if kept:
                if plan.drop is not None:
                    chunk = chunk[~plan.drop[chunk.index.to_numpy()]]
                chunk.index = pd.RangeIndex(done, done + len(chunk))
                done += len(chunk)
                if plan.target is not None:
                    chunk[schema.target] = plan.target.iloc[chunk.index.to_numpy()].to_numpy()
            yield chunk

    # 1. text columns that may hold numbers: the share that parses is the whole column's
    seen: dict[str, dict[str, Any]] = {}
    for chunk in raw():
        for name in coerce:
            column = chunk[name]
            if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                seen.setdefault(name, {"text": False, "present": 0, "numbers": 0,
                                       "bad": [], "first": None, "dtypes": set()})
                seen[name]["dtypes"].add(column.dtype)
                continue
            coerced = pd.to_numeric(column, errors="coerce")
            present = column.notna().to_numpy()
            bad = np.flatnonzero(present & coerced.isna().to_numpy())
            state = seen.setdefault(name, {"text": False, "present": 0, "numbers": 0,
                                           "bad": [], "first": None, "dtypes": set()})
            state["text"] = True
            state["present"] += int(present.sum())
            state["numbers"] += int(coerced[present].notna().sum())
            state["dtypes"].add(coerced.dtype)
            if len(bad):
                state["bad"].append(column.index[bad].to_numpy())
                if state["first"] is None:
                    state["first"] = (int(column.index[bad[0]]), column.iloc[bad[0]])
    for name in coerce:
        state = seen.get(name)
        if state is None or not state["text"]:
            continue
        share = state["numbers"] / state["present"] if state["present"] else 0.0
        if not (declared.get(name) == "numeric"
                or (declared.get(name) is None and share >= 0.9)):
            continue
        plan.numeric[name] = np.result_type(*state["dtypes"]) if not state["bad"] else \
            np.dtype("float64")
        if state["bad"]:
            bad = np.concatenate(state["bad"])
            first, value = state["first"]
            found.add(Problem("types", not_a_number(name, first, value, len(bad),
                                                    source=source, lines=lines),
                              name, bad, rules.types, len(bad)))
    found.raise_failures()

    # 2. the row checks, chunk by chunk; repeated ids by hash
    groups: dict[tuple[str, str], tuple[list[int], list[Any]]] = {}
    pandera_schema = None
    hashes = []
    for chunk in typed(kept=False):
        if pandera_schema is None:
            pandera_schema, _ = build_schema(chunk, ctx_spec, features=candidates,
                                             unique_ids=False)
        failures(pandera_schema, chunk, source=source, into=groups)
        if schema.id:
            hashes.append(pd.util.hash_pandas_object(chunk[schema.id], index=False).to_numpy())
    id_values: dict[int, Any] = {}
    if hashes:
        id_values = _repeated_ids(np.concatenate(hashes), typed(kept=False), schema.id)
        if id_values:
            groups[(schema.id, "field_uniqueness")] = (list(id_values),
                                                        list(id_values.values()))
    for problem in problems_from(groups, ctx_spec, columns=columns, source=source,
                                 namer=found.namer, id_values=id_values):
        found.add(problem)
        if problem.check == "types" and problem.policy == "warn":  # ±inf kept as missing
            plan.no_inf.append(problem.column)
    found.raise_failures()
    plan.drop, by_check = drop_rows(found, rows, lines=lines, source=source,
                                    min_rows=rules.min_rows)

    # 3. the kept rows: missing shares, and the target column whole
    kept_rows, missing, targets = 0, dict.fromkeys(candidates, 0), []
    sample = None
    for chunk in typed(kept=True):
        sample = chunk.iloc[:0] if sample is None else sample
        kept_rows += len(chunk)
        for name in candidates:
            missing[name] += int(chunk[name].isna().sum())
        targets.append(chunk[schema.target])
    for name in candidates:
        share = missing[name] / kept_rows if kept_rows else float("nan")
        message = missing_share_message(share, name, rules.max_missing_fraction, source=source)
        if message:
            found.add(Problem("empty_columns", message, name, policy=rules.empty_columns))
    target = pd.concat(targets) if targets else sample[schema.target]
    del targets
    task = infer_task(target, schema.task)
    counts = None
    if task.task == "regression":
        target = numeric_target(target, schema.target, source=source, lines=found.namer)
    else:
        frame = pd.DataFrame({schema.target: target})
        counts = _classification_checks(frame, ctx_spec, found, source=source)
        target = frame[schema.target]
    plan.target = target

    # 4. leakage, the schema's statistics and the comparison with the saved schema
    types = feature_types(sample, candidates if schema.features == "infer"
                          else schema.features, exclude=excluded)
    read = set(source_columns(derive)) if derive else set()
    keep = [c for c in columns if c in types or c == schema.target or c == schema.id
            or c in read]
    leaks = {name: _Leak(counts is not None, len(counts) if counts is not None else 0)
             for name in candidates}
    stats = TableStats(keep, baseline)
    for chunk in typed(kept=True):
        for name, leak in leaks.items():
            leak.update(chunk[name], chunk[schema.target])
        stats.update(chunk[keep])
    for name, leak in leaks.items():
        if leak.leaks():
            found.add(Problem("leakage", leakage_message(name, schema.target, source=source),
                              name, policy=rules.leakage))
    status = "first run: this table's schema is saved when the run completes"
    if baseline is not None:
        status = "compared"
        for problem in compare_stats(stats, baseline, rules.drift, source=source,
                                     namer=found.namer):
            found.add(problem)
    found.raise_failures()

    report = build_report(
        ctx_spec, rows=kept_rows, rows_in=rows, columns=len(columns), types=types, task=task,
        counts=counts, found=found, source=source, by_check=by_check, status=status,
        missing={c: stats.columns[c].missing for c in types if stats.columns[c].missing},
        schema=stats.schema())

    def table() -> Iterator[Any]:
        for chunk in typed(kept=True):
            yield chunk[keep].reset_index(drop=True)

    return table, report


def _repeated_ids(hashes: Any, chunks: Iterator[Any], id_column: str) -> dict[int, Any]:
    """Row -> id of every row whose id repeats: rows whose 64-bit hash repeats, confirmed
    on their values (a hash collision is not a repeat)."""
    import numpy as np
    import pandas as pd

    ordered = np.sort(hashes)  # a sort and a mask: ~17 bytes a row, not np.unique's ~40
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    suspects = np.flatnonzero(np.isin(hashes, repeated)) if len(repeated) else repeated
    if not len(suspects):
        return {}
    values: dict[int, Any] = {}
    for chunk in chunks:
        start = chunk.index[0] if len(chunk) else 0
        mine = suspects[(suspects >= start) & (suspects < start + len(chunk))]
        for row, value in zip(mine, chunk[id_column].to_numpy()[mine - start], strict=True):
            values[int(row)] = value
    same = pd.Series(list(values.values()), dtype=object).duplicated(keep=False).to_numpy()
    return {row: value for (row, value), repeat in zip(values.items(), same, strict=True)
            if repeat}


class _Leak:
    """Whether a feature determines the target, gathered by parts: for classes, its distinct
    values and (value, class) pairs, abandoned past the class count; for a quantity, the
    correlation of the present pairs, merged by Chan's formulas."""

    def __init__(self, classes: bool, n_classes: int) -> None:
        self.classes, self.n_classes = classes, n_classes
        self.done = False
        self.values: Any = None
        self.pairs: Any = None
        self.n = 0
        self.mean_f = self.mean_t = self.m2_f = self.m2_t = self.c = 0.0
        self.first: float | None = None
        self.varies = False

    def update(self, column: Any, target: Any) -> None:
        import pandas as pd

        if self.done:
            return
        if self.classes:
            values = column.drop_duplicates()
            self.values = values if self.values is None else pd.concat(
                [self.values, values]).drop_duplicates()
            if len(self.values) > self.n_classes:
                self.done = True
                return
            pairs = pd.DataFrame({"f": column.astype(str).to_numpy(),
                                  "t": target.astype(str).to_numpy()}).drop_duplicates()
            self.pairs = pairs if self.pairs is None else pd.concat(
                [self.pairs, pairs]).drop_duplicates()
            return
        self._moments(column, target)

    def _moments(self, column: Any, target: Any) -> None:
        import pandas as pd

        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            self.done = True
            return
        pairs = pd.DataFrame({"f": column.astype(float).to_numpy(),
                              "t": target.to_numpy()}).dropna()
        if not len(pairs):
            return
        f, t = pairs["f"].to_numpy(), pairs["t"].to_numpy(dtype=float)
        if self.first is None:
            self.first = float(f[0])
        self.varies = self.varies or bool((f != self.first).any())
        n_b, mean_f, mean_t = len(f), float(f.mean()), float(t.mean())
        m2_f, m2_t = float(((f - mean_f) ** 2).sum()), float(((t - mean_t) ** 2).sum())
        c = float(((f - mean_f) * (t - mean_t)).sum())
        n = self.n + n_b
        d_f, d_t = mean_f - self.mean_f, mean_t - self.mean_t
        self.m2_f += m2_f + d_f * d_f * self.n * n_b / n
        self.m2_t += m2_t + d_t * d_t * self.n * n_b / n
        self.c += c + d_f * d_t * self.n * n_b / n
        self.mean_f += d_f * n_b / n
        self.mean_t += d_t * n_b / n
        self.n = n

    def leaks(self) -> bool:
        import math

        if self.done:
            return False
        if self.classes:
            return (self.values is not None and len(self.values) == self.n_classes
                    and len(self.pairs) == self.n_classes)
        if self.n < 3 or not self.varies:
            return False
        denominator = math.sqrt(self.m2_f * self.m2_t)
        r = self.c / denominator if denominator else math.nan
        return math.isfinite(r) and abs(r) >= 1 - 1e-9


def take_rows(chunks: ParquetChunks, orders: dict[str, Any], folder: str | os.PathLike[str],
              ) -> dict[str, Callable[[], Iterator[Any]]]:
    """Tables made of ``chunks``' rows in given orders, one chunk in memory at a time.

    ``orders[name]`` lists the source rows of table ``name`` in its order (the shuffled
    indices of a split). One pass over the source scatters each row into the bucket of its
    place (``chunk`` places a bucket, one Arrow IPC file each, in ``folder``); each bucket is
    then read, sorted and handed over: an external shuffle, so the tables are the rows a
    whole-table ``frame.iloc[order]`` gives, in its order (ADR 0051).

    Returns:
        name -> a function yielding that table's chunks (pandas, index reset), in order.
    """
    from pathlib import Path

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    source = pq.ParquetFile(chunks.path)
    schema = source.schema_arrow.append(pa.field("__place", pa.int64()))
    size = chunks.chunk
    places: dict[str, Any] = {}
    for name, order in orders.items():
        place = np.full(chunks.rows, -1, dtype=np.int64)
        place[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int64)
        places[name] = place
    # Arrow IPC streams, not Parquet: an open ParquetWriter buffers about a megabyte, and
    # there is one bucket per output chunk, so their buffers grew with the table
    writers: dict[tuple[str, int], Any] = {}
    bucket = Path(folder)
    try:
        start = 0
        for group in range(source.num_row_groups):
            table = source.read_row_group(group)
            for name, place in places.items():
                where = place[start:start + len(table)]
                rows = np.flatnonzero(where >= 0)
                for b in np.unique(where[rows] // size):
                    mine = rows[where[rows] // size == b]
                    part = table.take(pa.array(mine)).append_column(
                        "__place", pa.array(where[mine], pa.int64()))
                    key = (name, int(b))
                    if key not in writers:
                        sink = pa.OSFile(str(bucket / f"{name}-{b}.arrow"), "wb")
                        writers[key] = (sink, pa.ipc.new_stream(sink, schema))
                    writers[key][1].write_table(part.cast(schema))
            start += len(table)
            del table
    finally:
        for sink, writer in writers.values():
            writer.close()
            sink.close()

    def reader(name: str, buckets: int) -> Callable[[], Iterator[Any]]:
        def read() -> Iterator[Any]:
            for b in range(buckets):
                path = bucket / f"{name}-{b}.arrow"
                with pa.OSFile(str(path), "rb") as sink:
                    table = pa.ipc.open_stream(sink).read_all()
                path.unlink()
                table = table.take(pc.sort_indices(table["__place"])).drop_columns("__place")
                frame = table.to_pandas()
                del table
                for column, dtype in chunks.widen.items():
                    frame[column] = frame[column].astype(dtype)
                yield frame
        return read

    return {name: reader(name, -(-len(order) // size)) for name, order in orders.items()}
