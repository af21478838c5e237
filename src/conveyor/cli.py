"""The ``conveyor`` command: thin, calls the packages; this module owns terminal output.

Exit codes: 0 success, 1 failure, 2 bad input (spec, data, usage), 3 the gate rejected the
model (the run completed; nothing was registered or exported).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import shlex
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.markup import escape

from conveyor.errors import BadInputError, ConveyorError, SpecError

__all__ = ["main"]

log = logging.getLogger("conveyor")
STEP_HELP = "ingest, validate, split, train, evaluate, gate, register, export"


def _console() -> Any:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=160)
    return console


def _quiet_libraries(debug: bool) -> None:
    # MLflow 3 reports usage to its maintainers unless told not to; a user who wants that
    # sets MLFLOW_DISABLE_TELEMETRY=false. Read when mlflow is first imported: set it first.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if not debug:  # MLflow configures its own loggers on import; this is the knob it reads
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not debug:
        for name in ("mlflow", "alembic", "matplotlib", "urllib3", "botocore", "s3fs"):
            logging.getLogger(name).setLevel(logging.ERROR)
        logging.getLogger("conveyor").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", module=r"mlflow(\..*)?$")
        warnings.filterwarnings("ignore", category=FutureWarning)


def _load(args: argparse.Namespace) -> Any:
    from conveyor.spec import load_spec

    return load_spec(args.spec, args.overrides, profile=args.profile)


# --------------------------------------------------------------------------- commands


def cmd_validate(args: argparse.Namespace) -> int:
    from conveyor.steps import check_spec, pipeline_steps

    if _is_lab_spec(args.spec):
        return _validate_lab(args)
    loaded = _load(args)
    check_spec(loaded)
    spec = loaded.spec
    console = _console()
    console.print(f"[green]✓[/] {loaded.path}: pipeline [bold]{spec.name}[/] is valid")
    console.print(f"  data: {spec.data.source} · target: {spec.schema_.target} · model: "
                  f"{spec.model.estimator} · steps: "
                  + " → ".join(s.name for s in pipeline_steps(spec)))
    console.print(f"  spec hash: {loaded.spec_hash[:12]}")
    return 0


def _is_lab_spec(path: Path) -> bool:
    """A lab spec has ``watch:`` (its inbox) and no pipeline ``model:``; errors are the loaders'."""
    from conveyor.spec import read_yaml

    try:
        data, _ = read_yaml(path)
    except SpecError:
        return False  # the pipeline loader reports it, with file and line
    return isinstance(data, dict) and "watch" in data and "model" not in data


def _validate_lab(args: argparse.Namespace) -> int:
    from conveyor.lab.spec import load_lab

    if args.overrides or args.profile:
        raise SpecError("a lab spec takes no overrides or --profile", file=str(args.spec))
    lab = load_lab(args.spec)
    spec = lab.spec
    console = _console()
    console.print(f"[green]✓[/] {args.spec}: lab [bold]{spec.name}[/] is valid", soft_wrap=True)
    minimums = ", ".join(f"{k} >= {v}" for k, v in spec.promotion.minimums.items()) or "none"
    console.print(f"  watches: {lab.inbox_uri} · data: {spec.data.source}:{spec.data.name} · "
                  f"registers: {spec.model_name}", markup=False)
    console.print(f"  promotion: best {spec.promotion.metric} by at least "
                  f"{spec.promotion.min_delta}; minimums: {minimums}", markup=False)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from conveyor.runners import LocalRunner

    console = _console()
    loaded = _load(args)
    started = time.perf_counter()

    progress = StepProgress(console, enabled=not args.quiet and console.is_terminal)

    def on_event(kind: str, step: str, record: Any) -> None:
        if kind == "start":
            progress.start(step)
            return
        progress.stop()
        mark = {"ok": "[green]✓[/]", "cached": "[cyan]✓[/]", "skipped": "[yellow]–[/]"}.get(
            record.status, "?")
        note = {"cached": f"cached (run {record.cached_from})",
                "skipped": record.info.get("reason", "")}.get(record.status, "")
        facts = _facts(step, record)
        if not args.quiet:
            console.print(f"  {mark} {step:<9} {record.duration:6.2f}s  {note or facts}")

    if not args.quiet:
        console.print(f"[bold]{loaded.spec.name}[/] · {loaded.path}"
                      + (f" · profile {loaded.profile}" if loaded.profile else ""))
        console.print(_home_line(args), markup=False)
    runner = LocalRunner(loaded, use_cache=not args.no_cache, on_event=on_event)
    try:
        summary = runner.run(args.run_id, start=args.start, until=args.until, only=args.step)
    finally:
        progress.stop()
    elapsed = time.perf_counter() - started
    if not summary.complete:
        last = list(summary.records)[-1] if summary.records else None
        console.print(f"run [bold]{summary.run_id}[/] stopped as asked after "
                      f"{last or 'no step'} ({elapsed:.1f}s); continue with:")
        console.print(f"  {resume_command(loaded, summary.run_id, last, spec=args.spec)}",
                      markup=False)
        return 0
    manifest = summary.manifest or {}
    metrics = manifest.get("metrics", {})
    table = Table(title="test metrics", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in sorted(k for k in metrics if k.startswith("test_")):
        table.add_row(name, f"{metrics[name]:.4f}")
    console.print(table)
    steps = manifest.get("steps", {})
    registered = steps.get("register", {}).get("info", {})
    exported = steps.get("export", {}).get("info", {})
    console.print(f"run        {summary.run_id}  ({elapsed:.1f}s, MLflow run "
                  f"{summary.mlflow_run_id})")
    console.print(f"manifest   {summary.manifest_ref.uri if summary.manifest_ref else '-'}")
    report = manifest.get("artifacts", {}).get("evaluate/report", {}).get("uri")
    if report:
        console.print(f"report     {report}")
    if summary.status == "rejected":
        console.print(f"[red]gate rejected the model[/]: "
                      f"{steps.get('gate', {}).get('info', {}).get('reason', '')}")
        if not (registered.get("model_uri") or exported.get("model")):
            console.print("nothing was registered or exported")
            return 3
        console.print("[yellow]published anyway[/] (registry.allow_unvalidated is true)")
    if registered.get("model_uri"):
        console.print(f"registered {registered['model_uri']}"
                      + ("" if registered.get("created", True) else " (already registered)"))
    if exported.get("model"):
        console.print(f"model      {exported['model']}")
        console.print(f"metrics    {exported['metrics']}")
    return 0


def progress_line(step: str, elapsed: float) -> str:
    """The line shown while ``step`` runs: its name and the seconds it has taken so far."""
    return f"{step:<9} running {elapsed:5.1f}s"


class StepProgress:
    """The running step with a spinner and its elapsed time, on a terminal only.

    Rich's live display redraws the line a few times a second; the elapsed time is computed
    at each redraw. Off a terminal (a pipe, a log file, CI) nothing is shown, so captured
    output holds only the finished steps' lines.

    Args:
        console: where to draw.
        enabled: draw at all (a terminal, and not ``--quiet``).
        clock: seconds, monotonic (a test passes its own).
    """

    def __init__(self, console: Any, *, enabled: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.enabled = enabled
        self.clock = clock
        self.step: str | None = None
        self._started = 0.0
        self._live: Any = None
        self._spinner: Any = None

    def start(self, step: str) -> None:
        """Show ``step`` as running from now."""
        self.stop()
        if not self.enabled:
            return
        from rich.live import Live
        from rich.spinner import Spinner

        self.step, self._started = step, self.clock()
        self._spinner = Spinner("dots", style="dim")
        self._live = Live(self, console=self.console, transient=True, refresh_per_second=4)
        self._live.start()

    def stop(self) -> None:
        """Remove the running line (the caller prints the finished step's line)."""
        if self._live is not None:
            self._live.stop()
        self._live = self._spinner = self.step = None

    def __rich__(self) -> Any:
        from rich.text import Text

        line = Text(" " + progress_line(self.step or "", self.clock() - self._started))
        if self._spinner is None:
            return line
        self._spinner.update(text=line)
        return self._spinner


def resume_command(loaded: Any, run_id: str, last: str | None, *, spec: Path | None = None
                   ) -> str:
    """The command that continues ``run_id`` after step ``last``: same spec, overrides, profile.

    Copied as printed, it loads the same spec (the spec hash matches), so it works.
    """
    from conveyor.steps import STEP_NAMES

    index = STEP_NAMES.index(last) + 1 if last in STEP_NAMES else 0
    start = STEP_NAMES[min(index, len(STEP_NAMES) - 1)]
    words = [_prog(), "run", str(spec or loaded.path), *loaded.overrides,
             *(["--profile", loaded.profile] if loaded.profile else []),
             "--from", start, "--run-id", run_id]
    return shlex.join(words)


def _prog() -> str:
    """How the user called conveyor: ``conveyor`` when that is on PATH, else the path typed."""
    typed = sys.argv[0] if sys.argv else ""
    if Path(typed).name != "conveyor":
        return "conveyor"
    found = shutil.which("conveyor")
    if found and Path(found).resolve() == Path(typed).resolve():
        return "conveyor"
    return typed


def _home_line(args: argparse.Namespace) -> str:
    """Where the embedded default writes, why there, and how to change it."""
    home = getattr(args, "home", None)
    if home is None:
        from conveyor.store.artifacts import locate_home

        home = locate_home()
    if home.reason == "CONVEYOR_HOME":
        return f"home {home.path} (from CONVEYOR_HOME)"
    return f"home {home.path} ({home.reason}; set CONVEYOR_HOME to use another)"


def _facts(step: str, record: Any) -> str:
    info = record.info
    if step == "ingest":
        return f"{info.get('rows')} rows × {info.get('columns')} columns"
    if step == "validate":
        warn = info.get("warnings", 0)
        return f"{info.get('features')} features" + (f", {warn} warnings" if warn else "")
    if step == "split":
        return f"train {info.get('train_rows')} / test {info.get('test_rows')}"
    if step == "train":
        return str(info.get("estimator", ""))
    if step == "evaluate":
        shown = [f"{k}={v:.3f}" for k, v in sorted(record.metrics.items())
                 if k in ("test_accuracy", "test_f1")]
        return " ".join(shown)
    if step == "gate":
        return "passed" if info.get("passed") else f"rejected: {info.get('reason', '')}"
    if step == "register":
        return f"{info.get('name')} v{info.get('version')}"
    if step == "export":
        return str(info.get("uri", ""))
    return ""


def _history_store(args: argparse.Namespace) -> tuple[Any, list[str] | None]:
    """The store and pipelines ``runs``/``show`` look in: the spec's, or the home's."""
    if getattr(args, "spec", None):
        from conveyor.runners import store_for
        from conveyor.spec import load_spec

        loaded = load_spec(args.spec, getattr(args, "overrides", ()), profile=args.profile)
        return store_for(loaded), [loaded.spec.name]
    from conveyor.store import Store, store_root

    return Store(store_root()), None


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


_STATUS_STYLE = {"ok": "green", "rejected": "red", "failed": "red", "interrupted": "yellow",
                 "partial": "cyan", "running": "blue"}


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.table import Table

    from conveyor.runners.history import list_runs

    if args.limit < 1:
        raise SpecError(f"--limit must be at least 1, got {args.limit}")
    store, pipelines = _history_store(args)
    runs = list_runs(store, pipelines, limit=args.limit)
    if args.json:
        _print_json(runs)
        return 0
    console = _console()
    if not console.is_terminal:  # a pipe or a file: the table as wide as its content
        from rich.console import Console

        console = Console(highlight=False, soft_wrap=True, width=1000)
    if not runs:
        console.print(f"no runs under {store.root}")
        console.print(_home_line(args), markup=False)
        return 0
    table = Table(show_header=True, header_style="bold")
    # Ids are what the user copies into --run-id and `conveyor show`: never cut them.
    table.add_column("pipeline", no_wrap=True, min_width=max(len(r["pipeline"]) for r in runs))
    table.add_column("run", no_wrap=True, min_width=max(len(r["run_id"]) for r in runs))
    table.add_column("created", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("why", overflow="fold", min_width=16)
    table.add_column("test_accuracy", justify="right")
    table.add_column("test_f1", justify="right")
    for run in runs:
        metrics = run.get("metrics", {})
        style = _STATUS_STYLE.get(run["status"], "")
        table.add_row(run["pipeline"], run["run_id"], _when(run["created_at"]),
                      f"[{style}]{run['status']}[/]" if style else run["status"],
                      escape(run["reason"]), _fmt(metrics.get("test_accuracy")),
                      _fmt(metrics.get("test_f1")))
    console.print(table)
    console.print(f"under {store.root}; `conveyor show RUN` for one run's details, --json for "
                  "all of it", markup=False)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rich.table import Table

    from conveyor.runners.history import describe_run, find_run
    from conveyor.store import check_key

    run_id = check_key(args.run_id, "run id")
    store, pipelines = _history_store(args)
    info = describe_run(store, find_run(store, run_id, pipelines), run_id)
    if args.json:
        _print_json(info)
        return 0
    console = _console()
    style = _STATUS_STYLE.get(info["status"], "")
    status = f"[{style}]{info['status']}[/]" if style else info["status"]
    console.print(f"run [bold]{info['run_id']}[/] of {info['pipeline']} · {status}"
                  + (f" · {escape(info['reason'])}" if info["reason"] else ""))
    facts = [("created", _when(info["created_at"])), ("finished", _when(info["finished_at"])),
             ("spec hash", (info["spec_hash"] or "-")[:12]),
             ("overrides", " ".join(info["overrides"]) or "-"),
             ("profile", info["profile"] or "-"), ("folder", info["uri"]),
             ("manifest", info["manifest"] or "- (incomplete)"),
             ("MLflow", f"run {info['mlflow_run_id']} at {info['tracking_uri']}"
              if info["mlflow_run_id"] else "-")]
    for name, value in facts:
        console.print(f"{name:<10} {value}", markup=False)
    steps = Table(title="steps", show_header=True, header_style="bold")
    for column in ("step", "status", "duration", "facts"):
        steps.add_column(column, overflow="fold")
    for step in info["steps"]:
        name = step["step"]
        record = _Record(step)
        note = (f"cached (run {step['cached_from']})" if step["status"] == "cached"
                else step["info"].get("reason", "") if step["status"] == "skipped" else "")
        steps.add_row(name, str(step["status"]), f"{float(step['duration'] or 0):.2f}s",
                      escape(note or _facts(name, record)))
    console.print(steps)
    if info["metrics"]:
        metrics = Table(title="metrics", show_header=True, header_style="bold")
        metrics.add_column("metric")
        metrics.add_column("value", justify="right")
        for name in sorted(info["metrics"]):
            metrics.add_row(name, _fmt(info["metrics"][name]))
        console.print(metrics)
    model, export = info["model"] or {}, info["export"] or {}
    lines = [("report", info["report"]),
             ("model", f"{model['model_uri']} (version {model.get('version')})"
              if model.get("model_uri") else None),
             ("export", export.get("model"))]
    for name, value in lines:
        console.print(f"{name:<10} {value or '-'}", markup=False)
    return 0


class _Record:
    """A step record read back as JSON, shaped as ``_facts`` expects."""

    def __init__(self, step: dict[str, Any]) -> None:
        self.info = step.get("info") or {}
        self.metrics = step.get("metrics") or {}


def _when(stamp: str | None) -> str:
    if not stamp:
        return "-"
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def cmd_gc(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from rich.table import Table

    from conveyor.runners import store_for
    from conveyor.runners.gc import collect, plan_gc
    from conveyor.spec import load_spec

    if args.keep < 1:
        raise SpecError(f"--keep must be at least 1, got {args.keep}")
    if args.min_age_hours < 0:
        raise SpecError(f"--min-age-hours must not be negative, got {args.min_age_hours}")
    loaded = load_spec(args.spec, args.overrides, profile=args.profile)
    store = store_for(loaded)
    plan = plan_gc(store, loaded.spec.name, keep=args.keep,
                   min_age=timedelta(hours=args.min_age_hours))
    console = _console()
    if not plan.runs:
        console.print(f"no runs of {loaded.spec.name} under {store.root}")
        return 0
    table = Table(show_header=True, header_style="bold")
    for column in ("run", "created", "status", "size", "action", "why"):
        table.add_column(column)
    for run in plan.runs:
        created = run.created_at.strftime("%Y-%m-%d %H:%M") if run.created_at else "-"
        table.add_row(run.run_id, created, run.status, _size(run.size),
                      "[red]delete[/]" if run.action == "delete" else "keep", run.reason)
    console.print(table)
    freed = sum(r.size or 0 for r in plan.delete)
    if not plan.delete:
        console.print("nothing to collect")
        return 0
    if not args.yes:
        console.print(f"would delete {len(plan.delete)} run(s), {_size(freed)}, and "
                      f"{len(plan.cache_entries)} cache entries; run again with --yes to do it")
        return 0
    deleted = collect(store, plan)
    console.print(f"deleted {deleted} run(s) of {loaded.spec.name}, {_size(freed)} freed; "
                  f"{len(plan.cache_entries)} cache entries removed")
    return 0


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return "-"  # pragma: no cover


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def cmd_ui(args: argparse.Namespace) -> int:
    from conveyor.store import home_dir
    from conveyor.tracking import default_tracking_uri

    uri = default_tracking_uri()
    if not uri.startswith("sqlite:"):
        _console().print(f"MLflow tracking is at {uri}: open its UI there")
        return 0
    if args.port < 1 or args.port > 65535:
        raise BadInputError(f"--port must be between 1 and 65535, got {args.port}")
    busy = _port_problem(args.host, args.port)
    if busy:
        raise BadInputError(f"cannot serve the MLflow UI on {args.host}:{args.port}: {busy}; "
                            "choose another with --port (or stop what is listening there)")
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
               "--default-artifact-root", (home_dir() / "mlartifacts").as_uri(),
               "--host", args.host, "--port", str(args.port), "--workers", "1"]
    _console().print(f"MLflow UI on http://{args.host}:{args.port} (Ctrl-C stops it)")
    os.execv(sys.executable, command)
    return 0  # pragma: no cover - execv does not return


def _port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (in use, unknown host), or ``None``.

    Checked before ``execv``: MLflow's server would otherwise print a traceback from its
    worker and, on some versions, keep running without serving anything.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"unknown host ({exc.strerror})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            probe.bind(address)
        except OSError as exc:
            return "the port is already in use" if exc.errno == errno.EADDRINUSE else (
                exc.strerror or str(exc))
    return None


# --------------------------------------------------------------------------- parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("conveyor-ml")
    except PackageNotFoundError:  # a source tree without installed metadata
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conveyor", description="One YAML spec to a tracked, validated, exported model.")
    parser.add_argument("--debug", action="store_true", help="logs and tracebacks")
    parser.add_argument("--version", action="version", version=f"conveyor {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def spec_args(p: argparse.ArgumentParser, *, overrides: bool = True) -> None:
        p.add_argument("spec", type=Path, help="the pipeline spec (YAML)")
        if overrides:
            p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                           help="dotted overrides, e.g. model.params.C=0.3")
        p.add_argument("--profile", help="overlay <spec>.<profile>.yaml on the spec")

    run = sub.add_parser("run", help="run a pipeline locally")
    spec_args(run)
    run.add_argument("--run-id", help="continue or resume this run")
    run.add_argument("--from", dest="start", metavar="STEP", help=f"re-run from STEP ({STEP_HELP})")
    run.add_argument("--until", metavar="STEP", help="stop after STEP")
    run.add_argument("--step", metavar="STEP", help="run only STEP (in the run of --run-id)")
    run.add_argument("--no-cache", action="store_true", help="do not reuse earlier results")
    run.add_argument("-q", "--quiet", action="store_true", help="only the summary")
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check a spec without running it")
    spec_args(validate)
    validate.set_defaults(func=cmd_validate)

    runs = sub.add_parser("runs", help="list past runs, newest first, and why any is incomplete")
    runs.add_argument("spec", type=Path, nargs="?", help="only this pipeline's runs")
    runs.add_argument("--profile")
    runs.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    runs.set_defaults(func=cmd_runs)

    show = sub.add_parser("show", help="one run: steps, metrics, report, model, export")
    show.add_argument("run_id", metavar="RUN", help="the run id (see conveyor runs)")
    show.add_argument("spec", type=Path, nargs="?",
                      help="the pipeline spec (needed when its store is not the home's)")
    show.add_argument("--profile")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(func=cmd_show)

    gc = sub.add_parser("gc", help="delete old run folders no kept run refers to")
    spec_args(gc)  # overrides too: store.root=s3://... names another store
    gc.add_argument("--keep", type=int, default=10, help="keep the newest N runs (default 10)")
    gc.add_argument("--min-age-hours", type=float, default=24.0,
                    help="keep runs younger than this (default 24)")
    gc.add_argument("--yes", action="store_true",
                    help="delete; without it the plan is only shown")
    gc.set_defaults(func=cmd_gc)

    ui = sub.add_parser("ui", help="the MLflow UI on the embedded store")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=cmd_ui)

    _register_extensions(sub)
    return parser


def _register_extensions(sub: Any) -> None:
    """Sub-commands that live with their package (airflow, serving, lifecycle)."""
    for module_name in ("conveyor.airflow.cli", "conveyor.lab.cli", "conveyor.serving.cli"):
        try:
            module = __import__(module_name, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name == module_name or (exc.name and module_name.startswith(exc.name)):
                continue
            raise
        module.register(sub)


def _stderr(text: str) -> None:
    sys.stderr.write(text + "\n")


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, taking ``KEY=VALUE`` overrides anywhere on the line (also after options).

    argparse fills a ``nargs="*"`` positional once, where it first stands, so
    ``run SPEC --until split model.params.C=0.3`` would leave the override unrecognised; and
    ``parse_intermixed_args`` does not support sub-commands. Left-overrides that are not
    options are appended to the overrides, in order.
    """
    args, extra = parser.parse_known_args(argv)
    if extra:
        if isinstance(getattr(args, "overrides", None), list) and not any(
                word.startswith("-") for word in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.parse_args(argv)  # argparse's own "unrecognized arguments" (exit 2)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    parser = build_parser()
    args = parse_args(parser, argv)
    _quiet_libraries(args.debug)
    with _pinned_home(args):
        return _dispatch(args)


@contextlib.contextmanager
def _pinned_home(args: argparse.Namespace) -> Iterator[None]:
    """Decide the home once, from the spec's folder or the working folder (ADR 0024).

    It is put in ``CONVEYOR_HOME`` for the command's duration, so every part of the command
    and every process it starts (Airflow, the MLflow UI) uses the same home.
    """
    from conveyor.store.artifacts import locate_home

    starts = []
    for name in ("spec", "target"):
        value = getattr(args, name, None)
        if value and Path(value).is_file():
            starts.append(Path(value).resolve().parent)
    args.home = locate_home(*starts)
    before = os.environ.get("CONVEYOR_HOME")
    os.environ["CONVEYOR_HOME"] = str(args.home.path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CONVEYOR_HOME", None)
        else:
            os.environ["CONVEYOR_HOME"] = before


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except BadInputError as exc:
        if args.debug:
            raise
        _stderr(f"error: {exc}")
        return exc.exit_code
    except ConveyorError as exc:
        if args.debug:
            raise
        _stderr(f"failed: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _stderr("interrupted")
        return 130
    except Exception as exc:  # a bug or a foreign failure: one line, the rest with --debug
        if args.debug:
            raise
        _stderr(f"failed: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
