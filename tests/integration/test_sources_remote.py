"""Sources that reach a server (ADR 0044): a file over HTTP, OpenML's REST API (a local server
answering with recorded responses), and SQL on the PostgreSQL at 127.0.0.1:5432.

Each is driven as a user drives it, ``conveyor run SPEC --until ...``; bad input must end
with exit 2, one line naming the key, and no manifest; a server that does not answer with
exit 1 (worth a retry, ADR 0053), the key still named.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from conveyor.cli import main
from conveyor.processes import free_port
from conveyor.sources import read_source
from conveyor.sources.openml_api import OpenMLSource

RECORDED = Path(__file__).parent / "data" / "openml"


def pg(sql: str, dbname: str) -> None:
    """One statement on the local PostgreSQL (as tests/conftest.py's ``pg``)."""
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=dbname,
                            connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


class Server:
    """A local HTTP server answering ``routes[path] = (status, body)``; it notes each path."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.requests: list[str] = []
        #: paths whose body stops half-way, though Content-Length promised all of it
        self.truncated: set[str] = set()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: bool) -> None:
                owner.requests.append(self.path)
                status, data = owner.routes.get(self.path, (404, b'{"error": "not found"}'))
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    cut = self.path in owner.truncated
                    self.wfile.write(data[: len(data) // 2] if cut else data)
                    if cut:
                        self.close_connection = True

            def do_GET(self) -> None:
                self._answer(True)

            def do_HEAD(self) -> None:
                self._answer(False)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture()
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


def write_spec(folder: Path, data: str, *, target: str = "target") -> Path:
    spec = folder / "pipeline.yaml"
    spec.write_text(f"name: src\ndata: {data}\nschema: {{target: {target}}}\n"
                    "model: {estimator: logistic_regression, params: {max_iter: 500}}\n"
                    "gate: {}\n")
    return spec


def run_until(capsys: pytest.CaptureFixture[str], spec: Path, step: str,
              *extra: str) -> tuple[int, str]:
    code = main([*extra, "run", str(spec), "--until", step, "-q"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def ended(code: int, output: str, home: Path, fragments: tuple[str, ...], *,
          exit_code: int, prefix: str) -> None:
    """One line ``<prefix> ...`` holding each fragment, the exit code, nothing published."""
    assert code == exit_code, output
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert list((home / "artifacts").rglob("manifest.json")) == []
    assert list((home / "artifacts").rglob("raw.parquet")) == []


def bad_input(code: int, output: str, home: Path, *fragments: str) -> None:
    ended(code, output, home, fragments, exit_code=2, prefix="error: ")


def unreachable(code: int, output: str, home: Path, *fragments: str) -> None:
    """A server that did not answer: a failure worth a retry (ADR 0053)."""
    ended(code, output, home, fragments, exit_code=1, prefix="failed: ")


def ingest_record(home: Path) -> dict[str, object]:
    [record] = list((home / "artifacts").rglob("ingest/_record.json"))
    return json.loads(record.read_text())


# --------------------------------------------------------------------------- a file over HTTP


def test_a_csv_over_http_is_ingested_a_404_is_bad_input_and_a_dead_host_a_failure(
        server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        conveyor_home: Path) -> None:
    rows = "".join(f"{i},{i % 3},{'a' if i % 2 else 'b'}\n" for i in range(40))
    server.routes["/data/t.csv"] = (200, ("x,z,target\n" + rows).encode())
    spec = write_spec(tmp_path, f"{{source: file, uri: '{server.base}/data/t.csv'}}")
    code, output = run_until(capsys, spec, "ingest")
    assert code == 0, output
    record = ingest_record(conveyor_home)
    assert record["info"]["rows"] == 40 and record["info"]["source"] == f"{server.base}/data/t.csv"
    assert record["info"]["first_line"] == 2  # true lines, as for a local file
    assert "/data/t.csv" in server.requests

    spec = write_spec(tmp_path, f"{{source: file, uri: '{server.base}/data/gone.csv'}}")
    code, output = run_until(capsys, spec, "ingest")
    bad_input(code, output, conveyor_home / "x", "data.uri", "gone.csv")

    dead = f"http://127.0.0.1:{free_port()}/t.csv"
    spec = write_spec(tmp_path, f"{{source: file, uri: '{dead}'}}")
    code, output = run_until(capsys, spec, "ingest")
    unreachable(code, output, conveyor_home / "x", "(data.uri)", f"cannot reach {dead}")


# --------------------------------------------------------------------------- OpenML


@pytest.fixture()
def openml(server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Server:
    """The local server as OpenML, with the recorded answers for iris (data set 61)."""
    arff = (RECORDED / "iris.arff").read_bytes()
    md5 = hashlib.md5(arff).hexdigest()  # OpenML's checksum

    def recorded(name: str) -> bytes:
        text = (RECORDED / name).read_text()
        return text.replace("{base}", server.base).replace("{md5}", md5).encode()

    server.routes.update({
        "/api/v1/json/data/list/data_name/iris/limit/2/status/active/":
            (200, recorded("list_iris.json")),
        "/api/v1/json/data/list/data_name/nosuch/limit/2/status/active/":
            (412, recorded("list_no_results.json")),
        "/api/v1/json/data/61": (200, recorded("data_61.json")),
        "/api/v1/json/data/999999": (412, recorded("data_unknown.json")),
        "/data/v1/download/61/iris.arff": (200, arff),
    })
    monkeypatch.setenv("CONVEYOR_OPENML_URL", server.base)
    monkeypatch.setenv("CONVEYOR_OPENML_CACHE", str(tmp_path / "openml-cache"))
    return server


def test_openml_by_name_then_from_the_cache_without_a_request(
        openml: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        conveyor_home: Path) -> None:
    spec = write_spec(tmp_path, "{source: openml, name: iris}", target="class")
    code, output = run_until(capsys, spec, "validate")
    assert code == 0, output
    assert openml.requests == ["/api/v1/json/data/list/data_name/iris/limit/2/status/active/",
                               "/api/v1/json/data/61", "/data/v1/download/61/iris.arff"]
    record = ingest_record(conveyor_home)
    assert record["info"]["rows"] == 150 and record["info"]["columns"] == 5
    assert record["info"]["source"] == f"{openml.base}/d/61"

    before = len(openml.requests)
    frame, facts = read_source(OpenMLSource(source="openml", name="iris"), tmp_path)
    assert len(openml.requests) == before  # name, description and file all from the cache
    assert frame["class"].value_counts().to_dict() == {
        "Iris-setosa": 50, "Iris-versicolor": 50, "Iris-virginica": 50}
    assert frame["sepallength"].dtype == "float64"
    assert facts["openml"]["default_target"] == "class"


def test_openml_file_arrives_in_pieces_and_parses_in_chunks_to_the_same_table(
        openml: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.sources import openml_api

    monkeypatch.setattr(openml_api, "_PIECE", 1000)  # iris.arff is ~7 kB: several pieces
    monkeypatch.setattr(openml_api, "_ROWS_PER_CHUNK", 7)  # 150 rows: 22 chunks
    frame, _ = read_source(OpenMLSource(source="openml", id=61), tmp_path)
    cached = tmp_path / "openml-cache" / f"127.0.0.1_{openml.port}" / "61" / "data.arff"
    assert cached.read_bytes() == (RECORDED / "iris.arff").read_bytes()
    # the MD5 over 1000-byte pieces matched, and no partial file stayed beside it
    assert sorted(p.name for p in cached.parent.iterdir()) == ["data.arff", "description.json"]
    whole = openml_api.parse_arff((RECORDED / "iris.arff").read_text(), "iris")
    assert len(whole) == 150
    pd.testing.assert_frame_equal(frame, whole)  # chunked == whole: values, dtypes, index


def test_openml_a_cut_or_corrupt_download_leaves_nothing_in_the_cache(
        openml: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        conveyor_home: Path) -> None:
    folder = tmp_path / "openml-cache" / f"127.0.0.1_{openml.port}" / "61"
    openml.truncated.add("/data/v1/download/61/iris.arff")
    code, output = run_until(capsys, write_spec(tmp_path, "{source: openml, id: 61}",
                                                target="class"), "ingest")
    unreachable(code, output, conveyor_home, f"cannot reach OpenML at {openml.base}",
                "(data.id)")
    assert sorted(p.name for p in folder.iterdir()) == ["description.json"]  # no partial file

    openml.truncated.clear()
    arff = (RECORDED / "iris.arff").read_bytes()
    openml.routes["/data/v1/download/61/iris.arff"] = (200, arff.replace(b"5.1", b"5.2", 1))
    code, output = run_until(capsys, write_spec(tmp_path, "{source: openml, id: 61}",
                                                target="class"), "ingest")
    unreachable(code, output, conveyor_home,
                "the file of OpenML data set 61 does not match its MD5", "(data.id)")
    assert sorted(p.name for p in folder.iterdir()) == ["description.json"]

    openml.routes["/data/v1/download/61/iris.arff"] = (200, arff)  # the server heals
    code, output = run_until(capsys, write_spec(tmp_path, "{source: openml, id: 61}",
                                                target="class"), "ingest")
    assert code == 0, output
    assert (folder / "data.arff").read_bytes() == arff


@pytest.mark.parametrize(("data", "fragments"), [
    ("{source: openml, name: nosuch}",
     ("OpenML has no active data set named 'nosuch' (372: No results)", "(data.name)")),
    ("{source: openml, id: 999999}", ("OpenML has no data set 999999", "(data.id)")),
], ids=["unknown-name", "unknown-id"])
def test_openml_unknown_data_sets_are_bad_input(
        openml: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        conveyor_home: Path, data: str, fragments: tuple[str, ...]) -> None:
    code, output = run_until(capsys, write_spec(tmp_path, data), "ingest")
    bad_input(code, output, conveyor_home, *fragments)


def test_openml_unreachable_names_the_setting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], conveyor_home: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_OPENML_CACHE", str(tmp_path / "cache"))
    base = f"http://127.0.0.1:{free_port()}"
    spec = write_spec(tmp_path, f"{{source: openml, id: 61, base_url: '{base}'}}")
    code, output = run_until(capsys, spec, "ingest")
    unreachable(code, output, conveyor_home, f"cannot reach OpenML at {base}", "(data.id)")


def test_openml_answering_5xx_is_a_failure_worth_a_retry(
        openml: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        conveyor_home: Path) -> None:
    openml.routes["/api/v1/json/data/61"] = (503, b'{"error": {"message": "maintenance"}}')
    code, output = run_until(capsys, write_spec(tmp_path, "{source: openml, id: 61}"), "ingest")
    unreachable(code, output, conveyor_home, "OpenML answered 503", "(data.id)")
    assert openml.requests == ["/api/v1/json/data/61"]


# --------------------------------------------------------------------------- SQL


@pytest.fixture(scope="module")
def sales_db(postgres_database: Callable[[str], str]) -> str:
    url = postgres_database("sources")
    name = url.rsplit("/", 1)[-1]
    pg("CREATE TABLE sales (id integer PRIMARY KEY, amount double precision, "
       "region text, target text)", dbname=name)
    values = ", ".join(f"({i}, {i * 1.5}, '{'north' if i % 2 else 'south'}', "
                       f"'{'big' if i % 3 == 0 else 'small'}')" for i in range(1, 121))
    pg(f"INSERT INTO sales VALUES {values}", dbname=name)
    return name


def test_sql_rows_in_chunks_with_the_password_kept_out_of_every_record(
        sales_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        conveyor_home: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    secret = f"pw-{uuid.uuid4().hex}"  # trust auth accepts any password
    monkeypatch.setenv("SALES_DB_URL", f"postgresql://postgres:{secret}@127.0.0.1:5432/"
                                       f"{sales_db}")
    spec = write_spec(tmp_path, "{source: sql, url_env: SALES_DB_URL, chunk_rows: 25, "
                                "query: 'SELECT amount, region, target FROM sales ORDER BY id'}")
    code, output = run_until(capsys, spec, "validate", "--debug")
    assert code == 0, output
    record = ingest_record(conveyor_home)
    assert record["info"]["rows"] == 120
    assert record["info"]["source"] == f"postgresql://postgres:***@127.0.0.1:5432/{sales_db}"
    [raw] = list((conveyor_home / "artifacts").rglob("ingest/raw.parquet"))
    frame = pd.read_parquet(raw)
    assert list(frame.columns) == ["amount", "region", "target"] and frame.amount.iloc[-1] == 180
    assert secret not in output and secret not in caplog.text
    for path in conveyor_home.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(("data", "fragments"), [
    ("{{source: sql, url: 'postgresql://postgres@127.0.0.1:5432/{db}', "
     "query: 'SELECT * FROM missing_table'}}",
     ("the query failed on postgresql://postgres@127.0.0.1:5432/",
      'relation "missing_table" does not exist', "(data.query)")),
    ("{{source: sql, url: 'postgresql://postgres@127.0.0.1:5432/{db}', "
     "query: 'SELEKT 1'}}", ('syntax error at or near "SELEKT"', "(data.query)")),
    ("{{source: sql, url: 'postgresql://postgres@127.0.0.1:5432/{db}_gone', "
     "query: 'SELECT 1'}}", ("cannot connect to postgresql://postgres@127.0.0.1:5432/",
                             "_gone\" does not exist", "(data.url)")),
    ("{{source: sql, url_env: NOT_SET_ANYWHERE, query: 'SELECT 1'}}",
     ("the environment variable NOT_SET_ANYWHERE", "(data.url_env)")),
], ids=["missing-table", "bad-query", "unknown-database", "unset-url-env"])
def test_sql_bad_input_names_the_key(
        sales_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        conveyor_home: Path, data: str, fragments: tuple[str, ...]) -> None:
    spec = write_spec(tmp_path, data.format(db=sales_db, port=free_port()))
    code, output = run_until(capsys, spec, "ingest")
    bad_input(code, output, conveyor_home, *fragments)
