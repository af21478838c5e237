"""``conveyor runs``, ``conveyor show`` and ``conveyor gc``: past runs in a Store."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor.cli.facts import _facts
from conveyor.cli.output import STATUS_STYLE as _STATUS_STYLE
from conveyor.cli.output import console as _console
from conveyor.cli.output import fmt as _fmt
from conveyor.cli.output import home_line as _home_line
from conveyor.cli.output import print_json as _print_json
from conveyor.cli.output import size as _size
from conveyor.cli.output import when as _when
from conveyor.errors import SpecError

__all__ = ["cmd_gc", "cmd_runs", "cmd_show", "register"]


def _history_store(args: argparse.Namespace) -> tuple[Any, list[str] | None]:
    """The store and pipelines ``runs``/``show`` look in: the spec's, or the home's."""
    if getattr(args, "spec", None):
        import conveyor
        from conveyor.runners import store_for

        loaded = conveyor.load_spec(args.spec, getattr(args, "overrides", ()),
                                    profile=args.profile)
        return store_for(loaded), [loaded.spec.name]
    from conveyor.store import Store, store_root

    return Store(store_root()), None



def cmd_runs(args: argparse.Namespace) -> int:
    from rich.markup import escape
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
        console = _console(width=1000)
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
    from rich.markup import escape
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


def cmd_gc(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from rich.table import Table

    import conveyor
    from conveyor.runners import store_for
    from conveyor.runners.gc import collect, plan_gc

    if args.keep < 1:
        raise SpecError(f"--keep must be at least 1, got {args.keep}")
    if args.min_age_hours < 0:
        raise SpecError(f"--min-age-hours must not be negative, got {args.min_age_hours}")
    loaded = conveyor.load_spec(args.spec, args.overrides, profile=args.profile)
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


def register(sub: Any, spec_args: Callable[..., None]) -> None:
    """Add ``runs``, ``show`` and ``gc`` to the ``conveyor`` command's sub-parsers."""
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
