"""validate: check the raw table against the schema and write the typed, clean table.

Each check has a policy (``validate:`` in the spec): ``fail`` stops the run with a one-line
error naming the file, column, row and line; ``drop`` removes the offending rows (checks that
find rows only), counted and reported; ``warn`` records the finding in the report; ``off``
skips the check. The checks that find rows are one pandera schema validated lazily
(:mod:`conveyor.validation.rules`); the table is then compared with the pipeline's saved
schema (:mod:`conveyor.validation.baseline`). The report is written as JSON and HTML when
the step completes (ADR 0046).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.errors import DataError
from conveyor.steps.base import BaseStep, StepContext, StepResult
from conveyor.validation.problems import RowNamer

# the checks live below the steps (split checks split.test_data with them too); these names
# stay importable from here for the code and tests written before (ADR 0051)
from conveyor.validation.table import (  # noqa: F401
    check_binary_target,
    check_class_sizes,
    check_leakage,
    check_min_rows,
    check_missing_share,
    check_named_columns,
    check_numeric,
    check_two_classes,
    check_value_leakage,
    integral_target,
    model_inputs,
    numeric_target,
    validate_table,
)

if TYPE_CHECKING:
    from conveyor.store import ArtifactRef, Store

__all__ = ["ValidateStep", "accept_schema", "saved_schema_uri", "validate_table"]

log = logging.getLogger(__name__)


def saved_schema_uri(store: Store, pipeline: str) -> str:
    """Where a pipeline's saved schema is: ``{root}/{pipeline}/_schema/schema.json``."""
    return store.uri(pipeline, "_schema", "schema.json")


def _read_saved(store: Store, uri: str) -> tuple[dict[str, Any] | None, str | None]:
    """The saved schema and its sha256, or (None, None) when there is none yet."""
    import hashlib

    from conveyor.errors import StoreError

    try:
        data = store.get_bytes(uri)
    except (StoreError, FileNotFoundError):
        return None, None
    try:
        saved = json.loads(data)
    except ValueError as exc:
        raise DataError(f"the saved schema {uri} is not JSON ({exc}); accept a new one with "
                        "conveyor schema accept SPEC") from None
    return saved, hashlib.sha256(data).hexdigest()


def accept_schema(loaded: Any, store: Store) -> tuple[str, list[str]]:
    """Save the schema of the spec's data as now read, replacing the saved one.

    The data must pass the spec's other checks (the same ``validate_table`` a run applies);
    the differences from the schema it replaces are returned, for the user to see.

    Returns:
        (the saved schema's URI, one line per difference from the old schema).
    """
    import tempfile

    from conveyor.sources import scan_source
    from conveyor.sources.lines import LineMap
    from conveyor.store.tables import write_batches
    from conveyor.validation.baseline import TableStats, compare_schema, compare_stats
    from conveyor.validation.chunked import (
        ParquetChunks,
        chunk_rows,
        chunks_apply,
        validate_chunked,
    )

    spec = loaded.spec
    parts, facts = scan_source(spec.data, loaded.base_dir)
    with tempfile.TemporaryDirectory(prefix="conveyor-accept-") as folder:
        # the table as ingest writes it, then validated as a run validates it (ADR 0051)
        path, _, _ = write_batches(parts, folder)
        source = str(facts.get("uri", "data")).rsplit("/", 1)[-1]
        lines = LineMap.from_json(facts.get("lines"))
        size = chunk_rows(spec)
        chunks = ParquetChunks(path, size)
        if chunks_apply(chunks.rows, size, spec.derive):
            table, report = validate_chunked(chunks, chunks.columns, chunks.rows, spec,
                                             source=source, lines=lines)
        else:
            import pandas as pd

            frame = pd.read_parquet(path)
            if spec.derive:  # as a run validates: derived columns included
                from conveyor.features.derive import derive_frame

                frame = derive_frame(frame, spec.derive, source=source)
            table, report = validate_table(frame, spec, source=source, lines=lines)
        uri = saved_schema_uri(store, spec.name)
        old, _ = _read_saved(store, uri)
        changes: list[str] = []
        if old is not None:
            loose = type(spec.validate_.drift)(policy="warn")
            if callable(table):
                stats = TableStats(list(report["schema"]["columns"]), old)
                for chunk in table():
                    stats.update(chunk)
                found = compare_stats(stats, old, loose, source=source, namer=RowNamer(lines))
            else:
                found = compare_schema(table, old, loose, source=source, namer=RowNamer(lines))
            changes = [p.message for p in found]
    store.put_bytes(uri, json.dumps(report["schema"], indent=2, sort_keys=True).encode())
    return uri, changes


def _without(chunks: Any, columns: list[str]) -> Any:
    """``chunks`` (a function yielding frames) without ``columns``."""
    def without() -> Any:
        for chunk in chunks():
            yield chunk.drop(columns=[c for c in columns if c in chunk.columns])
    return without


def _log_failure(ctx: StepContext, exc: DataError, *, source: str, rows: int) -> None:
    """The report of a failed validation, to the run's MLflow run only (it ends FAILED).

    Nothing goes to the Store: a failed run leaves no object at a final artifact key.
    """
    from conveyor.errors import ConveyorError
    from conveyor.validation.report import render_html

    problems = getattr(exc, "problems", None)
    if not problems:
        return
    report = {"source": source, "rows_in": rows, "rows": rows, "passed": False,
              "error": str(exc), "problems": problems}
    try:
        ctx.tracker.log_bytes(json.dumps(report, indent=2).encode(), "validate/report.json")
        ctx.tracker.log_bytes(render_html(report).encode(), "validate/report.html")
    except ConveyorError as failed:  # the error to report is the data's, not MLflow's
        log.warning("validate: could not log the failure report: %s", failed)


class ValidateStep(BaseStep):
    """Check the raw table; write the typed table, the report (JSON and HTML) and the
    table's inferred schema. The first completed run saves that schema for the pipeline
    (:meth:`publish`); later runs are compared with it."""

    name = "validate"
    inputs = ("ingest.raw",)
    outputs = ("table", "report", "schema", "html")
    # derive: the derived columns are validated and leave the table for the model's inputs
    config_keys = ("schema", "validate", "derive")
    default = True

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
        warn, dropped = info.get("warnings", 0), info.get("dropped", 0)
        task = f", {info['task']}" if info.get("task") else ""
        return (f"{info.get('features')} features{task}" + (f", {warn} warnings" if warn else "")
                + (f", {dropped} rows dropped" if dropped else ""))

    def _run(self, ctx: StepContext) -> StepResult:
        from conveyor.sources.lines import LineMap  # conveyor.sources imports pandas
        from conveyor.validation.chunked import ParquetChunks, chunk_rows, chunks_apply
        from conveyor.validation.report import render_html

        ingest = ctx.upstream.get("ingest", {})
        source = str(ingest.get("source", "data")).rsplit("/", 1)[-1]
        lines = LineMap.from_json(ingest.get("lines"))
        derive = ctx.spec.derive
        saved_uri = saved_schema_uri(ctx.store, ctx.spec.name)
        saved, saved_sha = _read_saved(ctx.store, saved_uri)
        size = chunk_rows(ctx.spec)
        rows, chunks, table = ingest.get("rows"), None, None
        if not isinstance(rows, int) or chunks_apply(rows, size, derive):
            chunks = ParquetChunks(ctx.store.local_file(ctx.inputs["ingest.raw"], ctx.scratch),
                                   size)
        if chunks is not None and chunks_apply(chunks.rows, size, derive):
            # ADR 0051: never the whole table (one of at most a chunk is read whole, below)
            from conveyor.validation.chunked import validate_chunked

            try:
                table, report = validate_chunked(chunks, chunks.columns, chunks.rows, ctx.spec,
                                                 source=source, lines=lines, baseline=saved)
            except DataError as exc:
                _log_failure(ctx, exc, source=source, rows=chunks.rows)
                raise
        else:
            frame = ctx.read_table("ingest.raw")
            if derive:  # derived columns are validated like any column (docs/features.md)
                from conveyor.features.derive import derive_frame

                frame = derive_frame(frame, derive, source=source)
            try:
                table, report = validate_table(frame, ctx.spec, source=source, lines=lines,
                                               baseline=saved)
            except DataError as exc:
                _log_failure(ctx, exc, source=source, rows=len(frame))
                raise
            del frame
        from conveyor.modeling.tasks import check_task

        check_task(ctx.loaded, report["task"], report["task_reason"])
        if derive and callable(table):  # the model computes them, chunk by chunk
            import pandas as pd

            _, report = model_inputs(pd.DataFrame(), report, ctx.spec)
            table = _without(table, list(derive))
        elif derive:  # the model computes them: its inputs are the columns they read
            table, report = model_inputs(table, report, ctx.spec)
        if saved is not None:
            report["baseline"] = {"status": "compared with the saved schema", "uri": saved_uri,
                                  "sha256": saved_sha}
        if callable(table):
            written, _, _ = ctx.store.put_table_batches(ctx.output_uri("table.parquet"),
                                                         table())
        else:
            written = ctx.write_table("table", table)
        return StepResult(
            outputs={"table": written,
                     "report": ctx.write_json("report", report),
                     "schema": ctx.write_json("schema", report["schema"]),
                     "html": ctx.write_bytes("report.html", render_html(report).encode())},
            info={"rows": report["rows"], "features": len(report["features"]),
                  "warnings": len(report["warnings"]), "dropped": report["dropped"]["rows"],
                  "problems": len(report["problems"]), "baseline_sha256": saved_sha,
                  "task": report["task"], "task_reason": report["task_reason"]},
            metrics={"validate_rows_dropped": float(report["dropped"]["rows"]),
                     "validate_problems": float(len(report["problems"]))},
        )

    def reuse(self, ctx: StepContext, cached: StepResult,
              cached_from: str | None) -> dict[str, ArtifactRef]:
        """A cached result stands while the saved schema is the one it was compared with
        (or is its own table's schema); otherwise the step runs again, since the cache key
        (spec and input hashes) cannot see the saved schema change."""
        _, saved_sha = _read_saved(ctx.store, saved_schema_uri(ctx.store, ctx.spec.name))
        own = cached.outputs.get("schema")
        if saved_sha is None or saved_sha == cached.info.get("baseline_sha256") or (
                own is not None and own.sha256 == saved_sha):
            return {}
        log.info("validate: the saved schema changed since run %s; validating again",
                 cached_from)
        return dict(self.run(ctx).outputs)

    def publish(self, ctx: StepContext, outputs: Mapping[str, ArtifactRef]) -> None:
        """A pipeline's first completed run saves its table's schema (put once: of two
        first runs finishing together, one schema wins)."""
        ref = outputs.get("schema")
        uri = saved_schema_uri(ctx.store, ctx.spec.name)
        if ref is None or ctx.store.exists(uri):
            return
        if ctx.store.create_bytes(uri, ctx.store.get_bytes(ref.uri, sha256=ref.sha256)):
            log.info("validate: saved the schema of run %s as %s", ctx.run_id, uri)
