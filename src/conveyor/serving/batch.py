"""Batch scoring: a CSV or Parquet input scored by a verified model into one Parquet output.

Two engines, one result (docs/scoring.md, docs/decisions/0034-batch-scoring.md):

* ``local``: the model is loaded once (its sha256 checked first, :func:`open_model`), the
  input is read in chunks of ``chunk_rows`` rows (Parquet record batches, pandas CSV
  chunks), each chunk is predicted with ``predict_proba`` and appended as a row group to one
  Parquet file. Memory is bounded by the chunk, not by the input.
* ``dask``: the same chunk function over the partitions of a ``dask.dataframe`` on a
  ``dask.distributed`` cluster (by default a LocalCluster of in-process workers, which use
  the model loaded here; or a scheduler's address, whose workers receive the verified model
  files once, through a worker plug-in keyed by the model's sha256, re-checked there before
  loading); the output is a folder of Parquet parts.

Both read and write through fsspec (paths, globs, ``file://``, ``s3://``) and publish whole or
not at all: everything is written under a temporary name beside the output and moved into
place after the last row; a failure removes it. The columns are checked against the model's
signature once per file, before any row is scored.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from conveyor.errors import BadInputError, StoreError

__all__ = ["DEFAULT_CHUNK_ROWS", "Engine", "ProgressCallback", "ScoreResult", "score"]

log = logging.getLogger(__name__)

Engine = Literal["local", "dask"]
DEFAULT_CHUNK_ROWS = 100_000
#: ``on_progress(rows_done, rows_total or None, seconds)``, at most every ``progress_every`` s
ProgressCallback = Callable[[int, "int | None", float], None]
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".parq": "parquet"}
_NUMERIC = {"double", "float", "long", "integer"}
_TMP = ".conveyor-tmp-"
DONE_MARKER = "_conveyor_score.json"


@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score` did.

    Attributes:
        output_uri: the Parquet output: a file (local engine) or a folder of parts (dask).
        rows: rows scored (= rows written).
        seconds: wall time from reading the first file to the output in place.
        engine: ``local`` or ``dask``.
        model: the model URI as given.
        model_version: the registered version scored with (``None`` for an unregistered
            export).
        model_sha256: the digest the model's files matched.
        inputs: how many input files were read.
    """

    output_uri: str
    rows: int
    seconds: float
    engine: Engine
    model: str
    model_version: str | None
    model_sha256: str
    inputs: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class InputFiles:
    fs: Any
    paths: tuple[str, ...]
    format: Literal["csv", "parquet"]

    def uri(self, path: str) -> str:
        return self.fs.unstrip_protocol(path)


def _format_of(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1].lower()
    return next((fmt for ext, fmt in _FORMATS.items() if name.endswith(ext)), None)


def _open_fs(uri: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    import fsspec

    try:
        return fsspec.core.url_to_fs(uri, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise BadInputError(f"{uri}: cannot open it: {exc}") from exc


def _find_inputs(uri: str, storage_options: Mapping[str, Any] | None) -> InputFiles:
    """The files ``uri`` names: one file, a glob, or a folder's CSV/Parquet files."""
    fs, path = _open_fs(uri, storage_options)
    try:
        if any(c in path for c in "*?["):
            paths = sorted(p for p in fs.glob(path) if fs.isfile(p))
        elif fs.isdir(path):
            paths = sorted(p for p in fs.find(path) if _format_of(p) and not any(
                part.startswith(("_", ".")) for part in p[len(path):].split("/") if part))
        elif fs.isfile(path):
            paths = [path]
        else:
            raise BadInputError(f"input not found: {uri}")
    except (OSError, PermissionError) as exc:
        raise BadInputError(f"cannot read {uri}: {exc}") from exc
    if not paths:
        raise BadInputError(f"{uri}: no CSV or Parquet file there")
    formats = {_format_of(p) for p in paths}
    if None in formats:
        odd = next(p for p in paths if _format_of(p) is None)
        raise BadInputError(f"{fs.unstrip_protocol(odd)}: not a CSV or Parquet file name "
                            "(expected .csv, .parquet or .pq)")
    if len(formats) > 1:
        raise BadInputError(f"{uri}: mixes CSV and Parquet files; score them separately")
    return InputFiles(fs=fs, paths=tuple(paths), format=formats.pop())  # type: ignore[arg-type]


def _columns(source: InputFiles, path: str) -> tuple[list[str], int | None]:
    """A file's column names (and row count for Parquet), without reading its rows."""
    uri = source.uri(path)
    try:
        if source.format == "parquet":
            import pyarrow.parquet as pq

            with source.fs.open(path, "rb") as handle:
                meta = pq.ParquetFile(handle).metadata
                return list(meta.schema.to_arrow_schema().names), int(meta.num_rows)
        import pandas as pd

        with source.fs.open(path, "rb") as handle:
            return [str(c) for c in pd.read_csv(handle, nrows=0).columns], None
    except BadInputError:
        raise
    except Exception as exc:
        raise BadInputError(f"{uri}: not a readable {source.format} file: "
                            f"{first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_columns(source: InputFiles, features: Sequence[Any],
                   id_column: str | None) -> tuple[str | None, int | None]:
    """Check every file against the signature; return the id column and the total rows."""
    total: int | None = 0
    chosen = id_column
    for path in source.paths:
        names, rows = _columns(source, path)
        present = set(names)
        missing = [f.name for f in features if f.required and f.name not in present]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise BadInputError(f"{source.uri(path)}: column {missing[0]!r} is missing{more}; "
                                f"the model's signature needs {len(features)} columns")
        if id_column is not None and id_column not in present:
            raise BadInputError(f"{source.uri(path)}: id column {id_column!r} is missing "
                                "(--id-column)")
        if id_column is None and path == source.paths[0] and "id" in present:
            chosen = "id"
        if chosen and chosen not in present:
            chosen = None if id_column is None else chosen
        total = None if total is None or rows is None else total + rows
    return chosen, total


# --------------------------------------------------------------------------- one chunk


@dataclass(frozen=True)
class ChunkScorer:
    """What scoring one chunk needs: picklable (it travels to Dask workers as arguments)."""

    features: tuple[str, ...]
    numeric: tuple[str, ...]
    classes: tuple[Any, ...] | None
    id_column: str | None
    #: the output's name for the prediction (``Survived`` for a Kaggle submission)
    prediction_column: str = "prediction"
    #: write ``proba_<class>`` columns
    probabilities: bool = True

    def named(self, columns: dict[str, Any]) -> dict[str, Any]:
        """:meth:`predict`'s columns under the output's names, without the probabilities
        when they are not wanted."""
        return {(self.prediction_column if name == "prediction" else name): value
                for name, value in columns.items()
                if self.probabilities or not name.startswith("proba_")}

    @property
    def proba_columns(self) -> list[str]:
        return [f"proba_{c}" for c in self.classes or ()]

    def check(self, frame: Any, where: str, first_row: int) -> None:
        """A numeric feature read as text (CSV): name the first value that is not a number."""
        import pandas as pd

        for name in self.numeric:
            column = frame[name]
            if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(
                    column.dtype):
                continue
            numbers = pd.to_numeric(column, errors="coerce")
            bad = numbers.isna() & column.notna()
            position = int(bad.to_numpy().argmax())
            raise BadInputError(f"{where}: column {name!r}, row {first_row + position + 1}: "
                                f"{column.iloc[position]!r} is not a number")

    def predict(self, estimator: Any, frame: Any, *, arrow: bool = False) -> dict[str, Any]:
        """The output columns for a DataFrame holding the features: prediction, proba_*.

        Labels are ``classes_`` at the arg-max of ``predict_proba`` (what scikit-learn's
        classifiers predict); ``arrow`` gives pyarrow arrays (labels by ``take``, in C).
        """
        import numpy as np

        from conveyor.modeling.threshold import decision_threshold, label_index

        X = frame[list(self.features)]
        if self.classes is not None and hasattr(estimator, "predict_proba"):
            proba = np.asarray(estimator.predict_proba(X))
            # the arg-max, or the decision threshold saved inside the model (ADR 0041)
            best = label_index(proba, self.classes, decision_threshold(estimator))
            if arrow:
                import pyarrow as pa

                out = {"prediction": pa.array(list(self.classes)).take(pa.array(best))}
            else:
                out = {"prediction": np.asarray(self.classes)[best]}
            for i, name in enumerate(self.proba_columns):
                out[name] = np.ascontiguousarray(proba[:, i])
            return out
        return {"prediction": np.asarray(estimator.predict(X))}


def _numeric_frame(batch: Any, features: Sequence[str]) -> Any:
    """A record batch's features as a DataFrame over one 2-D float block (no per-column
    blocks for scikit-learn to stack again), or ``to_pandas`` for other column types."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    columns = [batch.column(name) for name in features]
    if not all(pa.types.is_floating(c.type) or pa.types.is_integer(c.type) for c in columns):
        return batch.select(list(features)).to_pandas()
    block = np.empty((len(columns), batch.num_rows), dtype="float64")
    for i, column in enumerate(columns):
        block[i] = column.to_numpy(zero_copy_only=False)
    return pd.DataFrame(block.T, columns=list(features), copy=False)


def _scorer(model: Any, id_column: str | None, *, prediction_column: str = "prediction",
            probabilities: bool = True) -> ChunkScorer:
    return ChunkScorer(features=tuple(model.feature_names),
                       numeric=tuple(f.name for f in model.features if f.dtype in _NUMERIC),
                       classes=model.classes, id_column=id_column,
                       prediction_column=prediction_column, probabilities=probabilities)


# --------------------------------------------------------------------------- output


@dataclass(frozen=True)
class OutputTarget:
    fs: Any
    path: str
    uri: str

    @property
    def csv(self) -> bool:
        """A ``.csv`` output is written as CSV (a submission file), any other as Parquet."""
        return self.path.lower().endswith(".csv")

    def temporary(self) -> str:
        """A fresh temporary name beside the output (same folder, so a rename moves it)."""
        parent, _, name = self.path.rpartition("/")
        return f"{parent}/.{name}{_TMP}{uuid.uuid4().hex[:10]}"


def _prepare_output(uri: str, storage_options: Mapping[str, Any] | None, *,
                    overwrite: bool, source: InputFiles) -> OutputTarget:
    fs, path = _open_fs(uri, storage_options)
    path = path.rstrip("/")
    if path in source.paths:
        raise BadInputError(f"{uri}: the output is also an input; choose another output")
    try:
        exists = fs.exists(path)
    except OSError as exc:
        raise StoreError(f"cannot reach {uri}: {exc}") from exc
    if exists and not overwrite:
        raise BadInputError(f"{uri} exists; choose another output or pass --overwrite")
    parent = path.rpartition("/")[0]
    if parent and is_local(fs):
        fs.makedirs(parent, exist_ok=True)
    return OutputTarget(fs=fs, path=path, uri=fs.unstrip_protocol(path))


def is_local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def remove_quietly(fs: Any, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except Exception as exc:  # noqa: BLE001 - clean-up must not hide the original error
        log.warning("could not remove %s: %s", path, exc)


def publish_output(output: OutputTarget, tmp: str, *, folder: bool) -> None:
    """Move the finished temporary output into place (a rename on a local filesystem)."""
    fs = output.fs
    if fs.exists(output.path):
        fs.rm(output.path, recursive=True)  # --overwrite: checked before scoring started
    if not folder or is_local(fs):
        fs.mv(tmp, output.path, recursive=folder)
        return
    # an object store has no folder rename: copy each part, the completion marker last
    moved = []
    try:
        parts = sorted(fs.find(tmp))
        for part in sorted(parts, key=lambda p: p.endswith(DONE_MARKER)):
            target = output.path + part[len(tmp):]
            fs.copy(part, target)
            moved.append(target)
    except BaseException:
        remove_quietly(fs, output.path)
        raise
    remove_quietly(fs, tmp)


# --------------------------------------------------------------------------- local engine


def _chunks(source: InputFiles, scorer: ChunkScorer, chunk_rows: int,
            ) -> Iterator[tuple[str, int, Any, Any]]:
    """``(file uri, first row, feature frame, id values)`` per chunk, file after file."""
    import pyarrow.parquet as pq

    wanted = list(dict.fromkeys([*scorer.features] + (
        [scorer.id_column] if scorer.id_column else [])))
    for path in source.paths:
        uri = source.uri(path)
        first = 0
        try:
            # a local file is read by Arrow's own I/O (faster than a Python file object);
            # pre-buffering whole row groups doubles the peak memory for no gain here
            with (contextlib.nullcontext(path) if is_local(source.fs)
                  else source.fs.open(path, "rb")) as handle:
                if source.format == "parquet":
                    parquet = pq.ParquetFile(handle, pre_buffer=False)
                    for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted,
                                                      use_threads=True):
                        frame = _numeric_frame(batch, scorer.features)
                        ids = batch.column(scorer.id_column) if scorer.id_column else None
                        yield uri, first, frame, ids
                        first += batch.num_rows
                else:
                    import pandas as pd

                    # one type per column in a chunk (see sources/files.py's reader)
                    for frame in pd.read_csv(handle, chunksize=chunk_rows, usecols=wanted,
                                             low_memory=False):
                        ids = frame[scorer.id_column] if scorer.id_column else None
                        yield uri, first, frame, ids
                        first += len(frame)
        except (BadInputError, StoreError):
            raise
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise BadInputError(f"{uri}: not a readable {source.format} file after row "
                                f"{first}: {first_line(exc)}") from exc


def _score_local(model: Any, source: InputFiles, output: OutputTarget, scorer: ChunkScorer,
                 chunk_rows: int, total: int | None, on_progress: ProgressCallback | None,
                 progress_every: float) -> int:
    import pyarrow as pa

    tmp = output.temporary()
    rows = 0
    started = last = time.perf_counter()
    try:
        with (contextlib.nullcontext(tmp) if is_local(output.fs)
              else output.fs.open(tmp, "wb")) as handle:
            writer = None
            try:
                for where, first, frame, ids in _chunks(source, scorer, chunk_rows):
                    scorer.check(frame, where, first)
                    columns = scorer.named(scorer.predict(model.estimator, frame, arrow=True))
                    arrays = {} if ids is None else {scorer.id_column: pa.array(ids)}
                    arrays.update({k: pa.array(v) for k, v in columns.items()})
                    table = pa.table(arrays)
                    if writer is None:
                        writer = _writer(handle, table.schema, csv=output.csv)
                    elif table.schema != writer.schema:
                        table = _conform(table, writer.schema, where)
                    writer.write_table(table)
                    rows += table.num_rows
                    now = time.perf_counter()
                    if on_progress is not None and now - last >= progress_every:
                        on_progress(rows, total, now - started)
                        last = now
                if writer is None:
                    raise BadInputError(f"{source.uri(source.paths[0])}: no rows to score")
            finally:
                if writer is not None:
                    writer.close()
        publish_output(output, tmp, folder=False)
    except BaseException:
        remove_quietly(output.fs, tmp)
        raise
    return rows


def _writer(handle: Any, schema: Any, *, csv: bool) -> Any:
    """A Parquet writer, or a CSV one (header row, no index) for a ``.csv`` output."""
    if csv:
        import pyarrow.csv as pcsv

        return pcsv.CSVWriter(handle, schema,
                              write_options=pcsv.WriteOptions(quoting_style="needed"))
    import pyarrow.parquet as pq

    return pq.ParquetWriter(handle, schema)


def _conform(table: Any, schema: Any, where: str) -> Any:
    try:
        return table.cast(schema)
    except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise BadInputError(f"{where}: its id column's type differs from the first file's "
                            f"({first_line(exc)})") from exc


# --------------------------------------------------------------------------- entry


def score(model_uri: str, input_uri: str, output_uri: str, *, id_column: str | None = None,
          chunk_rows: int = DEFAULT_CHUNK_ROWS, engine: Engine = "local",
          scheduler: str | None = None, workers: int = 2, overwrite: bool = False,
          storage_options: Mapping[str, Any] | None = None, tracking_uri: str | None = None,
          on_progress: ProgressCallback | None = None, progress_every: float = 2.0,
          model: Any = None, prediction_column: str = "prediction",
          probabilities: bool = True) -> ScoreResult:
    """Score ``input_uri`` with the model ``model_uri`` names into ``output_uri``.

    Args:
        model_uri: ``models:/name@alias``, ``models:/name/N``, or an export or model folder.
        input_uri: a CSV or Parquet file, a glob, or a folder of them (path, ``file://``,
            ``s3://``).
        output_uri: the Parquet output (a file for ``local``, a folder for ``dask``).
        id_column: copied to the output beside the predictions (default: ``id`` if the
            input has it).
        chunk_rows: rows per chunk (local) or per partition (dask, CSV; Parquet partitions
            follow the file's row groups).
        engine: ``local`` or ``dask``.
        scheduler: a Dask scheduler's address (default: a LocalCluster of in-process
            workers, sharing this process's imports and loaded model).
        workers: the LocalCluster's workers (one thread each, in this process).
        overwrite: replace an existing output (else it is refused).
        storage_options: fsspec options for input and output (no secrets).
        tracking_uri: MLflow tracking URI for ``models:/``.
        on_progress: called with rows done, rows in total (if known) and seconds.
        progress_every: seconds between ``on_progress`` calls.
        model: an already loaded model (the score step's), instead of ``model_uri``'s.
        prediction_column: the output's name for the prediction.
        probabilities: write the ``proba_<class>`` columns.

    Raises:
        BadInputError: a missing or unreadable input, a missing column, an existing output.
        ModelRefusedError: the model's files do not match their sha256.
    """
    from conveyor.serving.model import open_model

    if chunk_rows < 1:
        raise BadInputError(f"chunk rows must be >= 1, got {chunk_rows}")
    if engine not in ("local", "dask"):
        raise BadInputError(f"unknown engine {engine!r}; expected local or dask")
    if scheduler and engine != "dask":
        raise BadInputError("--scheduler is for --engine dask")
    if workers < 1:
        raise BadInputError(f"workers must be >= 1, got {workers}")
    source = _find_inputs(input_uri, storage_options)
    output = _prepare_output(output_uri, storage_options, overwrite=overwrite, source=source)
    if output.csv and engine != "local":
        raise BadInputError(f"{output_uri}: a CSV output is written by --engine local; the "
                            "dask engine writes a folder of Parquet parts")
    if not prediction_column or prediction_column == id_column:
        raise BadInputError(f"prediction column {prediction_column!r} must be a name other "
                            "than the id column's")
    named = {"prediction_column": prediction_column, "probabilities": probabilities}
    if engine == "local":
        loaded = model if model is not None else open_model(model_uri,
                                                            tracking_uri=tracking_uri)
        started = time.perf_counter()
        chosen_id, total = _check_columns(source, loaded.features, id_column)
        rows = _score_local(loaded, source, output, _scorer(loaded, chosen_id, **named),
                            chunk_rows,
                            total, on_progress, progress_every)
    else:
        from conveyor.serving.dask_engine import dask_client, score_dask, warm_workers

        started = time.perf_counter()
        with ThreadPoolExecutor(1, thread_name_prefix="conveyor-model") as pool:
            # the model loads (mostly imports) while the cluster's processes start; the
            # thread sees this call's home (a context variable)
            pending = None if model is not None else pool.submit(
                contextvars.copy_context().run, open_model, model_uri,
                tracking_uri=tracking_uri)
            with dask_client(scheduler, workers) as client:
                warm_workers(client)
                loaded = model if pending is None else pending.result()
                chosen_id, _ = _check_columns(source, loaded.features, id_column)
                rows = score_dask(client, loaded, source, output,
                                  _scorer(loaded, chosen_id, **named), chunk_rows,
                                  storage_options,
                                  on_progress)
    identity = loaded.identity
    return ScoreResult(output_uri=output.uri, rows=rows,
                       seconds=time.perf_counter() - started, engine=engine,
                       model=model_uri, model_version=identity.version,
                       model_sha256=identity.sha256, inputs=len(source.paths))
