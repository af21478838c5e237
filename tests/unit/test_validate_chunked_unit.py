"""Validation in chunks gives what validation of the whole table gives (ADR 0051).

A differential test: every test of ``test_validate_table`` and ``test_validate_rules`` (the
bad-data corpus on the real WDBC file, the per-column rules, drops, drift) runs again with
their ``validate_table`` replaced by a twin that, besides returning the usual result, writes
the table to Parquet (as ingest does) and validates it twice: whole
(:func:`validate_table` on the file read whole) and in chunks of a few rows
(:func:`validate_chunked` on :class:`ParquetChunks`). The two must give the same report, the
same typed table, or the same error message and problems.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import test_validate_rules as rules_tests
import test_validate_table as table_tests

from conveyor.errors import DataError
from conveyor.spec.models import Spec
from conveyor.store.tables import write_batches
from conveyor.validation.chunked import ParquetChunks, chunks_apply, validate_chunked
from conveyor.validation.table import validate_table

wdbc_lines = table_tests.wdbc_lines  # the fixture that module defines, for its tests here

CHUNK = 16  # rows: the fixtures have 40 to 569 rows, so most checks straddle chunks
COMPARED: list[str] = []  # what each twin compared (the test asserts it compared something)


def _outcome(call: Callable[[], tuple[Any, dict[str, Any]]]) -> tuple[str, Any, Any]:
    try:
        table, report = call()
    except DataError as exc:
        return "error", str(exc), json.dumps(getattr(exc, "problems", None), default=str)
    return "ok", table, json.dumps(report, default=str, sort_keys=True)


def twin(folder: Path) -> Callable[..., tuple[Any, dict[str, Any]]]:
    """``validate_table`` that also checks the chunked path against the whole one."""

    def both(frame: Any, spec: Any, *, source: str, lines: Any = None,
             baseline: Any = None) -> tuple[Any, dict[str, Any]]:
        path = folder / f"raw-{len(COMPARED)}.parquet"
        try:
            frame.to_parquet(path, index=False)
        except (ValueError, TypeError, ArithmeticError):  # a frame ingest could not write
            return validate_table(frame, spec, source=source, lines=lines, baseline=baseline)
        whole = _outcome(lambda: validate_table(pd.read_parquet(path), spec, source=source,
                                                lines=lines, baseline=baseline))
        chunks = ParquetChunks(path, CHUNK)
        assert chunks_apply(chunks.rows, CHUNK) or chunks.rows <= CHUNK

        def chunked() -> tuple[Any, dict[str, Any]]:
            table, report = validate_chunked(chunks, chunks.columns, chunks.rows, spec,
                                             source=source, lines=lines, baseline=baseline)
            written, _, _ = write_batches(table(), folder)
            return pd.read_parquet(written), report

        parts = _outcome(chunked)
        assert parts[0] == whole[0], (whole[1], parts[1])
        if whole[0] == "error":
            assert parts[1] == whole[1]
            assert parts[2] == whole[2]
        else:
            assert parts[2] == whole[2]
            pd.testing.assert_frame_equal(parts[1], whole[1].reset_index(drop=True))
        COMPARED.append(whole[0])
        return validate_table(frame, spec, source=source, lines=lines, baseline=baseline)

    return both


#: the cases that end in the reader, before a table exists (empty, header-only, bad bytes, ...)
_READER_FAILS = {
    "test_blank_lines_only", "test_comment_line_is_named_by_its_line", "test_empty_file",
    "test_file_over_the_size_limit", "test_header_only_file", "test_missing_column_raw_file",
    "test_missing_column_with_header", "test_missing_data_file",
    "test_non_utf8_byte_names_the_line", "test_too_few_fields_names_the_line",
    "test_too_many_fields_names_the_line", "test_truncated_parquet",
    "test_unclosed_quote_names_the_line_it_opens_on",
    # checks one coercion function on a column, not a table
    "test_integer_dtype_and_text_coerced_for_a_numeric_rule",
}


def _validates(module: Any, fn: Any) -> bool:
    """Whether ``fn`` calls ``validate_table``, itself or through its module's helpers (and
    fixtures), followed to any depth."""
    seen, todo = set(), [fn]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        if "validate_table(" in inspect.getsource(f):
            return True
        names = [*f.__code__.co_names, *inspect.signature(f).parameters]
        for name in names:
            found = getattr(vars(module).get(name), "__wrapped__", vars(module).get(name))
            if inspect.isfunction(found):
                todo.append(found)
    return False


def _cases() -> list[Any]:
    cases = []
    for module in (table_tests, rules_tests):
        for name, fn in vars(module).items():
            if not name.startswith("test_") or not inspect.isfunction(fn):
                continue
            if not _validates(module, fn):
                continue  # a check function alone: there is no whole table to compare
            marks = getattr(fn, "pytestmark", [])
            grids = [m for m in marks if m.name == "parametrize"]
            if not grids:
                cases.append(pytest.param(module, fn, {}, id=f"{module.__name__}::{name}"))
                continue
            names, values = grids[0].args[0], grids[0].args[1]
            names = [n.strip() for n in names.split(",")] if isinstance(names, str) else names
            for i, value in enumerate(values):
                value = value.values if hasattr(value, "values") else value
                value = value if len(names) > 1 else (value,)
                cases.append(pytest.param(module, fn, dict(zip(names, value, strict=True)),
                                          id=f"{module.__name__}::{name}[{i}]"))
    return cases


@pytest.mark.parametrize(("module", "fn", "params"), _cases())
def test_chunks_give_the_whole_tables_result(module: Any, fn: Any, params: dict[str, Any],
                                             request: pytest.FixtureRequest,
                                             monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    folder = tmp_path / "twin"
    folder.mkdir()
    monkeypatch.setattr(module, "validate_table", twin(folder))
    before = len(COMPARED)
    kwargs = {name: params[name] if name in params else request.getfixturevalue(name)
              for name in inspect.signature(fn).parameters}
    fn(**kwargs)
    # The twin compared the two paths, and they agreed; a case whose file failed to read never
    # reached validate_table (its own assertions on the reader's error ran above).
    assert COMPARED[before:] or fn.__name__ in _READER_FAILS, fn.__name__


def people(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    age = rng.normal(40, 12, rows)
    age[rng.random(rows) < 0.05] = np.nan
    ids = np.arange(rows)
    ids[rows - 3] = 11  # an id that repeats three chunks later
    return pd.DataFrame({"id": ids, "age": age, "code": rng.choice(["1", "2", "x"], rows,
                                                                   p=[.5, .49, .01]),
                         "city": rng.choice(["Oslo", "Lima", "Pune"], rows),
                         "label": rng.choice(["yes", "no"], rows)})


@pytest.mark.parametrize("policy", ["drop", "warn"])
def test_repeats_across_chunks_typos_and_drift_match(tmp_path: Path, policy: str) -> None:
    """Repeated ids in far-apart chunks, typos in a numeric text column, drops and drift."""
    spec = Spec.model_validate({
        "name": "t", "data": {"source": "file", "uri": "people.csv"},
        "schema": {"target": "label", "id": "id"},
        "validate": {"duplicate_ids": policy, "types": "warn", "drift": {"policy": "warn"},
                     "columns": {"age": {"min": 18, "policy": policy}}},
        "model": {"estimator": "logistic_regression"}})
    before = people(300)
    _, first = validate_table(before, spec, source="people.csv")
    after = people(300)
    after.loc[::9, "city"] = "Rome"
    after["age"] = after["age"] + 30
    twin(tmp_path)(after, spec, source="people.csv", baseline=first["schema"])
    assert COMPARED[-1] == "ok"


def _same(tmp_path: Path, raw: pd.DataFrame, spec: Spec, chunk: int) -> dict[str, Any]:
    """Validate ``raw`` (derived columns added as the step adds them) whole and in chunks;
    both must give the same report and table. Returns the report."""
    from conveyor.features.derive import derive_frame

    path = tmp_path / "raw.parquet"
    raw.to_parquet(path, index=False)
    frame = pd.read_parquet(path)
    if spec.derive:
        frame = derive_frame(frame, spec.derive, source="raw")
    table, report = validate_table(frame, spec, source="raw")
    chunks = ParquetChunks(path, chunk)
    parts, chunked_report = validate_chunked(chunks, chunks.columns, chunks.rows, spec,
                                             source="raw")
    written, _, _ = write_batches(parts(), tmp_path)
    assert json.dumps(chunked_report, sort_keys=True, default=str) == json.dumps(
        report, sort_keys=True, default=str)
    pd.testing.assert_frame_equal(pd.read_parquet(written), table.reset_index(drop=True))
    return report


def test_titanic_with_derived_columns_matches(tmp_path: Path, titanic_dir: Path) -> None:
    """Dirty real data (missing Age, Cabin, Embarked; text) and three derived columns."""
    import yaml

    example = Path(__file__).resolve().parents[2] / "examples" / "titanic" / "pipeline.yaml"
    data = yaml.safe_load(example.read_text())
    data["data"]["uri"] = str(titanic_dir / "train.csv")
    report = _same(tmp_path, pd.read_csv(titanic_dir / "train.csv"),
                   Spec.model_validate(data), 100)
    assert {"title", "family_size", "has_cabin"} <= set(report["features"])
    assert report["missing"]["Age"] == 177


def test_a_regression_target_matches(tmp_path: Path) -> None:
    """A numeric target: the task rule, the constant check and value leakage (merged
    correlation) in chunks."""
    frame = people(500).drop(columns=["label"])
    frame["score"] = frame["id"] * 0.5 + np.random.default_rng(5).normal(0, 1, 500)
    frame["leak"] = frame["score"] * 3 + 1  # a linear function of the target
    spec = Spec.model_validate({
        "name": "t", "data": {"source": "file", "uri": "people.csv"},
        "schema": {"target": "score"}, "validate": {"leakage": "warn", "types": "warn"},
        "model": {"estimator": "ridge"}})
    report = _same(tmp_path, frame, spec, 64)
    assert report["task"] == "regression"
    assert [p["column"] for p in report["problems"] if p["check"] == "leakage"] == ["leak"]


def test_chunks_type_each_column_as_a_whole_read_does(tmp_path: Path) -> None:
    """An integer column missing a value in one row group is float64 in every chunk, a
    boolean one object; also from a file written without statistics."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"i": pa.array([None, None, 3, 4], pa.int64()),
                      "b": pa.array([None, True, False, True]), "f": [1.0, 2, 3, 4]})
    for stats in (True, False):
        path = tmp_path / f"t-{stats}.parquet"
        pq.write_table(table, path, row_group_size=2, write_statistics=stats)
        whole = pd.read_parquet(path)
        parts = list(ParquetChunks(path, 1)())
        assert [len(p) for p in parts] == [1, 1, 1, 1]
        assert [p.index[0] for p in parts] == [0, 1, 2, 3]  # rows of the whole file
        for part in parts:
            assert part.dtypes.to_dict() == whole.dtypes.to_dict()
        pd.testing.assert_frame_equal(pd.concat(parts), whole)


def test_take_rows_gives_the_rows_in_the_order_asked(tmp_path: Path) -> None:
    from conveyor.validation.chunked import take_rows

    frame = people(103)
    path = tmp_path / "t.parquet"
    frame.to_parquet(path, index=False, row_group_size=20)
    order = np.random.default_rng(0).permutation(103)
    tables = take_rows(ParquetChunks(path, 10), {"a": order[:80], "b": order[80:]}, tmp_path)
    for name, rows in (("a", order[:80]), ("b", order[80:])):
        parts = list(tables[name]())
        assert max(len(p) for p in parts) <= 10
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True),
                                      frame.iloc[rows].reset_index(drop=True))
