"""The bad-data corpus against the reader and ``validate_table`` directly: no CLI, no MLflow.

Every case writes a modified copy of the real WDBC file into ``tmp_path``, reads it as the
ingest step does (:func:`conveyor.sources.read_source`) and validates it as the validate step
does (the file name as ``source``, the reader's line map as ``lines``). A failure is one
:class:`DataError` of one line naming the file, column, row/line or value. A few cases run
through ``conveyor run`` end to end in tests/integration/test_bad_data.py (exit code 2,
nothing that looks finished, the MLflow run FAILED).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from conveyor.errors import DataError
from conveyor.sources import read_source
from conveyor.sources.lines import LineMap
from conveyor.spec.models import Spec
from conveyor.steps.validate import (
    check_class_sizes,
    check_leakage,
    check_missing_share,
    check_numeric,
    validate_table,
)
from conveyor.validation import RowNamer, row_problems

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"
COLUMNS: list[str] = yaml.safe_load(EXAMPLE.read_text())["data"]["columns"]
Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="session")
def wdbc_lines(wdbc_path: Path) -> list[str]:
    return wdbc_path.read_text().splitlines(keepends=True)


# --------------------------------------------------------------------------- helpers


def set_cell(lines: list[str], row: int, column: str, value: str) -> list[str]:
    """A copy of ``lines`` with one field replaced (row is 0-based over the data rows)."""
    out = list(lines)
    fields = out[row].rstrip("\n").split(",")
    fields[COLUMNS.index(column)] = value
    out[row] = ",".join(fields) + "\n"
    return out


def header_true(spec: dict[str, Any]) -> None:
    spec["data"]["header"] = True


def with_header(lines: list[str], columns: list[str] = COLUMNS) -> bytes:
    return (",".join(columns) + "\n" + "".join(lines)).encode()


def make_spec(data: dict[str, Any], edit: Edit | None = None) -> Spec:
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["data"] = {**spec["data"], **data}
    if edit is not None:
        edit(spec)
    return Spec.model_validate(spec)


def ingest_and_validate(tmp_path: Path, data: bytes, name: str,
                        edit: Edit | None = None) -> tuple[Any, dict[str, Any]]:
    """What the ingest and validate steps do with ``data`` saved as ``<name>.data``."""
    path = tmp_path / f"{name}.data"
    path.write_bytes(data)
    spec = make_spec({"uri": str(path)}, edit)
    return validate_spec(spec, tmp_path)


def validate_spec(spec: Spec, base_dir: Path) -> tuple[Any, dict[str, Any]]:
    frame, facts = read_source(spec.data, base_dir)
    return validate_table(frame, spec, source=facts["uri"].rsplit("/", 1)[-1],
                          lines=LineMap.from_json(facts["lines"]))


def fails(tmp_path: Path, data: bytes, name: str, *fragments: str,
          edit: Edit | None = None) -> str:
    """The one-line DataError message, checked to hold every fragment."""
    with pytest.raises(DataError) as caught:
        ingest_and_validate(tmp_path, data, name, edit)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def joined(lines: list[str]) -> bytes:
    return "".join(lines).encode()


# --------------------------------------------------------------------------- the file itself


def test_missing_column_raw_file(tmp_path: Path, wdbc_lines: list[str]) -> None:
    data = "".join(line.rsplit(",", 1)[0] + "\n" for line in wdbc_lines).encode()
    fails(tmp_path, data, "wdbc_31", "wdbc_31.data has 31 fields per row but data.columns "
          "names 32")


def test_missing_column_with_header(tmp_path: Path, wdbc_lines: list[str]) -> None:
    drop = COLUMNS.index("texture_mean")
    lines = [",".join(f for i, f in enumerate(line.rstrip("\n").split(",")) if i != drop) + "\n"
             for line in wdbc_lines]
    data = with_header(lines, [c for c in COLUMNS if c != "texture_mean"])
    fails(tmp_path, data, "no_texture", "no_texture.data has no column(s) texture_mean",
          "(data.columns)", edit=header_true)


def test_empty_file(tmp_path: Path) -> None:
    fails(tmp_path, b"", "empty", "empty.data is empty (0 bytes)", "(data.uri)")


def test_blank_lines_only(tmp_path: Path) -> None:
    fails(tmp_path, b"\n\r\n  \n", "blank", "blank.data is empty (only blank lines)")


def test_header_only_file(tmp_path: Path) -> None:
    fails(tmp_path, with_header([]), "header_only", "header_only.data has a header but no rows",
          edit=header_true)


def test_too_many_fields_names_the_line(tmp_path: Path, wdbc_lines: list[str]) -> None:
    lines = list(wdbc_lines)
    lines[50] = lines[50].rstrip("\n") + ",1.0,2.0\n"
    fails(tmp_path, joined(lines), "wide", "wide.data", "line 51", "34 fields, expected 32")


def test_too_few_fields_names_the_line(tmp_path: Path, wdbc_lines: list[str]) -> None:
    lines = list(wdbc_lines)
    lines[50] = ",".join(lines[50].split(",")[:4]) + "\n"
    fails(tmp_path, joined(lines), "short", "short.data", "line 51", "4 fields, expected 32")


def test_file_over_the_size_limit(tmp_path: Path, wdbc_lines: list[str]) -> None:
    size = len(joined(wdbc_lines))
    fails(tmp_path, joined(wdbc_lines), "big", f"big.data is {size:,} bytes, over the limit "
          "of 1,000 (data.max_bytes)", edit=lambda s: s["data"].update(max_bytes=1000))


def test_truncated_parquet(tmp_path: Path, wdbc_path: Path) -> None:
    frame = pd.read_csv(wdbc_path, header=None, names=COLUMNS)
    full = tmp_path / "full.parquet"
    frame.to_parquet(full, index=False)
    data = full.read_bytes()
    fails(tmp_path, data[: len(data) // 2], "cut", "cut.data is not a readable parquet file",
          edit=lambda s: s["data"].update(format="parquet"))


def test_missing_data_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        validate_spec(make_spec({"uri": str(tmp_path / "gone.data")}), tmp_path)
    assert str(caught.value) == f"data file not found: {tmp_path}/gone.data (data.uri)"


def test_non_utf8_byte_names_the_line(tmp_path: Path, wdbc_lines: list[str]) -> None:
    bad = wdbc_lines[40].replace(",M,", ",M\xe9,").encode("latin-1")
    data = joined(wdbc_lines[:40]) + bad + joined(wdbc_lines[41:])
    fails(tmp_path, data, "latin1", "latin1.data line 41: byte 0xe9 is not UTF-8",
          "re-save the file as UTF-8")


def test_unclosed_quote_names_the_line_it_opens_on(tmp_path: Path,
                                                   wdbc_lines: list[str]) -> None:
    lines = set_cell(wdbc_lines, 60, "texture_mean", '"17.5')
    fails(tmp_path, joined(lines), "quote", "quote.data line 61:", "(an unclosed quote?)")


def test_comment_line_is_named_by_its_line(tmp_path: Path, wdbc_lines: list[str]) -> None:
    data = "".join(["\n", *wdbc_lines[:28], "# exported 2024-01-01\n", *wdbc_lines[28:]])
    fails(tmp_path, data.encode(), "comment", "comment.data line 30: 1 fields, expected 32")


# --------------------------------------------------------------------------- columns and values


def test_missing_target_column_named_by_schema(tmp_path: Path, wdbc_lines: list[str]) -> None:
    names = ["id", "diagnosis_code", *COLUMNS[2:]]

    def edit(spec: dict[str, Any]) -> None:
        spec["data"]["header"] = True
        del spec["data"]["columns"]

    message = fails(tmp_path, with_header(wdbc_lines, names), "renamed", edit=edit)
    assert message == ("renamed.data: column 'diagnosis' (schema.target) is missing; did you "
                       "mean 'diagnosis_code'?")


@pytest.mark.parametrize(
    ("value", "shown"),
    [('"1,234"', "'1,234'"), ("n.a.", "'n.a.'"), ("unknown", "'unknown'"),
     ("#VALUE!", "'#VALUE!'"), ("12..5", "'12..5'")],
)
def test_non_numeric_value_names_column_row_and_value(
    tmp_path: Path, wdbc_lines: list[str], value: str, shown: str,
) -> None:
    lines = set_cell(wdbc_lines, 9, "perimeter_mean", value)
    message = fails(tmp_path, joined(lines), "typo")
    assert message == (f"typo.data: column 'perimeter_mean', row 10 (line 10): {shown} is not "
                       "a number (1 such rows)")


def test_non_numeric_line_counts_the_header(tmp_path: Path, wdbc_lines: list[str]) -> None:
    lines = set_cell(wdbc_lines, 99, "area_worst", "N/D")
    lines = set_cell(lines, 200, "area_worst", "N/D")
    message = fails(tmp_path, with_header(lines), "hdr", edit=header_true)
    assert message == ("hdr.data: column 'area_worst', row 100 (line 101): 'N/D' is not a "
                       "number (2 such rows)")


def test_infinite_feature(tmp_path: Path, wdbc_lines: list[str]) -> None:
    lines = set_cell(wdbc_lines, 4, "radius_se", "-inf")
    message = fails(tmp_path, joined(lines), "inf")
    assert message == "inf.data: column 'radius_se', row 5 (line 5): -inf is not finite"


def test_all_nan_column(tmp_path: Path, wdbc_lines: list[str]) -> None:
    lines = list(wdbc_lines)
    for row in range(len(lines)):
        lines = set_cell(lines, row, "compactness_mean", "NA" if row % 2 else "")
    message = fails(tmp_path, joined(lines), "all_nan")
    assert message == ("all_nan.data: column 'compactness_mean' has no values (all missing); "
                       "drop it with schema.drop")


def test_nan_in_target(tmp_path: Path, wdbc_lines: list[str]) -> None:
    lines = set_cell(wdbc_lines, 20, "diagnosis", "NaN")
    lines = set_cell(lines, 300, "diagnosis", "")
    message = fails(tmp_path, joined(lines), "nan_target")
    assert message == ("nan_target.data: target 'diagnosis' is missing or not finite in 2 rows "
                       "(first: row 21 (line 21))")


def test_inf_in_numeric_target(tmp_path: Path, wdbc_lines: list[str]) -> None:
    lines = [line.replace(",M,", ",1,", 1).replace(",B,", ",0,", 1) for line in wdbc_lines]
    lines = set_cell(lines, 20, "diagnosis", "inf")
    fails(tmp_path, joined(lines), "inf_target", "target 'diagnosis' is missing or not finite "
          "in 1 rows (first: row 21 (line 21))",
          edit=lambda s: s["schema"].update(positive_label=1))


def test_target_values_cannot_be_waived(tmp_path: Path, wdbc_lines: list[str]) -> None:
    """Rows without a target cannot be trained on: ``warn`` still fails."""
    lines = set_cell(wdbc_lines, 20, "diagnosis", "")
    fails(tmp_path, joined(lines), "waived", "target 'diagnosis' is missing",
          edit=lambda s: s.setdefault("validate", {}).update(target_values="warn"))


def test_duplicated_ids(tmp_path: Path, wdbc_lines: list[str]) -> None:
    repeated = wdbc_lines[3].split(",", 1)[0]
    lines = set_cell(wdbc_lines, 30, "id", repeated)
    message = fails(tmp_path, joined(lines), "dup_ids")
    # the id is shown plainly (842517, not np.int64(842517))
    assert message == (f"dup_ids.data: id {repeated} in 'id' repeats on row 4 (line 4) and "
                       "row 31 (line 31) (1 repeats)")


def test_single_class_target(tmp_path: Path, wdbc_lines: list[str]) -> None:
    data = "".join(line for line in wdbc_lines if ",B," in line).encode()
    message = fails(tmp_path, data, "benign_only")
    assert message == ("benign_only.data: target 'diagnosis' has a single class 'B'; a "
                       "classifier needs at least two")


def test_class_with_too_few_rows(tmp_path: Path, wdbc_lines: list[str]) -> None:
    lines = set_cell(wdbc_lines, 50, "diagnosis", "X")

    def multiclass(spec: dict[str, Any]) -> None:  # under a binary spec "X" is a bad label
        del spec["schema"]["positive_label"]

    message = fails(tmp_path, joined(lines), "rare", edit=multiclass)
    assert message == ("rare.data: class 'X' of 'diagnosis' has 1 rows; "
                       "validate.min_class_rows is 2")


@pytest.mark.parametrize("numeric", [False, True], ids=["text-copy", "numeric-code"])
def test_leakage_column(tmp_path: Path, wdbc_lines: list[str], numeric: bool) -> None:
    def leak(line: str) -> str:
        label = line.split(",")[1]
        value = {"M": "1", "B": "0"}[label] if numeric else label
        return line.rstrip("\n") + "," + value + "\n"

    def edit(spec: dict[str, Any]) -> None:
        spec["data"]["columns"].append("diagnosis_copy")

    message = fails(tmp_path, "".join(leak(line) for line in wdbc_lines).encode(), "leaky",
                    edit=edit)
    assert message == ("leaky.data: column 'diagnosis_copy' determines the target 'diagnosis' "
                       "exactly (leakage); drop it with schema.drop")


def test_positive_label_not_in_target(tmp_path: Path, wdbc_lines: list[str]) -> None:
    message = fails(tmp_path, joined(wdbc_lines), "label",
                    edit=lambda s: s["schema"].update(positive_label="Malignant"))
    assert message == ("label.data: schema.positive_label 'Malignant' is not a value of "
                       "'diagnosis' (values: B, M)")


# --------------------------------------------------------------------------- must work


def test_bom_at_file_start_works(tmp_path: Path, wdbc_lines: list[str]) -> None:
    """With a header row the BOM would otherwise glue itself to the ``id`` column's name."""
    table, report = ingest_and_validate(tmp_path, b"\xef\xbb\xbf" + with_header(wdbc_lines),
                                        "bom", header_true)
    assert list(table.columns[:2]) == ["id", "diagnosis"]
    assert report["rows"] == 569 and report["columns"] == 32
    assert report["classes"] == {"B": 357, "M": 212}
    assert len(report["features"]) == 30 and "id" not in report["features"]
    assert report["warnings"] == [] and report["missing"] == {}


def test_a_warn_policy_records_the_finding_and_types_the_column(
    tmp_path: Path, wdbc_lines: list[str],
) -> None:
    lines = set_cell(wdbc_lines, 9, "perimeter_mean", "n.a.")
    table, report = ingest_and_validate(
        tmp_path, joined(lines), "warned",
        lambda s: s.setdefault("validate", {}).update(types="warn"))
    assert report["warnings"] == [{
        "check": "types", "message": "warned.data: column 'perimeter_mean', row 10 (line 10): "
                                     "'n.a.' is not a number (1 such rows)"}]
    assert table["perimeter_mean"].dtype == "float64"
    assert report["missing"] == {"perimeter_mean": 1}


def test_an_off_policy_skips_the_check(tmp_path: Path, wdbc_lines: list[str]) -> None:
    repeated = wdbc_lines[3].split(",", 1)[0]
    lines = set_cell(wdbc_lines, 30, "id", repeated)
    _, report = ingest_and_validate(
        tmp_path, joined(lines), "dups_allowed",
        lambda s: s.setdefault("validate", {}).update(duplicate_ids="off"))
    assert report["warnings"] == [] and report["rows"] == 569


# --------------------------------------------------------------------------- a binary target


def accuracy_gate_only(spec: dict[str, Any]) -> None:
    spec["gate"] = {"test_accuracy": 0.5}


def test_third_label_under_binary_spec_names_its_rows(tmp_path: Path,
                                                      wdbc_lines: list[str]) -> None:
    lines = list(wdbc_lines)
    for row in (50, 120, 300):
        lines = set_cell(lines, row, "diagnosis", "X")
    labels = [line.split(",")[1] for line in lines]
    message = fails(tmp_path, joined(lines), "third", edit=accuracy_gate_only)
    assert message == (
        f"third.data: target 'diagnosis' has 3 classes (B {labels.count('B')}, "
        f"M {labels.count('M')}, X 3) but schema.positive_label 'M' makes the task binary "
        "('M' against 'B'); 3 rows hold 'X': row 51 (line 51), row 121 (line 121), row 301 "
        "(line 301); correct or remove them, or drop schema.positive_label to train a "
        "multiclass model")


def test_many_rows_of_other_labels_are_sampled_and_counted(tmp_path: Path,
                                                           wdbc_lines: list[str]) -> None:
    lines = list(wdbc_lines)
    for row in range(10, 80, 10):
        lines = set_cell(lines, row, "diagnosis", "X" if row < 60 else "?B")
    fails(tmp_path, with_header(lines), "sampled", "7 rows hold 'X', '?B': row 11 (line 12), "
          "row 21 (line 22), row 31 (line 32), row 41 (line 42), row 51 (line 52) and 2 more",
          edit=lambda s: (header_true(s), accuracy_gate_only(s)))


def test_bundled_data_under_a_binary_spec_names_rows_without_lines(tmp_path: Path) -> None:
    """Iris has three classes: ``positive_label: setosa`` cannot make it binary."""
    spec = Spec.model_validate({
        "name": "iris_binary", "data": {"source": "sklearn", "name": "iris"},
        "schema": {"target": "target", "positive_label": "setosa"},
        "model": {"estimator": "logistic_regression", "params": {"max_iter": 500}},
        "gate": {"test_accuracy": 0.5}, "registry": {"name": "iris_binary"},
    })
    with pytest.raises(DataError) as caught:
        validate_spec(spec, tmp_path)
    assert str(caught.value) == (
        "iris: target 'target' has 3 classes (setosa 50, versicolor 50, virginica 50) but "
        "schema.positive_label 'setosa' makes the task binary ('setosa' against "
        "'versicolor'); 50 rows hold 'virginica': row 101, row 102, row 103, row 104, "
        "row 105 and 45 more; correct or remove them, or drop schema.positive_label to train "
        "a multiclass model")


# --------------------------------------------------------------------------- true line numbers


def _layout(lines: list[str], kind: str) -> tuple[bytes, Edit | None]:
    """The WDBC rows laid out in a file as users' tools write them."""
    if kind == "blank-lines":  # a blank line, a whitespace-only line, a leading blank line
        out = ["\n", *lines[:10], "\n", *lines[10:50], "   \n", *lines[50:]]
        return "".join(out).encode(), None
    if kind == "crlf":
        out = [*lines[:10], "\n", *lines[10:]]
        return "".join(out).replace("\n", "\r\n").encode(), None
    if kind == "cr-only":  # classic Mac OS line ends
        return "".join([*lines[:10], "\n", *lines[10:]]).replace("\n", "\r").encode(), None
    if kind == "header-bom-blank":
        data = b"\xef\xbb\xbf\n\n" + with_header([*lines[:30], "\n", *lines[30:]])
        return data, header_true
    if kind == "quoted-newlines":  # a free-text column whose fields span lines
        out = [",".join([*COLUMNS, "notes"]) + "\n"]
        for row, line in enumerate(lines):
            note = '"biopsy repeated\non day 2\n"' if row % 7 == 3 else "ok"
            out.append(line.rstrip("\n") + "," + note + "\n")

        def notes(spec: dict[str, Any]) -> None:
            spec["data"]["header"] = True
            del spec["data"]["columns"]
            spec["schema"]["drop"] = ["notes"]

        return "".join(out).encode(), notes
    raise AssertionError(kind)


def _line_of(data: bytes, token: bytes) -> int:
    """The line an editor shows ``token`` on (first occurrence), counting \\n, \\r\\n, \\r."""
    before = data[: data.index(token)].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return before.count(b"\n") + 1


@pytest.mark.parametrize(
    "kind", ["blank-lines", "crlf", "cr-only", "header-bom-blank", "quoted-newlines"])
def test_rows_name_the_line_an_editor_shows(tmp_path: Path, wdbc_lines: list[str],
                                            kind: str) -> None:
    lines = set_cell(wdbc_lines, 99, "area_worst", "N/D")
    lines = set_cell(lines, 200, "area_worst", "N/D")
    data, edit = _layout(lines, kind)
    line = _line_of(data, b"N/D")
    assert line > 100  # the layout moved the row off its naive line
    message = fails(tmp_path, data, kind, edit=edit)
    assert message == (f"{kind}.data: column 'area_worst', row 100 (line {line}): 'N/D' is "
                       "not a number (2 such rows)")


def test_duplicate_ids_name_true_lines(tmp_path: Path, wdbc_lines: list[str]) -> None:
    repeated = wdbc_lines[3].split(",", 1)[0]
    lines = set_cell(wdbc_lines, 30, "id", repeated)
    data = "".join([*lines[:5], "\n\n", *lines[5:]]).encode()
    fails(tmp_path, data, "dup_blank", "repeats on row 4 (line 4) and row 31 (line 33)")


def test_jsonl_rows_name_true_lines(tmp_path: Path, wdbc_path: Path) -> None:
    frame = pd.read_csv(wdbc_path, header=None, names=COLUMNS).astype({"area_worst": object})
    frame.loc[99, "area_worst"] = "N/D"
    records = frame.to_json(orient="records", lines=True).splitlines(keepends=True)
    data = "".join([*records[:20], "\n", *records[20:60], "\n\n", *records[60:]]).encode()

    def jsonl(spec: dict[str, Any]) -> None:
        spec["data"]["format"] = "jsonl"
        del spec["data"]["columns"]

    message = fails(tmp_path, data, "rows", edit=jsonl)
    assert message == ("rows.data: column 'area_worst', row 100 (line 103): 'N/D' is not a "
                       "number (1 such rows)")


def test_parquet_rows_have_no_lines(tmp_path: Path, wdbc_path: Path) -> None:
    frame = pd.read_csv(wdbc_path, header=None, names=COLUMNS).astype({"area_worst": str})
    frame.loc[99, "area_worst"] = "N/D"
    target = tmp_path / "src.parquet"
    frame.to_parquet(target, index=False)
    message = fails(tmp_path, target.read_bytes(), "table",
                    edit=lambda s: s["data"].update(format="parquet"))
    # a Parquet file has no lines
    assert message == ("table.data: column 'area_worst', row 100: 'N/D' is not a number "
                       "(1 such rows)")


# --------------------------------------------------------------------------- one check each


def test_check_numeric_leaves_a_category_column_alone() -> None:
    column = pd.Series(["red", "blue", "red", "3"])
    assert check_numeric(column, "colour", None, source="f") == (None, None)
    coerced, message = check_numeric(column, "colour", "numeric", source="f")
    assert message == "f: column 'colour', row 1: 'red' is not a number (3 such rows)"
    assert coerced.tolist()[3] == 3.0 and coerced.isna().sum() == 3


def test_check_numeric_takes_a_mostly_numeric_column_as_numbers() -> None:
    column = pd.Series([str(i) for i in range(9)] + ["x"])  # 90 % numeric
    coerced, message = check_numeric(column, "n", None, source="f",
                                     lines=LineMap.from_lines(range(2, 12)))
    assert message == "f: column 'n', row 10 (line 11): 'x' is not a number (1 such rows)"
    assert coerced.iloc[:9].tolist() == list(range(9))
    assert check_numeric(pd.Series([1.5, None]), "n", None, source="f") == (None, None)


def small_spec(**schema: Any) -> Spec:
    return Spec.model_validate({
        "name": "t", "data": {"source": "file", "uri": "f"}, "schema": {"target": "y", **schema},
        "model": {"estimator": "logistic_regression"}})


def test_finite_check_names_the_first_infinite_value_and_counts() -> None:
    """Was check_finite; the row checks are one pandera schema now (ADR 0046)."""
    frame = pd.DataFrame({"x": [1.0, float("inf"), -float("inf")], "y": ["a", "b", "a"]})
    (problem,) = row_problems(frame, small_spec(), features=["x"], source="f",
                              namer=RowNamer())
    # one more fact than before: how many rows hold a non-finite value
    assert problem.message == "f: column 'x', row 2: inf is not finite (2 such rows)"
    assert (problem.check, problem.column, list(problem.rows)) == ("types", "x", [1, 2])
    frame = pd.DataFrame({"x": [1.0, None], "y": ["a", "b"]})
    assert row_problems(frame, small_spec(), features=["x"], source="f",
                        namer=RowNamer()) == []


def test_check_missing_share() -> None:
    assert check_missing_share(pd.Series([None, None]), "x", 1.0, source="f") == (
        "f: column 'x' has no values (all missing); drop it with schema.drop")
    assert check_missing_share(pd.Series([1, None, None, 2]), "x", 0.25, source="f") == (
        "f: column 'x' is 50% missing, over validate.max_missing_fraction=0.25")
    assert check_missing_share(pd.Series([1, None, None, 2]), "x", 0.5, source="f") is None


def test_check_class_sizes_names_the_first_small_class() -> None:
    counts = pd.Series([10, 3, 1], index=["a", "b", "c"])
    assert check_class_sizes(counts, "y", 4, source="f") == (
        "f: class 'b' of 'y' has 3 rows; validate.min_class_rows is 4")
    assert check_class_sizes(counts, "y", 1, source="f") is None


def test_unique_ids_check_counts_every_repeat() -> None:
    """Was check_unique_ids; pandera's uniqueness check, the same message."""
    frame = pd.DataFrame({"id": [7, 8, 7, 9, 7, 8], "y": list("ababab")})
    (problem,) = row_problems(frame, small_spec(id="id"), features=[], source="f",
                              namer=RowNamer())
    assert problem.message == "f: id 7 in 'id' repeats on row 1 and row 3 (3 repeats)"
    assert problem.count == 3
    frame = pd.DataFrame({"id": ["a", "b"], "y": ["a", "b"]})
    assert row_problems(frame, small_spec(id="id"), features=[], source="f",
                        namer=RowNamer()) == []


def test_check_leakage_needs_a_one_to_one_mapping() -> None:
    target = pd.Series(["M", "B", "M", "B"])
    assert check_leakage(pd.Series([1, 0, 1, 0]), target, "code", "y", source="f") == (
        "f: column 'code' determines the target 'y' exactly (leakage); drop it with "
        "schema.drop")
    # two values, but not one per class: not a copy of the target
    assert check_leakage(pd.Series([1, 0, 0, 1]), target, "code", "y", source="f") is None


# --------------------------------------------------------------------------- issue 12: rules


@pytest.mark.parametrize(
    "kind", ["blank-lines", "crlf", "cr-only", "header-bom-blank", "quoted-newlines"])
def test_rule_violations_name_the_line_an_editor_shows(tmp_path: Path, wdbc_lines: list[str],
                                                       kind: str) -> None:
    lines = set_cell(wdbc_lines, 99, "area_worst", "-5")
    lines = set_cell(lines, 200, "area_worst", "-7")
    data, edit = _layout(lines, kind)
    first, second = _line_of(data, b",-5,"), _line_of(data, b",-7,")

    def rule(spec: dict[str, Any]) -> None:
        if edit is not None:
            edit(spec)
        spec["validate"] = {"columns": {"area_worst": {"min": 0}}}

    message = fails(tmp_path, data, kind, edit=rule)
    assert message == (f"{kind}.data: column 'area_worst': 2 rows below "
                       f"validate.columns.area_worst.min 0: row 100 (line {first}): -5.0, "
                       f"row 201 (line {second}): -7.0")


def test_na_text_in_a_float_column_is_missing_unless_declared_not_nullable(
    tmp_path: Path, wdbc_lines: list[str],
) -> None:
    """``N/A`` is one of data.na_values: a missing value, imputed later, unless a rule says
    the column may not be missing."""
    lines = set_cell(wdbc_lines, 14, "texture_mean", "N/A")
    _, report = ingest_and_validate(tmp_path, joined(lines), "na")
    assert report["missing"] == {"texture_mean": 1}
    fails(tmp_path, joined(lines), "na_rule", "na_rule.data: column 'texture_mean': 1 rows "
          "are missing a value (validate.columns.texture_mean.nullable is false): row 15 "
          "(line 15)",
          edit=lambda s: s.update(validate={"columns": {"texture_mean": {"nullable": False}}}))


def test_positive_infinity_in_two_rows_is_counted(tmp_path: Path,
                                                  wdbc_lines: list[str]) -> None:
    lines = set_cell(wdbc_lines, 7, "smoothness_se", "inf")
    lines = set_cell(lines, 70, "smoothness_se", "Infinity")
    fails(tmp_path, joined(lines), "pinf", "pinf.data: column 'smoothness_se', row 8 (line 8): "
          "inf is not finite (2 such rows)")


def test_a_label_outside_the_declared_classes_names_rows_and_lines(
    tmp_path: Path, wdbc_lines: list[str],
) -> None:
    lines = set_cell(wdbc_lines, 33, "diagnosis", "m")
    data = "".join([*lines[:10], "\n", *lines[10:]]).encode()

    def classes(spec: dict[str, Any]) -> None:
        del spec["schema"]["positive_label"]
        spec["validate"] = {"columns": {"diagnosis": {"allowed": ["M", "B"]}}}

    fails(tmp_path, data, "classes", "classes.data: target 'diagnosis': 1 rows hold values "
          "outside validate.columns.diagnosis.allowed [M, B]: row 34 (line 35): 'm'",
          edit=classes)


def test_an_extra_column_is_new_against_the_saved_schema(tmp_path: Path,
                                                         wdbc_lines: list[str]) -> None:
    """With a header and inferred features an extra column is not an error by itself (it
    becomes a feature); the saved schema of the earlier runs names it."""
    def named_by_header(spec: dict[str, Any]) -> None:
        header_true(spec)
        del spec["data"]["columns"]

    _, first = ingest_and_validate(tmp_path, with_header(wdbc_lines), "before",
                                   named_by_header)
    wider = [line.rstrip("\n") + ",1\n" for line in wdbc_lines]
    path = tmp_path / "after.data"
    path.write_bytes(with_header(wider, [*COLUMNS, "batch"]))

    def strict(spec: dict[str, Any]) -> None:
        named_by_header(spec)
        spec["validate"] = {"drift": {"policy": "fail"}}

    the_spec = make_spec({"uri": str(path)}, strict)
    frame, facts = read_source(the_spec.data, tmp_path)
    with pytest.raises(DataError) as caught:
        validate_table(frame, the_spec, source="after.data",
                       lines=LineMap.from_json(facts["lines"]), baseline=first["schema"])
    assert str(caught.value) == (
        "after.data: column 'batch' is new: the saved schema does not have it (accept the new "
        "schema with conveyor schema accept)")
