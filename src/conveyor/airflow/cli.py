"""``conveyor airflow``: the embedded Airflow (standalone UI), one-off DAG tests, the loader.

The embedded Airflow lives in ``CONVEYOR_HOME/airflow`` (SQLite metadata, the Conveyor loader
as its only DAG file, examples off). Every command runs Airflow in a subprocess with that
environment, so nothing of Airflow is imported into the ``conveyor`` process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conveyor.errors import ConveyorRuntimeError, SpecError
from conveyor.processes import free_port

__all__ = ["airflow_environment", "register"]

REPO_EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def airflow_environment(home: Path, pipelines: Path, *, port: int | None = None,
                        conveyor_home: Path | None = None,
                        base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of an embedded Airflow under ``home`` serving ``pipelines``.

    SQLite metadata in ``home``, a DAGs folder holding the two Conveyor loader files, every
    HTTP server on 127.0.0.1 or on a free port (the api-server, and the log servers of the
    scheduler and triggerer, which Airflow otherwise puts on 8793 and 8794: a second Airflow
    on the machine would collide), no login (the simple auth manager makes every visitor
    admin: for a local, single-user Airflow only). ``base`` is the environment to start
    from (default ``os.environ``); its ``AIRFLOW__*`` settings are dropped.
    """
    from conveyor.airflow import DAGS_FOLDER_FILES
    from conveyor.store import home_dir

    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for source in DAGS_FOLDER_FILES:
        target = dags / source.name
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)
    port = port or free_port()
    conveyor_home = conveyor_home or home_dir()
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.startswith("AIRFLOW__")}
    secret_file = home / ".jwt_secret"
    if not secret_file.exists():
        secret_file.write_text(os.urandom(24).hex())
        secret_file.chmod(0o600)
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text().strip(),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "CONVEYOR_PIPELINES": str(pipelines),
        "CONVEYOR_HOME": str(conveyor_home),
    })
    env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{conveyor_home / 'mlflow.db'}")
    return env


def _airflow(env: dict[str, str], *args: str, check: bool = True, timeout: float = 900
             ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise ConveyorRuntimeError(f"airflow {' '.join(args[:2])} failed:\n{tail}")
    return done


def _prepare(env: dict[str, str]) -> None:
    """Migrate the metadata database once, then serialize the DAGs (``dags test`` needs it)."""
    home = Path(env["AIRFLOW_HOME"])
    marker = home / ".migrated"
    if not marker.exists():
        _airflow(env, "db", "migrate")
        marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
    _airflow(env, "dags", "reserialize")


def _home() -> Path:
    from conveyor.store import home_dir

    return Path(os.environ.get("CONVEYOR_AIRFLOW_HOME") or home_dir() / "airflow")


def cmd_dags_folder(args: argparse.Namespace) -> int:
    from conveyor.airflow import DAGS_FOLDER_FILES

    for path in DAGS_FOLDER_FILES:
        sys.stdout.write(f"{path}\n")
    sys.stdout.write("# copy both files into your Airflow dags/ folder and set "
                     "CONVEYOR_PIPELINES to the folder of your specs\n")
    return 0


def cmd_standalone(args: argparse.Namespace) -> int:
    pipelines = REPO_EXAMPLES if args.examples else Path(
        os.environ.get("CONVEYOR_PIPELINES") or "pipelines").resolve()
    if not pipelines.exists():
        raise SpecError(f"no pipelines folder {pipelines}: create it and put specs in it, set "
                        "CONVEYOR_PIPELINES, or pass --examples")
    env = airflow_environment(_home(), pipelines, port=args.port)
    _prepare(env)
    sys.stdout.write(f"Airflow UI on http://127.0.0.1:{args.port} (local only, no login: every "
                     f"visitor is admin); DAGs from {pipelines}; home {env['AIRFLOW_HOME']}; "
                     "Ctrl-C stops it\n")
    sys.stdout.flush()
    os.execve(str(Path(sys.executable).parent / "airflow"), ["airflow", "standalone"], env)
    return 0  # pragma: no cover - execve does not return


def _dag_id_and_folder(target: str) -> tuple[str, Path]:
    path = Path(target)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        from conveyor.spec import load_spec

        loaded = load_spec(path)
        return loaded.spec.name, path.resolve()
    pipelines = Path(os.environ.get("CONVEYOR_PIPELINES") or "pipelines").resolve()
    return target, pipelines


def cmd_test(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    dag_id, pipelines = _dag_id_and_folder(args.target)
    env = airflow_environment(_home(), pipelines)
    console = Console(highlight=False)
    console.print(f"airflow dags test [bold]{dag_id}[/] (DAGs from {pipelines})")
    started = time.perf_counter()
    _prepare(env)
    command = ["dags", "test", dag_id]
    if args.conf:
        command += ["--conf", args.conf]
    done = _airflow(env, *command, check=False)
    seconds = time.perf_counter() - started
    states = _task_states(Path(env["AIRFLOW_HOME"]) / "airflow.db", dag_id)
    table = Table(show_header=True, header_style="bold")
    for column in ("task", "state", "tries", "seconds"):
        table.add_column(column)
    for task, (state, tries, duration) in states.items():
        table.add_row(task, str(state), str(tries), f"{duration or 0:.2f}")
    console.print(table)
    ok = done.returncode == 0 and states and all(s[0] in ("success", "skipped")
                                                 for s in states.values())
    console.print(f"{'[green]success[/]' if ok else '[red]failed[/]'} in {seconds:.1f}s; "
                  f"logs under {env['AIRFLOW_HOME']}/logs")
    if not ok:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        console.print(tail, markup=False)
    return 0 if ok else 1


def _task_states(db: Path, dag_id: str) -> dict[str, tuple[Any, Any, Any]]:
    import sqlite3

    if not db.exists():
        return {}
    with sqlite3.connect(db) as connection:
        row = connection.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
        if row is None:
            return {}
        rows = connection.execute(
            "SELECT task_id, state, try_number, duration FROM task_instance "
            "WHERE dag_id = ? AND run_id = ? ORDER BY start_date", (dag_id, row[0]),
        ).fetchall()
    return {task: (state, tries, duration) for task, state, tries, duration in rows}


def register(sub: Any) -> None:
    """Add ``conveyor airflow ...`` to the CLI."""
    parser = sub.add_parser("airflow", help="run pipelines as Airflow DAGs")
    commands = parser.add_subparsers(dest="airflow_command", required=True, metavar="COMMAND")
    standalone = commands.add_parser("standalone", help="Airflow UI + scheduler (SQLite)")
    standalone.add_argument("--examples", action="store_true",
                            help="serve this repository's examples/ as DAGs")
    standalone.add_argument("--port", type=int, default=8080)
    standalone.set_defaults(func=cmd_standalone)
    test = commands.add_parser("test", help="one DAG run in-process (airflow dags test)")
    test.add_argument("target", help="a spec file, or a DAG id from CONVEYOR_PIPELINES")
    test.add_argument("--conf", help='JSON overrides, e.g. \'{"model.params.C": 0.5}\'')
    test.set_defaults(func=cmd_test)
    folder = commands.add_parser("dags-folder", help="the loader files for an existing Airflow")
    folder.set_defaults(func=cmd_dags_folder)
