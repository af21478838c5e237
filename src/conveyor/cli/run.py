"""``conveyor run`` and ``conveyor validate``: a pipeline through :func:`conveyor.run`.

Exit codes: 0 success, 1 failure, 2 bad input (spec, data, usage), 3 the gate rejected the
model (the run completed; nothing was registered or exported).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import conveyor
from conveyor.cli.facts import _facts
from conveyor.cli.output import console as _console
from conveyor.cli.output import home_line

__all__ = ["StepProgress", "cmd_run", "cmd_validate", "progress_line", "register",
           "resume_command"]

STEP_HELP = "ingest, validate, split, train, evaluate, gate, register, export"


def cmd_validate(args: argparse.Namespace) -> int:
    from conveyor.lab.spec import Lab
    from conveyor.steps import pipeline_steps

    checked = conveyor.validate(args.spec, args.overrides, profile=args.profile)
    console = _console()
    if isinstance(checked, Lab):
        spec = checked.spec
        console.print(f"[green]✓[/] {args.spec}: lab [bold]{spec.name}[/] is valid",
                      soft_wrap=True)
        minimums = ", ".join(f"{k} >= {v}" for k, v in spec.promotion.minimums.items()) or "none"
        console.print(f"  watches: {checked.inbox_uri} · data: {spec.data.source}:"
                      f"{spec.data.name} · registers: {spec.model_name}", markup=False)
        console.print(f"  promotion: best {spec.promotion.metric} by at least "
                      f"{spec.promotion.min_delta}; minimums: {minimums}", markup=False)
        return 0
    from conveyor.sources.collect import Collection

    if isinstance(checked, Collection):  # issue 12 (docs/collect.md)
        spec = checked.spec
        console.print(f"[green]✓[/] {args.spec}: collection [bold]{spec.name}[/] is valid",
                      soft_wrap=True)
        values = len(spec.data.fan_out.values) if spec.data.fan_out else 1
        console.print(f"  from: {spec.data.url} ({values} series) · key: {spec.key} · "
                      f"schedule: {spec.schedule} · into: {checked.dataset_uri}", markup=False)
        return 0
    spec = checked.spec
    console.print(f"[green]✓[/] {checked.path}: pipeline [bold]{spec.name}[/] is valid")
    model = spec.model.estimator if spec.model else " | ".join(c.name for c in spec.candidates())
    console.print(f"  data: {spec.data.source} · target: {spec.schema_.target} · model: "
                  f"{model} · steps: "
                  + " → ".join(s.name for s in pipeline_steps(spec)))
    from conveyor.modeling.tasks import describe_task

    console.print(f"  task: {describe_task(spec)}", markup=False)
    console.print(f"  spec hash: {checked.spec_hash[:12]}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from rich.table import Table

    console = _console()
    loaded = conveyor.load_spec(args.spec, args.overrides, profile=args.profile)
    started = time.perf_counter()

    progress = StepProgress(console, enabled=not args.quiet and console.is_terminal)

    def on_event(kind: str, step: str, record: Any) -> None:
        if kind == "start":
            progress.start(step)
            return
        progress.stop()
        mark = {"ok": "[green]✓[/]", "cached": "[cyan]✓[/]", "skipped": "[yellow]–[/]"}.get(
            record.status, "?")
        if record.status == "ok" and _rejected(step, record):
            mark = "[red]✗[/]"  # the gate ran fine and said no: not a green tick
        note = {"cached": f"cached (run {record.cached_from})",
                "skipped": record.info.get("reason", "")}.get(record.status, "")
        facts = _facts(step, record)
        if not args.quiet:
            console.print(f"  {mark} {step:<9} {record.duration:6.2f}s  {note or facts}")

    if not args.quiet:
        console.print(f"[bold]{loaded.spec.name}[/] · {loaded.path}"
                      + (f" · profile {loaded.profile}" if loaded.profile else ""))
        console.print(home_line(args), markup=False)
    try:
        result = conveyor.run(loaded, run_id=args.run_id, start=args.start, until=args.until,
                              only=args.step, use_cache=not args.no_cache, on_event=on_event)
    finally:
        progress.stop()
    elapsed = time.perf_counter() - started
    if result.status == "partial":
        last = list(result.steps)[-1] if result.steps else None
        console.print(f"run [bold]{result.run_id}[/] stopped as asked after "
                      f"{last or 'no step'} ({elapsed:.1f}s); continue with:")
        console.print(f"  {resume_command(loaded, result.run_id, last, spec=args.spec)}",
                      markup=False)
        return 0
    manifest = result.manifest or {}
    metrics = result.metrics
    table = Table(title="test metrics", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in sorted(k for k in metrics if k.startswith("test_")):
        table.add_row(name, f"{metrics[name]:.4f}")
    console.print(table)
    steps = manifest.get("steps", {})
    registered = steps.get("register", {}).get("info", {})
    exported = steps.get("export", {}).get("info", {})
    console.print(f"run        {result.run_id}  ({elapsed:.1f}s, MLflow run "
                  f"{result.mlflow_run_id})")
    console.print(f"manifest   {result.manifest_uri or '-'}")
    if result.report_uri:
        console.print(f"report     {result.report_uri}")
    if result.status == "rejected":
        console.print(f"[red]gate rejected the model[/]: {result.reason}")
        if not result.published:
            console.print("nothing was registered or exported")
            return result.exit_code
        console.print("[yellow]published anyway[/] (registry.allow_unvalidated is true)")
    if result.model_uri:
        console.print(f"registered {result.model_uri}"
                      + ("" if registered.get("created", True) else " (already registered)"))
        if result.aliases:
            console.print(f"aliases    {', '.join(result.aliases)}")
    if result.export_uri:
        console.print(f"model      {result.export_uri}")
        console.print(f"metrics    {exported['metrics']}")
    return 0


def _rejected(step: str, record: Any) -> bool:
    """Whether this step's record decides the run is ``rejected`` (the gate said no)."""
    from conveyor.steps import step_class

    found = step_class(step)
    return found is not None and found().outcome(record.info) == "rejected"


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


def register(sub: Any, spec_args: Callable[..., None]) -> None:
    """Add ``run`` and ``validate`` to the ``conveyor`` command's sub-parsers."""
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
