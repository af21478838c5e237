"""``conveyor promote`` and ``conveyor rollback``: the registry's lifecycle commands.

Thin over :func:`conveyor.promote` and :func:`conveyor.rollback`, which read ``--spec`` (a
lab spec's ``promotion:`` rules and hold-out set, or a pipeline spec's ``registry.name``).

Exit codes: 0 done (promoted, kept, rolled back or nothing to roll back), 1 failure (an
aborted promotion: production moved meanwhile, run it again), 2 bad input.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import conveyor
from conveyor.cli.output import console as _console
from conveyor.cli.output import fmt as _fmt

__all__ = ["cmd_promote", "cmd_rollback", "register"]


def _minimum(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not METRIC=VALUE (e.g. f1=0.9)") from None


def cmd_promote(args: argparse.Namespace) -> int:
    from conveyor.api import is_lab_spec

    given = {"metric": args.metric, "min_delta": args.min_delta,
             "minimums": dict(args.minimum) if args.minimum else None,
             "check_rows": args.check_rows}
    if args.spec and is_lab_spec(args.spec):
        from_spec = [name for name, value in given.items() if value is None]
        if from_spec:
            _console().print(f"rules      {', '.join(from_spec)} from {args.spec}")
    decision = conveyor.promote(
        args.model, spec=args.spec, holdout=args.holdout, holdout_target=args.target,
        dry_run=args.dry_run, include_all=args.all, tracking_uri=args.tracking_uri,
        store=args.store, **given)
    _print_decision(decision)
    return 1 if decision.action == "aborted" else 0


def _print_decision(decision: Any) -> None:
    from rich.table import Table

    console = _console()
    metric = decision.metric
    # the second score shown: accuracy for a classifier, R² for a regressor
    second = "r2" if metric in ("rmse", "mae", "r2", "mape") else "accuracy"
    second = "rmse" if metric == "r2" else second
    table = Table(title=f"{decision.model}: candidates on the hold-out set", header_style="bold")
    for column in ("version", "role", "config", "status", metric, second, "note"):
        table.add_column(column, justify="right" if column in (metric, second) else "left")
    for c in decision.candidates:
        mark = " ←" if c.version == decision.chosen else ""
        table.add_row(f"v{c.version}{mark}", c.role, c.config or "-", c.status,
                      _fmt(c.scores.get(metric)), _fmt(c.scores.get(second)), c.reason)
    if decision.candidates:
        console.print(table)
    colour = {"promoted": "green", "promote": "green", "aborted": "red"}.get(decision.action,
                                                                            "yellow")
    label = f"{decision.action} (dry run)" if decision.dry_run else decision.action
    console.print(f"[bold {colour}]{label}[/]: {decision.reason}")
    before = f"v{decision.production_before}" if decision.production_before else "none"
    after = f"v{decision.production_after}" if decision.production_after else "none"
    if decision.action == "promoted":
        console.print(f"production {before} → {after}; previous_production {before}")
    elif not decision.dry_run:
        console.print(f"production {after}")
    if decision.record_uri:
        console.print(f"decision   {decision.record_uri}")


def cmd_rollback(args: argparse.Namespace) -> int:
    result = conveyor.rollback(args.model, spec=args.spec, tracking_uri=args.tracking_uri,
                               store=args.store)
    console = _console()
    if result.action == "rolled_back":
        console.print(f"[bold green]rolled back[/]: {result.reason}")
    else:
        console.print(f"[yellow]nothing done[/]: {result.reason}")
    if result.record_uri:
        console.print(f"record     {result.record_uri}")
    return 0


class _Metrics:
    """``conveyor.promotion.METRICS``, imported only when argparse checks or lists them:
    importing the promotion package at parse time cost every ``conveyor`` command ~0.2-0.5 s."""

    def _names(self) -> tuple[str, ...]:
        from conveyor.promotion import METRICS

        return METRICS

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def register(sub: Any) -> None:
    """Add ``promote`` and ``rollback`` to the ``conveyor`` command's sub-parsers."""
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", nargs="?",
                            help="the registered model's name (e.g. iris_classifier); "
                                 "optional with --spec")
        parser.add_argument("--spec", metavar="YAML",
                            help="a lab spec (its model, registry, hold-out set and "
                                 "promotion: rules) or a pipeline spec (registry.name)")
        parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: the embedded "
                                                   "SQLite store, or MLFLOW_TRACKING_URI)")
        parser.add_argument("--store", metavar="URI",
                            help="where decision records go (default CONVEYOR_HOME/artifacts)")

    promote = sub.add_parser("promote", help="score candidate versions, move production to "
                                             "the best one")
    common(promote)
    promote.add_argument("--metric", choices=_Metrics(), metavar="METRIC",
                         help="compared metric (a classifier's macro-averaged): %(choices)s "
                              "(default: the spec's, or f1; rmse for a regressor)")
    promote.add_argument("--min-delta", type=float, metavar="D",
                         help="the best must beat production by at least D (default: the "
                              "spec's, or 0)")
    promote.add_argument("--minimum", type=_minimum, action="append", metavar="METRIC=VALUE",
                         help="worst acceptable value, repeatable: a floor (--minimum f1=0.9), "
                              "a ceiling for rmse, mae, mape (--minimum rmse=60)")
    promote.add_argument("--dry-run", action="store_true", help="decide, change nothing")
    promote.add_argument("--all", action="store_true",
                         help="consider every version, not only those new since the last "
                              "promotion")
    promote.add_argument("--holdout", metavar="URI#SHA256",
                         help="the hold-out table (default: the one the versions name)")
    promote.add_argument("--target", default="target", help="the hold-out's label column")
    promote.add_argument("--check-rows", type=int,
                         help="rows scored after loading the winner from the registry "
                              "(default: the spec's, or 10)")
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", help="move production back to previous_production")
    common(rollback)
    rollback.set_defaults(func=cmd_rollback)
