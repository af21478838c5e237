"""Sources read in chunks (ADR 0044): files, folders and globs, the Parquet batch writer, the
temperature generator, and the plug-in sources' sections (sql, openml, synthetic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from conveyor.cli import main
from conveyor.errors import DataError, StoreError
from conveyor.sources import scan_source
from conveyor.sources.files import read_file_source, scan_file_source
from conveyor.sources.lines import LineMap
from conveyor.sources.openml_api import OpenMLSource, parse_arff
from conveyor.sources.sql import SqlSource
from conveyor.sources.synthetic import SyntheticSource
from conveyor.sources.temperature import SHAPES, temperature_frame
from conveyor.spec.models import FileSource
from conveyor.store import Store
from conveyor.store.tables import BatchWriter


def source(uri: str, **more: Any) -> FileSource:
    return FileSource.model_validate({"uri": uri, **more})


# --------------------------------------------------------------------------- chunked CSV


def test_a_csv_read_in_chunks_is_the_csv_read_whole(tmp_path: Path) -> None:
    text = "a,b,y\n" + "".join(f"{i},{i * 0.5},{'x' if i % 2 else 'z'}\n" for i in range(10))
    (tmp_path / "t.csv").write_text(text.replace("3,1.5", "\n3,1.5"))  # a blank line
    whole, facts_whole = read_file_source(source("t.csv"), tmp_path)
    chunks, facts = scan_file_source(source("t.csv", chunk_rows=3), tmp_path)
    frames = list(chunks)
    assert [len(f) for f in frames] == [3, 3, 3, 1]
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole)
    lines = LineMap.from_json(facts["lines"])
    assert lines is not None and [lines.line(r) for r in (0, 2, 3, 9)] == [2, 4, 6, 12]
    assert facts["lines"] == facts_whole["lines"] and facts["first_line"] == 2


def test_types_widen_when_a_later_chunk_needs_it(tmp_path: Path) -> None:
    # chunk 1: integers; chunk 2: a missing value (float); chunk 3: a typo (text)
    (tmp_path / "t.csv").write_text("n,m\n1,1\n2,2\n3,\n4,4\n5,N/D\n6,6\n")
    frame, _ = read_file_source(source("t.csv", chunk_rows=2), tmp_path)
    assert frame["n"].dtype == "int64" and frame["n"].tolist() == [1, 2, 3, 4, 5, 6]
    assert frame["m"].tolist()[:2] == ["1", "2"] and pd.isna(frame["m"][2])
    assert frame["m"].tolist()[3:] == ["4", "N/D", "6"]  # whole numbers stay as written


def test_the_batch_writer_widens_int_to_float_and_copies_what_it_wrote(tmp_path: Path) -> None:
    writer = BatchWriter(tmp_path / "t.parquet")
    writer.write(pd.DataFrame({"x": [1, 2]}))
    writer.write(pd.DataFrame({"x": [2.5, None]}))
    writer.close()
    assert writer.widened == 1 and writer.rows == 4
    assert pd.read_parquet(tmp_path / "t.parquet")["x"].tolist()[:3] == [1.0, 2.0, 2.5]


def test_a_malformed_line_past_the_first_chunk_names_its_line_and_publishes_nothing(
        tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b\n" + "1,2\n" * 5 + "1,2,3\n")
    store = Store((tmp_path / "store").as_uri())
    chunks, _ = scan_file_source(source("t.csv", chunk_rows=2), tmp_path)
    with pytest.raises(DataError, match=r"^t.csv line 7: 3 fields, expected 2$"):
        store.put_table_batches(store.uri("p", "r", "ingest", "raw.parquet"), chunks)
    assert not list((tmp_path / "store").rglob("*.parquet"))


def test_the_store_publishes_nothing_when_the_check_refuses(tmp_path: Path) -> None:
    store = Store((tmp_path / "store").as_uri())

    def refuse(rows: int, columns: list[str]) -> None:
        raise DataError(f"{rows} rows of {columns}")

    with pytest.raises(DataError, match=r"2 rows of \['x'\]"):
        store.put_table_batches(store.uri("p", "r", "s", "t.parquet"),
                                iter([pd.DataFrame({"x": [1, 2]})]), check=refuse)
    assert not list((tmp_path / "store").rglob("*parquet*"))


# --------------------------------------------------------------------------- folders and globs


def test_a_folder_is_a_partitioned_data_set_with_hive_columns(tmp_path: Path) -> None:
    for year, rows in (("2024", "1,a\n2,b\n"), ("2025", "3,c\n")):
        part = tmp_path / "data" / f"year={year}"
        part.mkdir(parents=True)
        (part / "part-0.csv").write_text("n,s\n" + rows)
    (tmp_path / "data" / "_SUCCESS").write_text("")
    frame, facts = read_file_source(source("data", partitioning="hive"), tmp_path)
    assert frame.to_dict("list") == {"n": [1, 2, 3], "s": ["a", "b", "c"],
                                     "year": ["2024", "2024", "2025"]}
    assert facts["files"] == 2 and facts["lines"] is None
    assert [row for row, _ in facts["parts"]] == [0, 2]
    assert facts["parts"][1][1].endswith("year=2025/part-0.csv")
    plain, _ = read_file_source(source("data"), tmp_path)
    assert list(plain.columns) == ["n", "s"]


def test_a_glob_matches_files_in_name_order(tmp_path: Path) -> None:
    for name, value in (("b.csv", 2), ("a.csv", 1), ("c.txt", 9)):
        (tmp_path / name).write_text(f"v\n{value}\n")
    frame, facts = read_file_source(source("*.csv"), tmp_path)
    assert frame["v"].tolist() == [1, 2] and facts["files"] == 2


@pytest.mark.parametrize(("make", "uri", "message"), [
    (lambda p: (p / "empty").mkdir(), "empty",
     "is a folder with no data files in it (data.uri)"),
    (lambda p: None, "*.parquet", "no file matches"),
    (lambda p: ((p / "m").mkdir(), (p / "m" / "a.csv").write_text("v\n1\n"),
                (p / "m" / "b.jsonl").write_text('{"v": 2}\n')), "m",
     "mixes formats (csv, jsonl"),
])
def test_folders_and_globs_without_usable_files_name_the_key(
        tmp_path: Path, make: Any, uri: str, message: str) -> None:
    make(tmp_path)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_file_source(source(uri), tmp_path)


def test_an_unreachable_object_store_is_a_store_error(tmp_path: Path) -> None:
    spec = source("s3://bucket/x.csv", storage_options={
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}, "anon": True})
    with pytest.raises(StoreError, match=r"cannot reach s3://bucket/x\.csv"):
        scan_file_source(spec, tmp_path)


# --------------------------------------------------------------------------- temperature


def test_the_temperature_generator_is_seeded_and_labels_its_anomalies() -> None:
    frame = temperature_frame(seed=5, days=365, anomaly_rate=0.08)
    pd.testing.assert_frame_equal(frame, temperature_frame(seed=5, days=365,
                                                           anomaly_rate=0.08))
    assert not frame.equals(temperature_frame(seed=6, days=365, anomaly_rate=0.08))
    assert {"date", "temperature", "day_sin", "flat_run", "is_anomaly"} <= set(frame.columns)
    assert 0.06 <= frame["is_anomaly"].mean() <= 0.10
    assert set(frame.loc[frame.is_anomaly == 1, "anomaly_shape"]) <= set(SHAPES)
    assert (frame.loc[frame.is_anomaly == 0, "anomaly_shape"] == "none").all()
    assert not frame.isna().any().any()
    stuck = frame[frame.anomaly_shape == "stuck"]
    if len(stuck):
        assert stuck["flat_run"].min() >= 5


def test_a_single_shape_and_no_noise() -> None:
    frame = temperature_frame(seed=1, days=200, noise=0.0, anomaly_rate=0.05,
                              shapes=["spike"], mean=10.0, amplitude=0.0)
    spikes = frame[frame.is_anomaly == 1]
    assert len(spikes) == 10 and (spikes.anomaly_shape == "spike").all()
    assert ((spikes.temperature - 10).abs() > 6).all()
    assert (frame.loc[frame.is_anomaly == 0, "temperature"] == 10.0).all()


@pytest.mark.parametrize(("params", "message"), [
    ({"anomaly_rate": 0.7}, "anomaly_rate must be in"),
    ({"shapes": ["wobble"]}, "shapes must be some of"),
    ({"days": 5}, "days must be at least"),
])
def test_generator_parameters_out_of_range(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        temperature_frame(**params)


def test_synthetic_source_reads_stations_one_after_another(tmp_path: Path) -> None:
    config = SyntheticSource(source="synthetic", generator="temperature", datasets=2,
                             days=30, seed=3)
    chunks, facts = scan_source(config, tmp_path)
    frame = pd.concat(list(chunks))
    assert len(frame) == 60 and sorted(frame.station.unique()) == ["s3", "s4"]
    assert facts["uri"] == "synthetic://temperature?seed=3"


def test_conveyor_synth_writes_train_and_test(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["synth", "temperature", "--out", str(tmp_path / "d"), "--datasets", "2",
                 "--test-datasets", "1", "--days", "40", "--shapes", "spike,stuck"])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "d" / "train").iterdir()) == [
        "station_000.csv", "station_001.csv"]
    test = pd.read_csv(tmp_path / "d" / "test" / "station_000.csv")
    train = pd.read_csv(tmp_path / "d" / "train" / "station_000.csv")
    assert len(test) == 40 and test.station[0] != train.station[0]
    assert "wrote 2 temperature data set(s)" in capsys.readouterr().err
    code = main(["synth", "temperature", "--out", str(tmp_path / "e"), "--noise", "-1"])
    assert code == 2
    assert "synth temperature: noise: Input should be greater than or equal to 0" in (
        capsys.readouterr().err)
    assert not (tmp_path / "e").exists()


# --------------------------------------------------------------------------- sections


def test_sql_section_refuses_an_inline_password_and_wants_one_url() -> None:
    with pytest.raises(ValidationError, match="inline secret"):
        SqlSource(source="sql", url="postgresql://u:hunter2@h/db", query="select 1")
    with pytest.raises(ValidationError, match="exactly one of url and url_env"):
        SqlSource(source="sql", query="select 1")
    with pytest.raises(ValidationError, match="not an environment variable name"):
        SqlSource(source="sql", url_env="$(rm)", query="select 1")
    assert SqlSource(source="sql", url_env="DB_URL", query="select 1").chunk_rows == 50_000


def test_openml_section_wants_a_name_or_an_id() -> None:
    with pytest.raises(ValidationError, match="exactly one of name and id"):
        OpenMLSource(source="openml", name="iris", id=61)
    with pytest.raises(ValidationError, match="version goes with name"):
        OpenMLSource(source="openml", id=61, version=1)


def test_a_spec_validates_plugin_sources_and_a_separate_test_set(tmp_path: Path) -> None:
    from conveyor.spec import load_spec

    spec = tmp_path / "p.yaml"
    spec.write_text("name: t\ndata: {source: synthetic, generator: temperature, days: 30}\n"
                    "schema: {target: is_anomaly}\n"
                    "split: {test_data: {source: sql, url_env: DB, query: select 1}}\n"
                    "model: {estimator: logistic_regression}\n")
    loaded = load_spec(spec)
    assert isinstance(loaded.spec.split.test_data, SqlSource)
    spec.write_text(spec.read_text().replace("days: 30", "days: 30, noise: -2"))
    with pytest.raises(Exception, match=r"data\.noise"):
        load_spec(spec)


def test_arff_parses_numbers_text_quotes_and_missing() -> None:
    text = ("% comment\n@RELATION t\n@ATTRIBUTE 'sepal length' REAL\n"
            "@ATTRIBUTE class {a,'b c'}\n@ATTRIBUTE note string\n@DATA\n"
            "5.1,a,'x, y'\n?,'b c',?\n")
    frame = parse_arff(text, "t")
    assert list(frame.columns) == ["sepal length", "class", "note"]
    assert frame["sepal length"].tolist()[0] == 5.1 and pd.isna(frame["sepal length"][1])
    assert frame["class"].tolist() == ["a", "b c"] and frame["note"][0] == "x, y"
    with pytest.raises(DataError, match="t line 4: 1 values, expected 2"):
        parse_arff("@attribute a real\n@attribute b real\n@data\n1\n", "t")


def test_jsonl_and_parquet_in_chunks(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n{"a": "x"}\n')
    chunks, facts = scan_file_source(source("t.jsonl", chunk_rows=2), tmp_path)
    frames = list(chunks)  # pandas counts the blank line in a chunk's lines
    assert len(frames) == 2 and frames[0]["a"].tolist() == [1]  # then 2 and "x": text
    whole, _ = read_file_source(source("t.jsonl", chunk_rows=2), tmp_path)
    assert whole["a"].tolist() == ["1", "2", "x"]  # widened, as one read would have it
    lines = LineMap.from_json(facts["lines"])
    assert lines is not None and [lines.line(r) for r in range(3)] == [1, 3, 4]
    pd.DataFrame({"a": range(5)}).to_parquet(tmp_path / "t.parquet", index=False)
    chunks, facts = scan_file_source(source("t.parquet", chunk_rows=2), tmp_path)
    assert [c["a"].tolist() for c in chunks] == [[0, 1], [2, 3], [4]]
    assert facts["lines"] is None
