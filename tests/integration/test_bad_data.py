"""Bad data through the CLI: a short error, exit code 2, and nothing that looks finished.

The corpus (every kind of bad file and value, and the message each gets) runs against the
reader and ``validate_table`` directly in tests/unit/test_validate_table.py. The few cases
here run ``conveyor run`` in-process on a modified copy of the real WDBC file and check the
whole path: exit code 2; an error of one or two lines naming the file, column, row/line or
value; no ``manifest.json`` under the store; nothing exported; no registered model version;
the MLflow run (created before ingest) ended FAILED with the error recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"
REGISTERED = "breast_cancer_classifier"
COLUMNS: list[str] = yaml.safe_load(EXAMPLE.read_text())["data"]["columns"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture()
def home(conveyor_home: Path, mlflow_db: Path) -> Path:
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


# --------------------------------------------------------------------------- end to end


def test_non_numeric_line_counts_the_header(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    lines = set_cell(wdbc_lines, 99, "area_worst", "N/D")
    lines = set_cell(lines, 200, "area_worst", "N/D")
    data = with_header(lines)
    code, _, err = run_cli(write_spec(tmp_path, data, "hdr", header_true), capsys)
    assert_failed_cleanly(home, code, err, "column 'area_worst', row 100 (line 101): 'N/D' is "
                          "not a number (2 such rows)")


def test_non_utf8_byte_names_the_line(home: Path, tmp_path: Path, wdbc_lines: list[str],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = wdbc_lines[40].replace(",M,", ",M\xe9,").encode("latin-1")
    data = "".join(wdbc_lines[:40]).encode() + bad + "".join(wdbc_lines[41:]).encode()
    code, _, err = run_cli(write_spec(tmp_path, data, "latin1"), capsys)
    assert_failed_cleanly(home, code, err, "latin1.data line 41: byte 0xe9 is not UTF-8",
                          "re-save the file as UTF-8")


def test_missing_data_file(home: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, b"", "gone")
    (tmp_path / "gone.data").unlink()
    code, _, err = run_cli(spec, capsys)
    assert_failed_cleanly(home, code, err, "data file not found", "gone.data", "(data.uri)")


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



def test_a_typo_deep_in_a_large_chunk_names_its_row(home: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A whole-number column with a typo past pandas' first parsing block of a chunk:
    with pandas' block-wise parsing the column came out as ints and strs mixed, which Parquet
    refused (exit 1, "ArrowInvalid", no row named)."""
    rows = ["a," + ",".join(f"x{j}" for j in range(40)) + ",target\n"]
    for i in range(20_000):  # ~5.6 MB: one chunk, several of pandas' parsing blocks
        a = "12x" if i == 19_000 else str(i % 97)
        rows.append(f"{a}," + ",".join(f"{(i * 7 + j) % 1000 / 7:.4f}" for j in range(40))
                    + f",{i % 2}\n")
    data = tmp_path / "wide.csv"
    data.write_text("".join(rows))
    spec = tmp_path / "wide.yaml"
    spec.write_text(f"name: wide\ndata: {{source: file, uri: {data}}}\n"
                    "schema: {target: target}\nmodel: {estimator: logistic_regression}\n")
    code, _, err = run_cli(spec, capsys)
    assert code == 2, err
    [line] = err.strip().splitlines()
    assert line == ("error: wide.csv: column 'a', row 19001 (line 19002): '12x' is not a number "
                    "(1 such rows)"), line
