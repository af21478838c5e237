"""The Dask engine of batch scoring: the local engine's chunk function over a Dask cluster.

Imported only when ``engine="dask"`` (dask and distributed cost about a second to import).
The verified model's files travel to every worker once, through a worker plug-in (applied
to workers that join later too); each worker checks every file's sha256 before loading, and
keeps the model in a process-wide cache keyed by the model's sha256, so each partition finds
it loaded. Workers need Conveyor installed, nothing else: no MLflow or Store access.
Without a scheduler address the cluster is a LocalCluster of in-process workers, whose cache
is filled with the model already verified and loaded by the caller (ADR 0034).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from distributed import Client, LocalCluster, WorkerPlugin

from conveyor.errors import BadInputError, ConveyorRuntimeError
from conveyor.serving.batch import (
    DONE_MARKER,
    ChunkScorer,
    InputFiles,
    OutputTarget,
    ProgressCallback,
    first_line,
    publish_output,
    remove_quietly,
)

__all__ = ["ModelPlugin", "score_dask"]

log = logging.getLogger(__name__)

#: the models this worker process holds, by the model's sha256 (filled by ModelPlugin)
_MODELS: dict[str, Any] = {}


class ModelPlugin(WorkerPlugin):
    """Installs the verified model on each worker once, its files checked there first."""

    def __init__(self, key: str, files: Mapping[str, tuple[str, bytes]]) -> None:
        self.key = key
        self.name = f"conveyor-model-{key[:16]}"
        self.files = dict(files)

    def setup(self, worker: Any = None) -> None:
        from conveyor.tracking.model_files import load_sklearn_folder

        if self.key in _MODELS:
            return
        with tempfile.TemporaryDirectory(prefix="conveyor-score-model-") as scratch:
            folder = Path(scratch)  # removed once loaded: the model is read whole
            for rel, (sha, data) in self.files.items():
                if hashlib.sha256(data).hexdigest() != sha:
                    raise ConveyorRuntimeError(f"model file {rel} arrived altered at the "
                                               "worker")
                target = folder / rel
                if not target.resolve().is_relative_to(folder.resolve()):
                    raise ConveyorRuntimeError(f"model file outside its folder: {rel!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            _MODELS[self.key] = load_sklearn_folder(folder)

    def teardown(self, worker: Any = None) -> None:
        _MODELS.pop(self.key, None)


def score_partition(frame: Any, key: str, scorer: ChunkScorer, where: str) -> Any:
    """One partition's output (runs on a worker)."""
    import pandas as pd

    estimator = _MODELS.get(key)
    if estimator is None:
        raise ConveyorRuntimeError("the model is not installed on this worker")
    scorer.check(frame, where, 0)  # rows counted within the partition
    out = pd.DataFrame(scorer.named(scorer.predict(estimator, frame)), index=frame.index)
    if scorer.id_column:
        out.insert(0, scorer.id_column, frame[scorer.id_column])
    return out


def _model_files(folder: Path) -> dict[str, tuple[str, bytes]]:
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            files[path.relative_to(folder).as_posix()] = (hashlib.sha256(data).hexdigest(), data)
    return files


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Client]:
    """A client to ``scheduler``, or to a LocalCluster of ``workers`` in-process workers (one
    thread each; no sockets: the in-process transport); both are closed on the way out,
    whatever happens.

    In-process workers share this process's imports and its loaded model: separate worker
    processes would each import pandas, pyarrow, scikit-learn and skops again, which on a
    small machine costs more than the scoring (ADR 0034). Reading Parquet, ``predict_proba``
    and writing release the GIL, so threads still score in parallel. A cluster of processes
    is one ``--scheduler`` away."""
    cluster = None
    if not logging.getLogger("conveyor").isEnabledFor(logging.DEBUG):
        # the scheduler of a LocalCluster runs here and logs every worker's coming and going
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="15s")
            except OSError as exc:
                raise ConveyorRuntimeError(f"cannot reach the Dask scheduler {scheduler}: "
                                           f"{exc}") from exc
        else:
            # memory_limit=0: the workers share one process, whose memory a per-worker
            # limit would misread (pausing every worker); the local engine has no limit either
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False,
                                   dashboard_address=None, memory_limit=0,
                                   silence_logs=logging.CRITICAL)
            client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def in_process(client: Client) -> bool:
    """Whether the client's workers run in this process (the default LocalCluster)."""
    return getattr(client.cluster, "processes", True) is False


_MISMATCH = re.compile(r"\|\s*([^|\s]+)\s*\|\s*(object|str|string)\s*\|\s*(float\d*|int\d*)\s*\|")


def _bad_values(exc: ValueError, uris: list[str]) -> Exception:
    """Dask's read_csv reports a column whose later partition is not numeric as a table of
    mismatched dtypes: name the column (the local engine names the row too)."""
    where = uris[0] if len(uris) == 1 else f"{uris[0]} (and {len(uris) - 1} more files)"
    match = _MISMATCH.search(str(exc))
    if match:
        return BadInputError(f"{where}: column {match[1]!r} has a value that is not a number "
                             f"(expected {match[3]}); --engine local names the row")
    if isinstance(exc, ValueError) and "convert" in str(exc):
        return BadInputError(f"{where}: {first_line(exc)}")
    return exc


def _csv_blocksize(source: InputFiles, chunk_rows: int) -> int:
    """Bytes per CSV partition: about ``chunk_rows`` rows at the first file's row width."""
    with source.fs.open(source.paths[0], "rb") as handle:
        sample = handle.read(1 << 20)
    lines = max(sample.count(b"\n"), 1)
    return max(int(len(sample) / lines * chunk_rows), 4096)


def _warm() -> None:
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import skops.io  # noqa: F401


def warm_workers(client: Client) -> list[Any]:
    """Let every worker process import what scoring needs, without waiting for it (the
    futures; none for in-process workers, which share this process's imports)."""
    if in_process(client):
        return []
    workers = list(client.scheduler_info().get("workers", {}))
    return [client.submit(_warm, workers=[address], pure=False, allow_other_workers=False)
            for address in workers]


def score_dask(client: Client, model: Any, source: InputFiles, output: OutputTarget,
               scorer: ChunkScorer, chunk_rows: int,
               storage_options: Mapping[str, Any] | None,
               on_progress: ProgressCallback | None) -> int:
    """Score ``source`` on the cluster behind ``client`` into the folder ``output``; return
    the rows written."""
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    key = model.identity.sha256
    wanted = list(dict.fromkeys([*scorer.features] + (
        [scorer.id_column] if scorer.id_column else [])))
    uris = [source.uri(p) for p in source.paths]
    options = dict(storage_options or {})
    tmp = output.temporary()
    started = time.perf_counter()
    local = in_process(client)
    if local:  # in-process workers use the model already verified and loaded here
        _MODELS[key] = model.estimator
    try:
        client.register_plugin(ModelPlugin(key, _model_files(model.folder)))
        log.debug("model installed on %d workers in %.2fs",
                  len(client.scheduler_info().get("workers", {})), time.perf_counter() - started)
        if source.format == "parquet":
            frame = dd.read_parquet(uris, columns=wanted, storage_options=options,
                                    split_row_groups=True)
        else:
            frame = dd.read_csv(uris, usecols=wanted, storage_options=options,
                                blocksize=_csv_blocksize(source, chunk_rows))
        meta = pd.DataFrame({
            **({scorer.id_column: frame._meta[scorer.id_column]} if scorer.id_column
               else {}),
            **scorer.named({
                "prediction": pd.Series(np.asarray(scorer.classes or [0.0])[:0]),
                **{name: pd.Series([], dtype="float64") for name in scorer.proba_columns}})})
        scored = frame.map_partitions(score_partition, key, scorer, uris[0] if len(uris) == 1
                                     else source.uri(source.paths[0]).rsplit("/", 1)[0],
                                     meta=meta)
        try:
            scored.to_parquet(output.fs.unstrip_protocol(tmp), write_index=False,
                              storage_options=options)
        except ValueError as exc:
            raise _bad_values(exc, uris) from exc
        log.debug("%d partitions scored and written in %.2fs", scored.npartitions,
                  time.perf_counter() - started)
        rows = 0
        for part in sorted(output.fs.find(tmp)):
            if part.endswith(".parquet"):
                with output.fs.open(part, "rb") as handle:
                    rows += pq.ParquetFile(handle).metadata.num_rows
        if rows == 0:
            raise BadInputError(f"{uris[0]}: no rows to score")
        if on_progress is not None:
            on_progress(rows, rows, time.perf_counter() - started)
        with output.fs.open(f"{tmp}/{DONE_MARKER}", "wb") as handle:
            handle.write(json.dumps({"rows": rows, "model": model.identity.uri,
                                     "model_sha256": key}).encode())
        publish_output(output, tmp, folder=True)
    except BaseException:
        remove_quietly(output.fs, tmp)
        raise
    finally:
        if local:
            _MODELS.pop(key, None)
    return rows
