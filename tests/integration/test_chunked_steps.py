"""validate and split in chunks, from the user's side: ``conveyor run`` (ADR 0051).

The same CSV run with ``data.chunk_rows`` below its row count (chunks) and above it (the
whole table) gives the same validation report and the same train and test rows, in the same
order; and the peak memory of validate + split grows far less than the data from N to 4N rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

SPEC = """\
name: chunky
data: {{source: file, uri: {uri}}}
schema: {{target: diagnosis, positive_label: M, id: id}}
validate: {{types: warn, duplicate_ids: drop}}
model: {{estimator: logistic_regression, params: {{max_iter: 200}}}}
gate: {{}}
"""


def make_csv(path: Path, rows: int, seed: int = 0, *, typo: bool = True,
             features: int = 12) -> None:
    """id, label M/B, ``features`` numbers (1 % missing), a numeric text column (with a
    typo), a city; one id repeats."""
    rng = np.random.default_rng(seed)
    values = rng.normal(100, 30, size=(rows, features)).round(4)
    values[rng.random(values.shape) < 0.01] = np.nan
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(features)])
    frame.insert(0, "diagnosis", np.where(values[:, 0] > 100, "M", "B"))
    frame.insert(0, "id", np.arange(rows))
    frame.loc[rows - 1, "id"] = 3  # repeats row 4's id, chunks away: dropped
    frame["code"] = rng.integers(0, 9, rows).astype(str)
    if typo:  # in a numeric text column (warn)
        frame.loc[rows // 2, "code"] = "n/a"
    frame["city"] = rng.choice(["Oslo", "Lima", "Pune"], rows)
    frame.to_csv(path, index=False)


def conveyor(spec: Path, home: Path, *args: str, chunk_rows: int) -> tuple[float, str]:
    """``conveyor run SPEC ARGS`` in a child: (its peak RSS in MB, stderr)."""
    env = dict(os.environ, CONVEYOR_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true")
    child = subprocess.Popen([sys.executable, "-m", "conveyor.cli", "run", str(spec),
                              f"data.chunk_rows={chunk_rows}", *args, "-q"], env=env,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    error = child.stderr.read().decode() if child.stderr else ""
    assert status == 0, error[-3000:]
    return usage.ru_maxrss / 1024, error


def artifact(home: Path, step: str, name: str) -> Path:
    found = sorted(home.rglob(f"chunky/*/{step}/{name}"))
    assert len(found) == 1, found
    return found[0]


def test_chunks_and_whole_give_the_same_report_and_split(
        tmp_path: Path, seed_mlflow: Callable[[Path], Path]) -> None:
    data = tmp_path / "data.csv"
    make_csv(data, 2_000)
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(SPEC.format(uri=data))
    results = {}
    for label, chunk_rows in (("chunks", 300), ("whole", 100_000)):
        home = tmp_path / label
        seed_mlflow(home)
        conveyor(spec, home, "--until", "split", chunk_rows=chunk_rows)
        report = json.loads(artifact(home, "validate", "report.json").read_text())
        results[label] = (report, *(pd.read_parquet(artifact(home, "split", f"{t}.parquet"))
                                    for t in ("train", "test")))
    (report, train, test), (whole_report, whole_train, whole_test) = (results["chunks"],
                                                                      results["whole"])
    assert report == whole_report
    assert report["dropped"]["by_check"] == {"duplicate_ids": 1}  # row 2000's repeated id
    assert [p["check"] for p in report["problems"]] == ["types", "duplicate_ids"]
    pd.testing.assert_frame_equal(train, whole_train)
    pd.testing.assert_frame_equal(test, whole_test)
    assert len(train) + len(test) == 1_999
    assert not train["id"].is_monotonic_increasing  # shuffled as the whole split shuffles

    # conveyor schema accept, then again on drifted data: the same differences, same schema
    def accept(label: str, chunk_rows: int) -> tuple[str, str]:
        home = tmp_path / label
        done = subprocess.run([sys.executable, "-m", "conveyor.cli", "schema", "accept",
                               str(spec), f"data.chunk_rows={chunk_rows}"],
                              env=dict(os.environ, CONVEYOR_HOME=str(home)),
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        saved = next(home.rglob("chunky/_schema/schema.json")).read_text()
        return done.stdout.replace(str(home), "HOME"), saved

    for label, chunk_rows in (("chunks", 300), ("whole", 100_000)):
        accept(label, chunk_rows)
    drifted = pd.read_csv(data)
    drifted["f1"] = drifted["f1"] + 500
    drifted.loc[::7, "city"] = "Rome"
    drifted.to_csv(data, index=False)
    said = {label: accept(label, chunk_rows)
            for label, chunk_rows in (("chunks", 300), ("whole", 100_000))}
    assert said["chunks"] == said["whole"]
    assert "'f1'" in said["chunks"][0] and "'Rome'" in said["chunks"][0], said["chunks"][0]


def test_a_separate_test_set_trains_on_every_row_streamed(
        tmp_path: Path, seed_mlflow: Callable[[Path], Path]) -> None:
    """``split.test_data``: the validated table streams into train whole; the test file is
    checked and typed as before."""
    data, held = tmp_path / "data.csv", tmp_path / "held.csv"
    make_csv(data, 1_000)
    make_csv(held, 200, seed=1)
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(SPEC.format(uri=data)
                    + f"split: {{test_data: {{source: file, uri: {held}}}}}\n")
    tables = {}
    for label, chunk_rows in (("chunks", 300), ("whole", 100_000)):
        home = tmp_path / label
        seed_mlflow(home)
        conveyor(spec, home, "--until", "split", chunk_rows=chunk_rows)
        tables[label] = [pd.read_parquet(artifact(home, "split", f"{t}.parquet"))
                         for t in ("train", "test")]
    for chunked, whole in zip(tables["chunks"], tables["whole"], strict=True):
        pd.testing.assert_frame_equal(chunked, whole)
    assert len(tables["chunks"][0]) == 999 and len(tables["chunks"][1]) == 199  # a repeat each


CHILD = """
import sys, yaml
import pandas as pd, pandera.pandas, sklearn.model_selection  # the imports, before measuring
from conveyor.modeling.training import split_table
from conveyor.spec.models import Spec
from conveyor.store.tables import write_batches
from conveyor.validation.chunked import ParquetChunks, take_rows, validate_chunked
from conveyor.validation.table import validate_table

path, chunk, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
spec = Spec.model_validate(yaml.safe_load(sys.stdin.read()))
chunks = ParquetChunks(path, chunk)
if chunks.rows > chunk:  # what the validate and split steps do with a large table
    table, report = validate_chunked(chunks, chunks.columns, chunks.rows, spec, source="d")
    out, _, _ = write_batches(table(), folder)
    valid = ParquetChunks(out, chunk)
    target = pd.concat(valid(["diagnosis"]))["diagnosis"].reset_index(drop=True)
    rows = pd.DataFrame({"__row": range(len(target)), "diagnosis": target})
    train, test = split_table(rows, "diagnosis", spec.split)
    parts = take_rows(valid, {"train": train["__row"].to_numpy(),
                              "test": test["__row"].to_numpy()}, folder)
    for name, part in parts.items():
        write_batches(part(), folder)
else:  # and with a small one
    table, report = validate_table(pd.read_parquet(path), spec, source="d")
    train, test = split_table(table, "diagnosis", spec.split)
    table.to_parquet(folder + "/t.parquet"), train.to_parquet(folder + "/train.parquet")
# VmHWM: this process's own peak (ru_maxrss would count the parent's memory at the fork)
status = open("/proc/self/status").read()
print(int(status.split("VmHWM:")[1].split()[0]) / 1024)
"""


def test_peak_memory_of_validate_and_split_grows_far_less_than_the_data(
        tmp_path: Path) -> None:
    """validate and split of N = 40,000 and 4N rows in chunks of 4,000, each in a child
    process (as the steps run them, without the runner); the whole-table path at 4N is the
    control that shows the measurement sees the table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, peaks, sizes = 40_000, {}, {}
    spec = SPEC.format(uri="data.csv")
    for label, n, chunk in (("N", rows, 4_000), ("4N", 4 * rows, 4_000),
                            ("4N whole", 4 * rows, 10**9)):
        folder = tmp_path / label.replace(" ", "-")
        folder.mkdir()
        make_csv(folder / "data.csv", n, typo=False, features=40)  # ~360 B a row
        frame = pd.read_csv(folder / "data.csv")
        sizes[label] = frame.memory_usage(deep=True).sum() / 2**20
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                       folder / "raw.parquet", row_group_size=4_000)  # as ingest writes
        del frame
        done = subprocess.run([sys.executable, "-c", CHILD, str(folder / "raw.parquet"),
                               str(chunk), str(folder)], input=spec, capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        peaks[label] = float(done.stdout.split()[-1])
    grown = peaks["4N"] - peaks["N"]
    more_data = sizes["4N"] - sizes["N"]  # MiB of table added
    # What still grows is ~55 bytes a row (the target, the ids' hashes, the split's indices:
    # ~7 MiB here) plus the allocator's noise, which a loaded suite makes larger (+8.5 MiB
    # quiet, +12.3 and +23.9 in two CI runs); the whole table's path grows by ~260 MiB.
    whole_grown = peaks["4N whole"] - peaks["N"]
    assert grown < 0.25 * whole_grown, (peaks, sizes)
    assert peaks["4N whole"] - peaks["4N"] > more_data, (peaks, sizes)  # the control
