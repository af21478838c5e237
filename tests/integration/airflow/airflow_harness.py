"""Real Apache Airflow 3.3 for tests: a throw-away home with SQLite metadata, and helpers.

How it works (measured on the 2-core test machine):

* ``AIRFLOW_HOME`` is a temporary folder; ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` points at a
  SQLite file inside it; examples are off (``AIRFLOW__CORE__LOAD_EXAMPLES=False``); the DAGs
  folder holds Conveyor's two loader files only and ``CONVEYOR_PIPELINES`` says which specs they
  turn into DAGs.
* ``airflow db migrate`` runs once per session (about 8 s).
* ``airflow dags reserialize`` (about 6 s) parses the DAGs folder and writes serialized DAGs
  and import errors to the metadata DB; ``airflow dags test <dag_id>`` refuses a DAG that
  is not serialized.
* ``airflow dags test <dag_id>`` runs one DAG run in-process (tasks run through the Task
  SDK against an in-process execution API), about 12 s for a trivial two-task DAG.
* Results are read back from the metadata DB itself (``task_instance``, ``dag_run``,
  ``import_error`` tables), the same rows the UI and ``airflow tasks states-for-dag-run`` show.

Every command is a subprocess with an explicit environment: no Airflow code runs inside the
pytest process, and inherited ``AIRFLOW__*`` / ``CONVEYOR_*`` variables cannot leak in.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conveyor.processes import stop_group

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
DAGS_SOURCE = REPO / "src" / "conveyor" / "airflow" / "dags"
LOADER = DAGS_SOURCE / "conveyor_pipelines.py"
ERRORS_FILE = DAGS_SOURCE / "conveyor_spec_errors.py"
BIN = Path(sys.executable).parent
_INHERITED_PREFIXES = ("AIRFLOW", "CONVEYOR_", "MLFLOW_")


@dataclass
class DagRunResult:
    """One ``airflow dags test`` run: its exit, output, run id and task-instance rows."""

    dag_id: str
    returncode: int
    output: str
    seconds: float
    run_id: str | None
    conf: dict[str, object]
    tasks: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def states(self) -> dict[str, str | None]:
        return {task: row["state"] for task, row in self.tasks.items()}  # type: ignore[misc]

    def tail(self, lines: int = 60) -> str:
        """The end of the output, for assertion messages."""
        return "\n".join(self.output.splitlines()[-lines:])


@dataclass
class AirflowHome:
    """A migrated Airflow home; methods run real ``airflow`` commands against it."""

    root: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.root / "airflow.db"

    @property
    def dags_folder(self) -> Path:
        return Path(self.env["AIRFLOW__CORE__DAGS_FOLDER"])

    def run(
        self,
        *args: str,
        extra_env: Mapping[str, str] | None = None,
        timeout: float = 540,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>``; with ``check``, fail the test with the output's tail."""
        env = {**self.env, **(extra_env or {})}
        started = time.perf_counter()
        done = subprocess.run(
            [str(BIN / "airflow"), *args], env=env, cwd=self.root, capture_output=True,
            text=True, timeout=timeout, check=False,
        )
        self.timings[" ".join(args[:2])] = time.perf_counter() - started
        if check and done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-60:])
            pytest.fail(f"airflow {' '.join(args)} exited {done.returncode}:\n{tail}")
        return done

    def query(self, sql: str, *params: object) -> list[sqlite3.Row]:
        """Read the metadata DB (read-only)."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, params).fetchall()

    def reserialize(self, extra_env: Mapping[str, str] | None = None) -> None:
        """Parse the DAGs folder into the metadata DB (DAGs and import errors)."""
        self.run("dags", "reserialize", extra_env=extra_env)

    def import_errors(self) -> dict[str, str]:
        """Import errors of the last parse: file (relative to the bundle) -> message."""
        return {row["filename"]: row["stacktrace"]
                for row in self.query("SELECT filename, stacktrace FROM import_error")}

    def dag_ids(self) -> set[str]:
        """DAGs the last parse left active."""
        return {row["dag_id"] for row in self.query(
            "SELECT dag_id FROM dag WHERE is_stale = 0")}

    def latest_run_id(self, dag_id: str) -> str | None:
        rows = self.query(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", dag_id)
        return rows[0]["run_id"] if rows else None

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, object]]:
        """task_id -> ``state``, ``try_number``, ``hostname`` of one DAG run."""
        rows = self.query(
            "SELECT task_id, state, try_number, hostname FROM task_instance "
            "WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
        return {row["task_id"]: dict(row) for row in rows}

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> object:
        """The ``return_value`` XCom of a task, decoded from JSON."""
        rows = self.query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? "
            "AND key = 'return_value'", dag_id, run_id, task_id)
        if not rows:
            return None
        value = rows[0]["value"]
        return json.loads(value) if isinstance(value, (str, bytes)) else value

    def dags_test(
        self,
        dag_id: str,
        *,
        conf: Mapping[str, object] | None = None,
        extra_env: Mapping[str, str] | None = None,
        timeout: float = 540,
    ) -> DagRunResult:
        """``airflow dags test <dag_id>`` and the task-instance states it left."""
        args = ["dags", "test", dag_id]
        if conf:
            args += ["--conf", json.dumps(dict(conf))]
        before = self.latest_run_id(dag_id)
        started = time.perf_counter()
        done = self.run(*args, extra_env=extra_env, timeout=timeout, check=False)
        seconds = time.perf_counter() - started
        run_id = self.latest_run_id(dag_id)
        if run_id == before:
            run_id = None
        result = DagRunResult(
            dag_id=dag_id, returncode=done.returncode, output=done.stdout + done.stderr,
            seconds=seconds, run_id=run_id, conf=dict(conf or {}),
        )
        if run_id:
            result.tasks = self.task_instances(dag_id, run_id)
        log.info("dags test %s: exit %s in %.1fs, states %s",
                 dag_id, done.returncode, seconds, result.states)
        return result


def airflow_env(root: Path, *, pipelines: Path, conveyor_home: Path) -> dict[str, str]:
    """The complete environment of an Airflow subprocess on a SQLite home under ``root``.

    ``conveyor airflow``'s own environment (so the tests run the Airflow users get), minus
    anything inherited from the caller's ``AIRFLOW*`` / ``CONVEYOR_*`` / ``MLFLOW_*``
    variables, plus test settings.
    """
    from conveyor.airflow.cli import airflow_environment

    base = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    env = airflow_environment(root, pipelines, conveyor_home=conveyor_home, base=base)
    env.update({
        "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # dags test waits out retry delays; keep the backoff short in tests.
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
    })
    return env


def make_home(root: Path, *, pipelines: Path, extra_env: Mapping[str, str] | None = None
              ) -> AirflowHome:
    """A migrated Airflow home under ``root`` whose DAGs folder holds Conveyor's loaders."""
    env = airflow_env(root, pipelines=pipelines, conveyor_home=root / "conveyor")
    home = AirflowHome(root=root, env={**env, **(extra_env or {})})
    home.run("db", "migrate")
    return home


@dataclass
class Standalone:
    """``airflow standalone`` (api-server, scheduler, dag-processor, triggerer) on 127.0.0.1.

    Started in a session of its own so that :meth:`stop` ends exactly the processes it
    started (that session, and the descendants of the PID it launched), never anything else.
    """

    home: AirflowHome
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 240) -> None:
        log_file = (self.home.root / "standalone.log").open("wb")
        self.process = subprocess.Popen(
            [str(BIN / "airflow"), "standalone"], env=self.home.env, cwd=self.home.root,
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited {self.process.returncode}:\n"
                                   + self.log_tail())
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health",
                                            timeout=5) as answer:
                    health = json.loads(answer.read())
                if health.get("scheduler", {}).get("status") == "healthy":
                    return
            except (OSError, ValueError):
                pass
            time.sleep(1)
        raise TimeoutError(f"airflow standalone not healthy after {timeout}s:\n"
                           + self.log_tail())

    def api(self, method: str, path: str, body: object | None = None) -> Any:
        """Call the REST API (the simple auth manager hands out admin tokens in tests)."""
        from conveyor.airflow.rest import api_call

        return api_call(self.url, method, path, body)

    def log_tail(self, lines: int = 80) -> str:
        text = (self.home.root / "standalone.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop every process of the session, task processes (own process groups) too."""
        if self.process is not None:
            from conveyor.airflow.standalone import stop_tree

            stop_tree(self.process)

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the dag-processor has parsed ``dag_id`` (active, not stale)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if dag_id in self.home.dag_ids():
                return
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} not parsed after {timeout}s:\n" + self.log_tail())

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 420) -> str:
        """Until the DAG run ends; returns its state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.home.query(
                "SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
            if rows and rows[0]["state"] in ("success", "failed"):
                return str(rows[0]["state"])
            time.sleep(1)
        raise TimeoutError(f"run {run_id} of {dag_id} not finished after {timeout}s:\n"
                           + self.log_tail())


def worker_hostname() -> str:
    """``[core] hostname_callable`` for test workers: tells two workers on one machine apart."""
    return os.environ.get("CONVEYOR_TEST_WORKER_NAME") or socket.getfqdn()


@dataclass
class Service:
    """A long-running process started by a test, in its own process group."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)


def wait_http(url: str, timeout: float, *, service: Service | None = None) -> None:
    """Until ``url`` answers 2xx (fails early when ``service`` died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service is not None and not service.alive():
            raise RuntimeError(f"{service.name} exited:\n{service.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer in {timeout}s"
                       + (f":\n{service.tail()}" if service else ""))
