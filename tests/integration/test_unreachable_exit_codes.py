"""A server that does not answer is a failure worth a retry (exit 1), whatever it serves: the
object store, an S3 data file, a database (ADR 0053). Driven as a user drives it: ``conveyor
run`` in its own process, against closed ports on 127.0.0.1. A file over HTTP, OpenML, and a
database that answers and refuses (exit 2): tests/integration/test_sources_remote.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conveyor.processes import free_port


def conveyor_run(spec: Path, *args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "conveyor.cli", "run", str(spec), *args],
                          capture_output=True, text=True, timeout=180, env=os.environ.copy())
    return done.returncode, done.stderr


def assert_unreachable(code: int, err: str, home: Path, *fragments: str) -> str:
    """Exit 1, one line ``failed: ...`` holding each fragment, nothing published."""
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("failed: "), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert "Traceback" not in err
    assert list(home.rglob("manifest.json")) == []
    return lines[0]


def write_spec(folder: Path, data: str) -> Path:
    spec = folder / "pipeline.yaml"
    spec.write_text(f"name: reach\ndata: {data}\nschema: {{target: target}}\n"
                    "model: {estimator: logistic_regression, params: {max_iter: 500}}\n"
                    "gate: {}\n")
    return spec


def test_an_s3_store_on_a_closed_port_exits_1(
        dead_s3: str, breast_cancer_spec: Path, conveyor_home: Path) -> None:
    code, err = conveyor_run(breast_cancer_spec, "store.root=s3://nowhere/artifacts")
    line = assert_unreachable(code, err, conveyor_home, "cannot reach s3://nowhere/artifacts/",
                              dead_s3.removeprefix("http://"))
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in line


def test_an_s3_data_file_on_a_closed_port_exits_1(
        dead_s3: str, tmp_path: Path, conveyor_home: Path) -> None:
    spec = write_spec(tmp_path, "{source: file, uri: 's3://nowhere/t.csv'}")
    code, err = conveyor_run(spec, "--until", "ingest", "-q")
    assert_unreachable(code, err, conveyor_home, "cannot reach s3://nowhere/t.csv")


def test_a_database_on_a_closed_port_exits_1_naming_the_url_key(
        tmp_path: Path, conveyor_home: Path) -> None:
    port = free_port()
    spec = write_spec(tmp_path, f"{{source: sql, url: 'postgresql://postgres@127.0.0.1:{port}/"
                                "sales', query: 'SELECT 1'}")
    code, err = conveyor_run(spec, "--until", "ingest", "-q")
    assert_unreachable(code, err, conveyor_home,
                       f"cannot connect to postgresql://postgres@127.0.0.1:{port}/sales",
                       "Connection refused", "(data.url)")
