"""Bad data through the CLI: a short error, exit code 2, and nothing that looks finished.

Every case writes a modified copy of the real WDBC file (and a spec pointing at it) into
``tmp_path``, runs ``conveyor run`` in-process, and checks: exit code 2; an error of one or
two lines naming the file, column, row/line or value; no ``manifest.json`` under the store;
nothing exported; no registered model version; the MLflow run (created before ingest) ended
FAILED with the error recorded.

A migrated, empty MLflow SQLite file is copied into each test's CONVEYOR_HOME: creating one
runs MLflow's Alembic migrations (1-6 s each, by machine load), which would otherwise
dominate this module. The database is real; only its creation is shared.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from conveyor.cli import main

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"
REGISTERED = "breast_cancer_classifier"
COLUMNS: list[str] = yaml.safe_load(EXAMPLE.read_text())["data"]["columns"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow-template")
    MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db").search_experiments()
    return folder / "mlflow.db"


@pytest.fixture()
def home(conveyor_home: Path, mlflow_template: Path) -> Path:
    conveyor_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template, conveyor_home / "mlflow.db")
    return conveyor_home


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


def write_spec(tmp_path: Path, data: bytes, name: str,
               edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    data_path = tmp_path / f"{name}.data"
    data_path.write_bytes(data)
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["data"]["uri"] = str(data_path)
    if edit is not None:
        edit(spec)
    spec_path = tmp_path / f"{name}.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return spec_path


def header_true(spec: dict[str, Any]) -> None:
    spec["data"]["header"] = True


def with_header(lines: list[str], columns: list[str] = COLUMNS) -> bytes:
    return (",".join(columns) + "\n" + "".join(lines)).encode()


def mlflow_state(home: Path) -> tuple[list[Any], list[Any]]:
    """(runs of every experiment, versions of the registered model) in CONVEYOR_HOME."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments) if experiments else []
    try:
        versions = client.search_model_versions(f"name = '{REGISTERED}'")
    except Exception as exc:
        assert "RESOURCE_DOES_NOT_EXIST" in str(exc)
        versions = []
    return runs, versions


def run_cli(spec: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["run", str(spec)])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_failed_cleanly(home: Path, code: int, err: str, *fragments: str,
                          run_created: bool = True) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    assert list((home / "artifacts").rglob("manifest.json")) == []
    assert not (home / "exports").exists()
    runs, versions = mlflow_state(home)
    assert versions == []
    if run_created:
        assert len(runs) == 1
        run = runs[0]
        assert run.info.status == "FAILED"
        assert run.data.tags["conveyor.status"] == "failed"
        assert fragments[0] in run.data.tags["conveyor.error"]
        assert "mlflow.runName" in run.data.tags
        assert not any(k.startswith("conveyor.registered") for k in run.data.tags)
    else:
        assert all(run.info.status == "FAILED" for run in runs)


# --------------------------------------------------------------------------- the corpus


def test_missing_column_raw_file(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = "".join(line.rsplit(",", 1)[0] + "\n" for line in wdbc_lines).encode()
    code, _, err = run_cli(write_spec(tmp_path, data, "wdbc_31"), capsys)
    assert_failed_cleanly(home, code, err, "wdbc_31.data has 31 fields per row but data.columns "
                          "names 32")


def test_missing_column_with_header(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    drop = COLUMNS.index("texture_mean")
    lines = [",".join(f for i, f in enumerate(line.rstrip("\n").split(",")) if i != drop) + "\n"
             for line in wdbc_lines]
    data = with_header(lines, [c for c in COLUMNS if c != "texture_mean"])
    code, _, err = run_cli(write_spec(tmp_path, data, "no_texture", header_true), capsys)
    assert_failed_cleanly(home, code, err, "no_texture.data has no column(s) texture_mean",
                          "(data.columns)")


def test_missing_target_column_named_by_schema(home: Path, tmp_path: Path,
                                               wdbc_lines: list[str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    names = ["id", "diagnosis_code", *COLUMNS[2:]]

    def edit(spec: dict[str, Any]) -> None:
        spec["data"]["header"] = True
        del spec["data"]["columns"]

    code, _, err = run_cli(write_spec(tmp_path, with_header(wdbc_lines, names), "renamed",
                                      edit), capsys)
    assert_failed_cleanly(home, code, err, "column 'diagnosis' (schema.target) is missing",
                          "did you mean 'diagnosis_code'?")


@pytest.mark.parametrize(
    ("value", "shown"),
    [('"1,234"', "'1,234'"), ("n.a.", "'n.a.'"), ("unknown", "'unknown'"),
     ("#VALUE!", "'#VALUE!'"), ("12..5", "'12..5'")],
)
def test_non_numeric_value_names_column_row_and_value(
    home: Path, tmp_path: Path, wdbc_lines: list[str], capsys: pytest.CaptureFixture[str],
    value: str, shown: str,
) -> None:
    lines = set_cell(wdbc_lines, 9, "perimeter_mean", value)
    code, _, err = run_cli(write_spec(tmp_path, "".join(lines).encode(), "typo"), capsys)
    assert_failed_cleanly(home, code, err, "typo.data: column 'perimeter_mean', row 10 "
                          f"(line 10): {shown} is not a number (1 such rows)")


def test_non_numeric_line_counts_the_header(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    lines = set_cell(wdbc_lines, 99, "area_worst", "N/D")
    lines = set_cell(lines, 200, "area_worst", "N/D")
    data = with_header(lines)
    code, _, err = run_cli(write_spec(tmp_path, data, "hdr", header_true), capsys)
    assert_failed_cleanly(home, code, err, "column 'area_worst', row 100 (line 101): 'N/D' is "
                          "not a number (2 such rows)")


def test_infinite_feature(home: Path, tmp_path: Path, wdbc_lines: list[str],
                          capsys: pytest.CaptureFixture[str]) -> None:
    lines = set_cell(wdbc_lines, 4, "radius_se", "-inf")
    code, _, err = run_cli(write_spec(tmp_path, "".join(lines).encode(), "inf"), capsys)
    assert_failed_cleanly(home, code, err, "column 'radius_se', row 5 (line 5): -inf is not "
                          "finite")


def test_empty_file(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(write_spec(tmp_path, b"", "empty"), capsys)
    assert_failed_cleanly(home, code, err, "empty.data is empty (0 bytes)")


def test_blank_lines_only(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(write_spec(tmp_path, b"\n\r\n  \n", "blank"), capsys)
    assert_failed_cleanly(home, code, err, "blank.data is empty (only blank lines)")


def test_header_only_file(home: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(write_spec(tmp_path, with_header([]), "header_only", header_true),
                           capsys)
    assert_failed_cleanly(home, code, err, "header_only.data has a header but no rows")


def test_all_nan_column(home: Path, tmp_path: Path, wdbc_lines: list[str],
                        capsys: pytest.CaptureFixture[str]) -> None:
    lines = list(wdbc_lines)
    for row in range(len(lines)):
        lines = set_cell(lines, row, "compactness_mean", "NA" if row % 2 else "")
    code, _, err = run_cli(write_spec(tmp_path, "".join(lines).encode(), "all_nan"), capsys)
    assert_failed_cleanly(home, code, err, "column 'compactness_mean' has no values (all "
                          "missing)", "schema.drop")


def test_nan_in_target(home: Path, tmp_path: Path, wdbc_lines: list[str],
                       capsys: pytest.CaptureFixture[str]) -> None:
    lines = set_cell(wdbc_lines, 20, "diagnosis", "NaN")
    lines = set_cell(lines, 300, "diagnosis", "")
    code, _, err = run_cli(write_spec(tmp_path, "".join(lines).encode(), "nan_target"), capsys)
    assert_failed_cleanly(home, code, err, "target 'diagnosis' is missing or not finite in 2 "
                          "rows (first: row 21 (line 21))")


def _numeric_target(spec: dict[str, Any]) -> None:
    spec["schema"]["positive_label"] = 1


def test_inf_in_numeric_target(home: Path, tmp_path: Path, wdbc_lines: list[str],
                               capsys: pytest.CaptureFixture[str]) -> None:
    lines = [line.replace(",M,", ",1,", 1).replace(",B,", ",0,", 1) for line in wdbc_lines]
    lines = set_cell(lines, 20, "diagnosis", "inf")
    code, _, err = run_cli(write_spec(tmp_path, "".join(lines).encode(), "inf_target",
                                      _numeric_target), capsys)
    assert_failed_cleanly(home, code, err, "target 'diagnosis' is missing or not finite in 1 "
                          "rows (first: row 21 (line 21))")


def test_duplicated_ids(home: Path, tmp_path: Path, wdbc_lines: list[str],
                        capsys: pytest.CaptureFixture[str]) -> None:
    repeated = wdbc_lines[3].split(",", 1)[0]
    lines = set_cell(wdbc_lines, 30, "id", repeated)
    code, _, err = run_cli(write_spec(tmp_path, "".join(lines).encode(), "dup_ids"), capsys)
    assert_failed_cleanly(home, code, err, f"{repeated}", "in 'id' repeats on row 4 (line 4) "
                          "and row 31 (line 31) (1 repeats)")


def test_duplicated_id_is_shown_plainly(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    repeated = wdbc_lines[3].split(",", 1)[0]
    lines = set_cell(wdbc_lines, 30, "id", repeated)
    code, _, err = run_cli(write_spec(tmp_path, "".join(lines).encode(), "dup_ids"), capsys)
    assert code == 2 and f"id {repeated} in 'id'" in err


def test_single_class_target(home: Path, tmp_path: Path, wdbc_lines: list[str],
                             capsys: pytest.CaptureFixture[str]) -> None:
    data = "".join(line for line in wdbc_lines if ",B," in line).encode()
    code, _, err = run_cli(write_spec(tmp_path, data, "benign_only"), capsys)
    assert_failed_cleanly(home, code, err, "target 'diagnosis' has a single class 'B'; a "
                          "classifier needs at least two")


def test_class_with_too_few_rows(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    lines = set_cell(wdbc_lines, 50, "diagnosis", "X")

    def multiclass(spec: dict[str, Any]) -> None:  # under a binary spec "X" is a bad label
        del spec["schema"]["positive_label"]

    code, _, err = run_cli(write_spec(tmp_path, "".join(lines).encode(), "rare", multiclass),
                           capsys)
    assert_failed_cleanly(home, code, err, "class 'X' of 'diagnosis' has 1 rows; "
                          "validate.min_class_rows is 2")


@pytest.mark.parametrize("numeric", [False, True], ids=["text-copy", "numeric-code"])
def test_leakage_column(home: Path, tmp_path: Path, wdbc_lines: list[str],
                        capsys: pytest.CaptureFixture[str], numeric: bool) -> None:
    def leak(line: str) -> str:
        label = line.split(",")[1]
        value = {"M": "1", "B": "0"}[label] if numeric else label
        return line.rstrip("\n") + "," + value + "\n"

    def edit(spec: dict[str, Any]) -> None:
        spec["data"]["columns"].append("diagnosis_copy")

    data = "".join(leak(line) for line in wdbc_lines).encode()
    code, _, err = run_cli(write_spec(tmp_path, data, "leaky", edit), capsys)
    assert_failed_cleanly(home, code, err, "column 'diagnosis_copy' determines the target "
                          "'diagnosis' exactly (leakage)")


def test_non_utf8_byte_names_the_line(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = wdbc_lines[40].replace(",M,", ",M\xe9,").encode("latin-1")
    data = "".join(wdbc_lines[:40]).encode() + bad + "".join(wdbc_lines[41:]).encode()
    code, _, err = run_cli(write_spec(tmp_path, data, "latin1"), capsys)
    assert_failed_cleanly(home, code, err, "latin1.data line 41: byte 0xe9 is not UTF-8",
                          "re-save the file as UTF-8")


def test_too_many_fields_names_the_line(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    lines = list(wdbc_lines)
    lines[50] = lines[50].rstrip("\n") + ",1.0,2.0\n"
    code, _, err = run_cli(write_spec(tmp_path, "".join(lines).encode(), "wide"), capsys)
    assert_failed_cleanly(home, code, err, "wide.data", "line 51", "34 fields, expected 32")


def test_too_few_fields_names_the_line(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    lines = list(wdbc_lines)
    lines[50] = ",".join(lines[50].split(",")[:4]) + "\n"
    code, _, err = run_cli(write_spec(tmp_path, "".join(lines).encode(), "short"), capsys)
    assert_failed_cleanly(home, code, err, "short.data", "line 51")


def test_file_over_the_size_limit(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["data"]["max_bytes"] = 1000

    code, _, err = run_cli(write_spec(tmp_path, "".join(wdbc_lines).encode(), "big", edit),
                           capsys)
    assert_failed_cleanly(home, code, err, "big.data is", "over the limit of 1,000 "
                          "(data.max_bytes)")


def test_truncated_parquet(home: Path, tmp_path: Path, wdbc_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.read_csv(wdbc_path, header=None, names=COLUMNS)
    full = tmp_path / "full.parquet"
    frame.to_parquet(full, index=False)
    data = full.read_bytes()
    spec = write_spec(tmp_path, data[: len(data) // 2], "cut",
                      lambda s: s["data"].update(format="parquet"))
    code, _, err = run_cli(spec, capsys)
    assert_failed_cleanly(home, code, err, "cut.data is not a readable parquet file")


def test_missing_data_file(home: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, b"", "gone")
    (tmp_path / "gone.data").unlink()
    code, _, err = run_cli(spec, capsys)
    assert_failed_cleanly(home, code, err, "data file not found", "gone.data", "(data.uri)")


def test_positive_label_not_in_target(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, "".join(wdbc_lines).encode(), "label",
                      lambda s: s["schema"].update(positive_label="Malignant"))
    code, _, err = run_cli(spec, capsys)
    assert_failed_cleanly(home, code, err, "schema.positive_label 'Malignant' is not a value "
                          "of 'diagnosis'")


# --------------------------------------------------------------------------- must work


def test_bom_at_file_start_works(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """With a header row the BOM would otherwise glue itself to the ``id`` column's name."""
    data = b"\xef\xbb\xbf" + with_header(wdbc_lines)
    code, _, err = run_cli(write_spec(tmp_path, data, "bom", header_true), capsys)
    assert code == 0, err
    manifests = list((home / "artifacts").rglob("manifest.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["status"] == "ok"
    assert manifest["steps"]["ingest"]["info"]["rows"] == 569
    assert manifest["metrics"]["test_accuracy"] >= 0.95
    runs, versions = mlflow_state(home)
    assert [str(v.version) for v in versions] == ["1"]
    assert runs[0].info.status == "FINISHED"


# --------------------------------------------------------------------------- a binary target


def accuracy_gate_only(spec: dict[str, Any]) -> None:
    """A gate a 3-class model passes as easily as a binary one (so it cannot stop it)."""
    spec["gate"] = {"test_accuracy": 0.5}


def test_third_label_under_binary_spec_names_its_rows(
    home: Path, tmp_path: Path, wdbc_lines: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    lines = list(wdbc_lines)
    for row in (50, 120, 300):
        lines = set_cell(lines, row, "diagnosis", "X")
    code, _, err = run_cli(write_spec(tmp_path, "".join(lines).encode(), "third",
                                      accuracy_gate_only), capsys)
    labels = [line.split(",")[1] for line in lines]
    assert_failed_cleanly(home, code, err, "third.data: target 'diagnosis' has 3 classes "
                          f"(B {labels.count('B')}, M {labels.count('M')}, X 3) but "
                          "schema.positive_label 'M' makes the task "
                          "binary ('M' against 'B'); 3 rows hold 'X': row 51 (line 51), "
                          "row 121 (line 121), row 301 (line 301)", "drop schema.positive_label")


def test_many_rows_of_other_labels_are_sampled_and_counted(
    home: Path, tmp_path: Path, wdbc_lines: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    lines = list(wdbc_lines)
    for row in range(10, 80, 10):
        lines = set_cell(lines, row, "diagnosis", "X" if row < 60 else "?B")
    code, _, err = run_cli(write_spec(tmp_path, with_header(lines), "sampled",
                                      lambda s: (header_true(s), accuracy_gate_only(s))),
                           capsys)
    assert_failed_cleanly(home, code, err, "7 rows hold 'X', '?B': row 11 (line 12), row 21 "
                          "(line 22), row 31 (line 32), row 41 (line 42), row 51 (line 52) and "
                          "2 more")


def test_bundled_data_under_a_binary_spec_names_rows_without_lines(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Iris has three classes: ``positive_label: setosa`` cannot make it binary."""
    spec = {
        "name": "iris_binary", "data": {"source": "sklearn", "name": "iris"},
        "schema": {"target": "target", "positive_label": "setosa"},
        "model": {"estimator": "logistic_regression", "params": {"max_iter": 500}},
        "gate": {"test_accuracy": 0.5}, "registry": {"name": "iris_binary"},
    }
    path = tmp_path / "iris.yaml"
    path.write_text(yaml.safe_dump(spec))
    code, _, err = run_cli(path, capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert ("target 'target' has 3 classes (setosa 50, versicolor 50, virginica 50) but "
            "schema.positive_label 'setosa' makes the task binary ('setosa' against "
            "'versicolor'); 50 rows hold 'virginica': row 101, row 102, row 103, row 104, "
            "row 105 and 45 more") in err
    assert "(line" not in err  # a bundled data set has no file, so no lines
    assert list((home / "artifacts").rglob("manifest.json")) == []
    assert not (home / "exports").exists()
    from mlflow import MlflowClient

    assert MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db").search_model_versions() == []


# --------------------------------------------------------------------------- true line numbers


def _layout(lines: list[str], kind: str) -> tuple[bytes, Callable[[dict[str, Any]], None] | None]:
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
def test_rows_name_the_line_an_editor_shows(
    home: Path, tmp_path: Path, wdbc_lines: list[str], capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    lines = set_cell(wdbc_lines, 99, "area_worst", "N/D")
    lines = set_cell(lines, 200, "area_worst", "N/D")
    data, edit = _layout(lines, kind)
    line = _line_of(data, b"N/D")
    assert line > 100  # the layout moved the row off its naive line
    code, _, err = run_cli(write_spec(tmp_path, data, kind, edit), capsys)
    assert_failed_cleanly(home, code, err, f"column 'area_worst', row 100 (line {line}): "
                          "'N/D' is not a number (2 such rows)")


def test_duplicate_ids_name_true_lines(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    repeated = wdbc_lines[3].split(",", 1)[0]
    lines = set_cell(wdbc_lines, 30, "id", repeated)
    data = "".join([*lines[:5], "\n\n", *lines[5:]]).encode()
    code, _, err = run_cli(write_spec(tmp_path, data, "dup_blank"), capsys)
    assert_failed_cleanly(home, code, err, "repeats on row 4 (line 4) and row 31 (line 33)")


def test_jsonl_rows_name_true_lines(home: Path, tmp_path: Path, wdbc_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.read_csv(wdbc_path, header=None, names=COLUMNS).astype({"area_worst": object})
    frame.loc[99, "area_worst"] = "N/D"
    records = frame.to_json(orient="records", lines=True).splitlines(keepends=True)
    data = "".join([*records[:20], "\n", *records[20:60], "\n\n", *records[60:]]).encode()

    def jsonl(spec: dict[str, Any]) -> None:
        spec["data"]["format"] = "jsonl"
        del spec["data"]["columns"]

    code, _, err = run_cli(write_spec(tmp_path, data, "rows", jsonl), capsys)
    assert_failed_cleanly(home, code, err, "column 'area_worst', row 100 (line 103): 'N/D' "
                          "is not a number")


def test_parquet_rows_have_no_lines(home: Path, tmp_path: Path, wdbc_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.read_csv(wdbc_path, header=None, names=COLUMNS).astype({"area_worst": str})
    frame.loc[99, "area_worst"] = "N/D"
    target = tmp_path / "src.parquet"
    frame.to_parquet(target, index=False)
    spec = write_spec(tmp_path, target.read_bytes(), "table",
                      lambda s: s["data"].update(format="parquet"))
    code, _, err = run_cli(spec, capsys)
    assert_failed_cleanly(home, code, err, "column 'area_worst', row 100: 'N/D' is not a number")
    assert "line" not in err  # a Parquet file has no lines


def test_unclosed_quote_names_the_line_it_opens_on(
    home: Path, tmp_path: Path, wdbc_lines: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    lines = set_cell(wdbc_lines, 60, "texture_mean", '"17.5')
    code, _, err = run_cli(write_spec(tmp_path, "".join(lines).encode(), "quote"), capsys)
    assert_failed_cleanly(home, code, err, "quote.data line 61:", "(an unclosed quote?)")


def test_comment_line_is_named_by_its_line(
    home: Path, tmp_path: Path, wdbc_lines: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    data = "".join(["\n", *wdbc_lines[:28], "# exported 2024-01-01\n", *wdbc_lines[28:]])
    code, _, err = run_cli(write_spec(tmp_path, data.encode(), "comment"), capsys)
    assert_failed_cleanly(home, code, err, "comment.data line 30: 1 fields, expected 32")
