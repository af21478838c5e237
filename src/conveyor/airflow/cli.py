"""``conveyor airflow``: the embedded Airflow (standalone UI), one-off DAG tests, the loader.

The embedded Airflow lives in ``CONVEYOR_HOME/airflow`` (SQLite metadata, the Conveyor loader
as its only DAG file, examples off). Every command runs Airflow in a subprocess with that
environment, so nothing of Airflow is imported into the ``conveyor`` process.

``conveyor airflow test`` exits as ``conveyor run`` does: 0 success, 1 failure, 2 bad input
(an unknown DAG, a broken spec, bad data, an empty lab inbox), 3 the gate rejected the model.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conveyor.errors import BadInputError, ConveyorRuntimeError, SpecError
from conveyor.ids import new_id
from conveyor.processes import free_port

__all__ = ["airflow_environment", "register"]

log = logging.getLogger(__name__)

REPO_EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
#: The file Airflow records the broken specs' errors against (conveyor.airflow.loader).
ERRORS_FILE = "conveyor_spec_errors.py"


def airflow_environment(home: Path, pipelines: Path, *, port: int | None = None,
                        conveyor_home: Path | None = None,
                        base: Mapping[str, str] | None = None,
                        parallelism: int | None = None) -> dict[str, str]:
    """The environment of an embedded Airflow under ``home`` serving ``pipelines``.

    SQLite metadata in ``home``, a DAGs folder holding the two Conveyor loader files, every
    HTTP server on 127.0.0.1 or on a free port (the api-server, and the log servers of the
    scheduler and triggerer, which Airflow otherwise puts on 8793 and 8794 of every
    interface: ``config/airflow_local_settings.py`` binds them to 127.0.0.1, see
    :mod:`conveyor.airflow.loopback`), one LocalExecutor worker per CPU (``parallelism``;
    Airflow's default forks 32), no login (the simple auth manager makes every visitor
    admin: for a local, single-user Airflow only). ``base`` is the environment to start
    from (default ``os.environ``); its ``AIRFLOW__*`` settings are dropped.
    """
    from conveyor.airflow import DAGS_FOLDER_FILES
    from conveyor.airflow.loopback import LOCAL_SETTINGS
    from conveyor.airflow.standalone import default_parallelism
    from conveyor.store import home_dir

    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for source in DAGS_FOLDER_FILES:
        target = dags / source.name
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)
    settings = home / "config" / "airflow_local_settings.py"
    settings.parent.mkdir(exist_ok=True)
    current = settings.read_text() if settings.exists() else None
    if current is None or (current != LOCAL_SETTINGS
                           and current.startswith(LOCAL_SETTINGS.splitlines()[0])):
        settings.write_text(LOCAL_SETTINGS)
    elif current != LOCAL_SETTINGS:  # someone's own settings file: never overwritten
        log.warning("%s is not Conveyor's: Airflow's log servers keep Airflow's address "
                    "(every interface) unless it calls "
                    "conveyor.airflow.loopback.bind_log_servers()", settings)
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
        "AIRFLOW__CORE__PARALLELISM": str(parallelism or default_parallelism()),
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
    from conveyor.airflow.specs import pipelines_folder
    from conveyor.airflow.standalone import run_supervised

    pipelines = REPO_EXAMPLES if args.examples else pipelines_folder()
    if not pipelines.exists():
        raise SpecError(f"no pipelines folder {pipelines}: create it and put specs in it, set "
                        "CONVEYOR_PIPELINES, or pass --examples")
    if args.parallelism is not None and args.parallelism < 1:
        raise BadInputError(f"--parallelism must be at least 1, got {args.parallelism}")
    env = airflow_environment(_home(), pipelines, port=args.port,
                              parallelism=args.parallelism)
    _prepare(env)
    sys.stdout.write(
        f"Airflow UI on http://127.0.0.1:{args.port} (local only, no login: every visitor is "
        f"admin); DAGs from {pipelines}; home {env['AIRFLOW_HOME']}; "
        f"{env['AIRFLOW__CORE__PARALLELISM']} task(s) at once; Ctrl-C stops it\n")
    sys.stdout.flush()
    return run_supervised([str(Path(sys.executable).parent / "airflow"), "standalone"], env)


# ---------------------------------------------------------------------------- airflow test


def _resolve_target(target: str) -> tuple[str, Path, Path]:
    """``(dag_id, pipelines folder or file, spec file)`` of a spec file or a DAG id.

    Raises:
        SpecError: the spec file is invalid.
        BadInputError: no spec of the pipelines folder gives that DAG id.
    """
    from conveyor.airflow.specs import dag_ids_of, is_lab_spec, pipelines_folder, spec_dags

    path = Path(target)
    if path.suffix in (".yaml", ".yml") or os.sep in target:
        if not path.is_file():
            raise BadInputError(f"no spec file {target}; pass a pipeline or lab spec (.yaml) "
                                "or a DAG id from CONVEYOR_PIPELINES")
        from conveyor.spec import read_yaml

        data, _ = read_yaml(path)
        if is_lab_spec(data):
            from conveyor.lab import load_lab

            load_lab(path)
            return dag_ids_of(data)[0], path.resolve(), path.resolve()
        from conveyor.airflow.specs import is_collect_spec

        if is_collect_spec(data):
            from conveyor.sources.collect import load_collection

            load_collection(path)
            return dag_ids_of(data)[0], path.resolve(), path.resolve()
        from conveyor.spec import load_spec

        loaded = load_spec(path)
        return loaded.spec.name, path.resolve(), path.resolve()
    pipelines = pipelines_folder()
    if not pipelines.exists():
        raise BadInputError(f"no DAG {target!r}: the pipelines folder {pipelines} does not exist; "
                            "set CONVEYOR_PIPELINES to your specs' folder or pass a spec file")
    dags, unreadable = spec_dags(pipelines)
    if target in dags:
        return target, pipelines, dags[target]
    message = (f"no DAG {target!r} in {pipelines}: "
               + (f"available DAGs are {', '.join(sorted(dags))}" if dags else "it has no specs")
               + "; set CONVEYOR_PIPELINES or pass a spec file")
    if unreadable:
        message += "\nspecs that are no DAG: " + "; ".join(unreadable.values())
    raise BadInputError(message)


def _recorded_spec_errors(db: Path, spec: Path) -> list[str]:
    """The errors Airflow recorded for ``spec`` at the last parse (``file:line: key: …``)."""
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT stacktrace FROM import_error WHERE filename LIKE ?", (f"%{ERRORS_FILE}",)
        ).fetchall()
    prefix = f"{spec}:"
    return [line.strip() for (text,) in rows for line in (text or "").splitlines()
            if line.strip().startswith(prefix)]


def _check_inbox(dag_id: str, spec: Path, *, wait: bool) -> str:
    """What a lab's train DAG will find in its inbox, or why it would only wait.

    The sensor of ``<lab>_train`` waits up to ``CONVEYOR_LAB_SENSOR_TIMEOUT`` (5 min) for a
    new config file; a one-off test with an empty inbox would sit through all of it.

    Raises:
        BadInputError: the inbox holds nothing new and ``wait`` is false, or is missing.
    """
    from conveyor.airflow.specs import SENSOR_TIMEOUT_SECONDS, TIMEOUT_ENV, env_seconds
    from conveyor.lab import load_lab, pending_files

    lab = load_lab(spec)
    names = pending_files(lab)
    if names:
        return (f"{dag_id} trains {len(names)} new config file(s) from {lab.inbox_uri}: "
                + ", ".join(names))
    timeout = env_seconds(TIMEOUT_ENV, SENSOR_TIMEOUT_SECONDS)
    if wait:
        return (f"{dag_id} waits up to {timeout:.0f} s ({TIMEOUT_ENV}) for a new config file "
                f"in {lab.inbox_uri}")
    raise BadInputError(
        f"{dag_id} has nothing to train: no new config file in {lab.inbox_uri} (files count "
        f"once they are {lab.spec.watch.min_age_seconds:g} s old; each content is trained "
        f"once); drop a classifier config (.json, .yaml) there, or pass --wait to let the "
        f"sensor wait up to {timeout:.0f} s for one")


def _check_conf(conf: str) -> None:
    """``--conf`` must be a JSON object (Airflow's own message is a traceback)."""
    import json

    try:
        value = json.loads(conf)
    except ValueError as exc:
        raise BadInputError(f"--conf is not JSON ({exc}); expected an object such as "
                            '\'{"model.params.C": 0.5}\'') from None
    if not isinstance(value, dict):
        raise BadInputError(f"--conf must be a JSON object of overrides, got "
                            f"{type(value).__name__}; e.g. '{{\"model.params.C\": 0.5}}'")


def _log_folder(home: Path, dag_id: str, run_id: str | None) -> Path:
    name = run_id or f"no-run-{new_id()}"
    return home / "logs" / "dags-test" / dag_id / re.sub(r"[^A-Za-z0-9._=-]+", "_", name)


def cmd_test(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from conveyor.airflow.dags_test import last_run_key, read_result, write_logs

    if args.conf is not None:
        _check_conf(args.conf)
    dag_id, pipelines, spec = _resolve_target(args.target)
    env = airflow_environment(_home(), pipelines)
    home = Path(env["AIRFLOW_HOME"])
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"airflow dags test [bold]{dag_id}[/] (DAGs from {pipelines})")
    if dag_id.endswith("_train") and spec.is_file():
        from conveyor.airflow.specs import is_lab_spec
        from conveyor.spec import read_yaml

        if is_lab_spec(read_yaml(spec)[0]):
            console.print(_check_inbox(dag_id, spec, wait=args.wait), markup=False)
    started = time.perf_counter()
    _prepare(env)
    recorded = _recorded_spec_errors(home / "airflow.db", spec)
    if recorded:
        # Airflow did not make the DAG: show why, as Airflow recorded it (file:line: key).
        raise BadInputError("\n".join(recorded))
    before = last_run_key(home / "airflow.db", dag_id)
    command = ["dags", "test", dag_id]
    if args.conf:
        command += ["--conf", args.conf]
    done = _airflow(env, *command, check=False)
    output = done.stdout + done.stderr
    seconds = time.perf_counter() - started
    result = read_result(home / "airflow.db", dag_id, before, output)
    folder = _log_folder(home, dag_id, result.run_id)
    whole = write_logs(folder, output, result.logs)
    code = result.exit_code(done.returncode)

    for error in result.errors:  # the task's own error first, not Airflow's log around it
        console.print(f"[red]error[/]: {error.line()}" if not error.rejected
                      else f"[red]{error.line()}[/]")
    if result.run_id is None:
        tail = "\n".join(output.strip().splitlines()[-5:])
        console.print(f"airflow dags test made no DAG run:\n{tail}", markup=False)
    if result.tasks:
        table = Table(show_header=True, header_style="bold")
        for column in ("task", "state", "tries", "seconds"):
            table.add_column(column)
        for row in result.tasks:
            table.add_row(row.task, str(row.state), str(row.tries), f"{row.seconds:.2f}")
        console.print(table)
    verdict = {0: "[green]success[/]", 3: "[red]rejected[/]"}.get(code, "[red]failed[/]")
    if code == 0 and result.tasks and all(r.state == "skipped" for r in result.tasks):
        verdict = "[yellow]nothing ran[/] (every task skipped)"
    console.print(f"{verdict} in {seconds:.1f}s (exit {code}); full log {whole}; "
                  f"one log per task in {folder}")
    return code


def register(sub: Any) -> None:
    """Add ``conveyor airflow ...`` to the CLI."""
    parser = sub.add_parser("airflow", help="run pipelines as Airflow DAGs")
    commands = parser.add_subparsers(dest="airflow_command", required=True, metavar="COMMAND")
    standalone = commands.add_parser("standalone", help="Airflow UI + scheduler (SQLite)")
    standalone.add_argument("--examples", action="store_true",
                            help="serve this repository's examples/ as DAGs")
    standalone.add_argument("--port", type=int, default=8080)
    standalone.add_argument("--parallelism", type=int, default=None,
                            help="tasks at once (LocalExecutor workers); default: one per CPU")
    standalone.set_defaults(func=cmd_standalone)
    test = commands.add_parser(
        "test", help="one DAG run in-process (airflow dags test)",
        description="Run one DAG run in-process. Exit codes as `conveyor run`: 0 success, "
                    "1 failure, 2 bad input, 3 the gate rejected the model.")
    test.add_argument("target", help="a spec file, or a DAG id from CONVEYOR_PIPELINES")
    test.add_argument("--conf", help='JSON overrides, e.g. \'{"model.params.C": 0.5}\'')
    test.add_argument("--wait", action="store_true",
                      help="a lab's train DAG with an empty inbox: let the sensor wait for a "
                           "file instead of stopping at once")
    test.set_defaults(func=cmd_test)
    folder = commands.add_parser("dags-folder", help="the loader files for an existing Airflow")
    folder.set_defaults(func=cmd_dags_folder)
