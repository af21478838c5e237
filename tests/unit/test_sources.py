"""The readers: CSV, Parquet and JSON lines from files, the bundled data sets, and line maps.

Each table is written into ``tmp_path`` and read back by the reader the ingest step uses;
the line a row starts on must be the one an editor shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conveyor.errors import DataError
from conveyor.sources import read_source
from conveyor.sources.files import read_file_source
from conveyor.sources.lines import MAX_RUNS, LineMap
from conveyor.spec.models import FileSource, SklearnSource


def read(tmp_path: Path, name: str, data: bytes, **source: Any) -> tuple[pd.DataFrame,
                                                                          dict[str, Any]]:
    (tmp_path / name).write_bytes(data)
    return read_file_source(FileSource.model_validate({"uri": name, **source}), tmp_path)


def lines_of(facts: dict[str, Any], rows: int) -> list[int | None]:
    lines = LineMap.from_json(facts["lines"])
    assert lines is not None
    return [lines.line(row) for row in range(rows)]


# --------------------------------------------------------------------------- CSV


def test_csv_with_a_header_counts_it_in_the_lines(tmp_path: Path) -> None:
    frame, facts = read(tmp_path, "t.csv", b"a,b,y\n1,x,0\n\n2,y,1\n3,z,0\n", header=True)
    assert frame.to_dict("list") == {"a": [1, 2, 3], "b": ["x", "y", "z"], "y": [0, 1, 0]}
    assert lines_of(facts, 3) == [2, 4, 5]  # the header is line 1, line 3 is blank
    assert facts["format"] == "csv" and facts["first_line"] == 2
    assert facts["uri"] == (tmp_path / "t.csv").as_uri() and facts["bytes"] == 25


def test_csv_without_a_header_takes_the_names_from_the_spec(tmp_path: Path) -> None:
    frame, facts = read(tmp_path, "t.data", b"1,x,0\n2,y,1\n", header=False,
                        columns=["a", "b", "y"])
    assert list(frame.columns) == ["a", "b", "y"] and frame["a"].tolist() == [1, 2]
    assert lines_of(facts, 2) == [1, 2]


def test_csv_missing_values_are_the_spec_na_values_only(tmp_path: Path) -> None:
    frame, _ = read(tmp_path, "t.csv", b"a,b\nNA,none\n?,N/A\n", header=True)
    assert frame["a"].isna().tolist() == [True, True]
    assert frame["b"].tolist()[0] == "none" and pd.isna(frame["b"].tolist()[1])


def test_csv_header_only_csv_and_header_with_named_columns(tmp_path: Path) -> None:
    frame, _ = read(tmp_path, "t.csv", b"y,a,b\n0,1,2\n", header=True, columns=["a", "y"])
    assert list(frame.columns) == ["a", "y"]  # data.columns picks and orders
    with pytest.raises(DataError, match=r"^h.csv has a header but no rows$"):
        read(tmp_path, "h.csv", b"a,b\n", header=True)


def test_csv_without_header_or_columns_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        read(tmp_path, "t.csv", b"1,2\n", header=False)
    assert str(caught.value) == "t.csv has no header row: name its columns in data.columns"


def test_csv_other_separator(tmp_path: Path) -> None:
    frame, facts = read(tmp_path, "t.csv", b"a;b\n1;2\n3;4\n", header=True, separator=";")
    assert frame.to_dict("list") == {"a": [1, 3], "b": [2, 4]}
    assert lines_of(facts, 2) == [2, 3]


# --------------------------------------------------------------------------- Parquet, JSON lines


def test_parquet_round_trips_and_has_no_lines(tmp_path: Path) -> None:
    source = pd.DataFrame({"a": [1.5, 2.5], "y": ["p", "q"]})
    source.to_parquet(tmp_path / "t.parquet", index=False)
    frame, facts = read_file_source(FileSource(uri="t.parquet"), tmp_path)
    pd.testing.assert_frame_equal(frame, source)
    assert facts["format"] == "parquet" and facts["lines"] is None
    assert facts["first_line"] is None


def test_jsonl_skips_blank_lines_and_names_the_true_ones(tmp_path: Path) -> None:
    records = [json.dumps({"a": i, "y": i % 2}) for i in range(4)]
    data = "\n".join([records[0], "", records[1], records[2], "  ", records[3]]) + "\n"
    frame, facts = read(tmp_path, "t.jsonl", data.encode())
    assert frame["a"].tolist() == [0, 1, 2, 3] and facts["format"] == "jsonl"
    assert lines_of(facts, 4) == [1, 3, 4, 6]


def test_jsonl_mixed_types_in_a_column_become_text(tmp_path: Path) -> None:
    data = b'{"a": 1.5}\n{"a": "N/D"}\n{"a": null}\n'
    frame, _ = read(tmp_path, "t.ndjson", data)
    assert frame["a"].tolist()[:2] == ["1.5", "N/D"] and pd.isna(frame["a"].tolist()[2])


def test_jsonl_with_named_columns_checks_them(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        read(tmp_path, "t.jsonl", b'{"a": 1}\n', columns=["a", "b"])
    assert str(caught.value) == "t.jsonl has no column(s) b (data.columns)"


@pytest.mark.parametrize(("name", "fmt"), [("t.pq", "parquet"), ("t.ndjson", "jsonl"),
                                           ("t.txt", "csv")])
def test_the_format_follows_the_suffix(tmp_path: Path, name: str, fmt: str) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    if fmt == "parquet":
        frame.to_parquet(tmp_path / name, index=False)
    elif fmt == "jsonl":
        (tmp_path / name).write_text(frame.to_json(orient="records", lines=True))
    else:
        (tmp_path / name).write_text("a\n1\n2\n")
    read_frame, facts = read_file_source(FileSource(uri=name, header=True), tmp_path)
    assert facts["format"] == fmt and read_frame["a"].tolist() == [1, 2]


# --------------------------------------------------------------------------- bundled


def test_bundled_breast_cancer_is_shaped_like_the_raw_wdbc_file() -> None:
    frame, facts = read_source(SklearnSource(source="sklearn", name="breast_cancer"), Path("."))
    assert frame.shape == (569, 31)
    assert list(frame.columns[:3]) == ["diagnosis", "radius_mean", "texture_mean"]
    assert {"radius_se", "concave_points_worst", "fractal_dimension_mean"} <= set(frame.columns)
    assert frame["diagnosis"].value_counts().to_dict() == {"B": 357, "M": 212}
    assert facts == {"uri": "sklearn://breast_cancer", "bytes": 0, "first_line": None,
                     "lines": None, "format": "sklearn"}


def test_bundled_iris_names_its_classes() -> None:
    frame, _ = read_source(SklearnSource(source="sklearn", name="iris"), Path("."))
    assert list(frame.columns) == ["sepal_length", "sepal_width", "petal_length",
                                   "petal_width", "target"]
    assert frame["target"].value_counts().to_dict() == {
        "setosa": 50, "versicolor": 50, "virginica": 50}


# --------------------------------------------------------------------------- line maps


def test_line_map_keeps_runs_of_consecutive_lines() -> None:
    lines = LineMap.from_lines([2, 3, 4, 7, 8, 10])
    assert lines.runs == ((0, 2, 3), (3, 7, 2), (5, 10, 1))
    assert [lines.line(r) for r in range(7)] == [2, 3, 4, 7, 8, 10, None]
    assert LineMap.from_json(lines.to_json()) == lines
    assert LineMap.from_json(None) is None and LineMap.from_json([]) is None


def test_line_map_stops_after_max_runs() -> None:
    lines = LineMap.from_lines(range(1, 4 * MAX_RUNS, 2))  # every row its own run
    assert len(lines.runs) == MAX_RUNS
    assert lines.line(MAX_RUNS - 1) == 2 * MAX_RUNS - 1 and lines.line(MAX_RUNS) is None
