"""conveyor.serving.batch without a model: what is refused before anything is loaded, and
the CLI's progress line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conveyor.cli.score import progress_text
from conveyor.errors import BadInputError
from conveyor.serving.batch import score


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    path = tmp_path / "rows.parquet"
    pd.DataFrame({"id": [1, 2], "x": [0.5, 1.5]}).to_parquet(path)
    return path


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"chunk_rows": 0}, "chunk rows must be >= 1, got 0"),
    ({"engine": "spark"}, "unknown engine 'spark'"),
    ({"scheduler": "tcp://127.0.0.1:8786"}, "--scheduler is for --engine dask"),
    ({"workers": 0}, "workers must be >= 1"),
])
def test_bad_options_are_refused_before_the_model_is_opened(
        table: Path, tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(BadInputError, match=message.replace("(", r"\(")):
        score("models:/never-opened/1", str(table), str(tmp_path / "out.parquet"), **kwargs)


def test_inputs_and_outputs_are_checked_before_the_model_is_opened(
        table: Path, tmp_path: Path) -> None:
    model = "models:/never-opened/1"  # opening it would fail differently: no registry here
    with pytest.raises(BadInputError, match=r"input not found: .*nope\.csv"):
        score(model, str(tmp_path / "nope.csv"), str(tmp_path / "out.parquet"))
    with pytest.raises(BadInputError, match="no CSV or Parquet file there"):
        (tmp_path / "empty").mkdir()
        score(model, str(tmp_path / "empty"), str(tmp_path / "out.parquet"))
    with pytest.raises(BadInputError, match="not a CSV or Parquet file name"):
        (tmp_path / "rows.json").write_text("{}")
        score(model, str(tmp_path / "rows.json"), str(tmp_path / "out.parquet"))
    with pytest.raises(BadInputError, match="the output is also an input"):
        score(model, str(table), str(table), overwrite=True)
    (tmp_path / "taken.parquet").write_bytes(b"x")
    with pytest.raises(BadInputError, match="exists; choose another output or pass "
                                            "--overwrite"):
        score(model, str(table), str(tmp_path / "taken.parquet"))


def test_progress_line_shows_done_total_share_and_rate() -> None:
    assert progress_text(250_000, 1_000_000, 2.0) == (
        "scored 250,000 / 1,000,000 rows (25%) in 2.0s, 125,000 rows/s")
    assert progress_text(300, None, 0.0) == "scored 300 rows in 0.0s, - rows/s"
