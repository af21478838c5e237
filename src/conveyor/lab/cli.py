"""``conveyor promote`` and ``conveyor rollback``: the registry's lifecycle commands.

Loaded by :func:`conveyor.cli._register_extensions`. Like the main CLI, this module owns its
terminal output; the work is done by :mod:`conveyor.tracking.promotion`. The commands live
with the lab because ``--spec`` reads a lab spec (its ``promotion:`` rules and hold-out set)
as well as a pipeline spec, and the lab is the lowest layer that knows both specs and the
registry (``conveyor.tracking`` may not import them).

Exit codes: 0 done (promoted, kept, rolled back or nothing to roll back), 1 failure (an
aborted promotion: production moved meanwhile, run it again), 2 bad input.
"""

from __future__ import annotations

import argparse
from typing import Any

from conveyor.errors import BadInputError

__all__ = ["register"]


def _console() -> Any:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=160)
    return console


def _minimum(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not METRIC=VALUE (e.g. f1=0.9)") from None


_DEFAULTS = {"metric": "f1", "min_delta": 0.0, "minimums": {}, "check_rows": 10}


def _target(args: argparse.Namespace) -> Any:
    """The spec's registry target (``--spec``), checked against a MODEL also given."""
    if not args.spec:
        if not args.model:
            raise BadInputError("name the registered model (conveyor promote MODEL) or give "
                                "its spec (--spec examples/iris_lab/lab.yaml)")
        return None
    from conveyor.lab.promote import registry_target

    target = registry_target(args.spec)
    if args.model and args.model != target.model:
        raise BadInputError(f"{args.spec} manages the registered model {target.model!r}, not "
                            f"{args.model!r}; drop MODEL or --spec")
    return target


def _tracker(args: argparse.Namespace, target: Any = None) -> Any:
    from conveyor.tracking.tracker import Tracker, default_tracking_uri

    uri = args.tracking_uri or (target.tracking_uri if target else None)
    return Tracker(uri or default_tracking_uri(),
                   target.experiment if target else "conveyor-registry")


def _store(args: argparse.Namespace, target: Any = None) -> Any:
    if not args.store:
        return target.store if target else None
    from conveyor.store import Store, to_uri

    return Store(to_uri(args.store))


def _rules(args: argparse.Namespace, target: Any) -> tuple[dict[str, Any], str]:
    """The promotion rules: a flag given on the command line, else the spec's, else default."""
    spec_rules = target.rules if target else {}
    given = {"metric": args.metric, "min_delta": args.min_delta,
             "minimums": dict(args.minimum) if args.minimum else None,
             "check_rows": args.check_rows}
    rules = {k: given[k] if given[k] is not None else spec_rules.get(k, _DEFAULTS[k])
             for k in _DEFAULTS}
    from_spec = [k for k in spec_rules if given.get(k) is None]
    source = f"{', '.join(from_spec)} from {args.spec}" if from_spec else ""
    return rules, source


def cmd_promote(args: argparse.Namespace) -> int:
    from conveyor.promotion import load_holdout, promote

    target = _target(args)
    rules, source = _rules(args, target)
    if rules["min_delta"] < 0:
        raise BadInputError(f"--min-delta must be >= 0, got {rules['min_delta']}")
    holdout = None
    if args.holdout:
        uri, _, sha = args.holdout.partition("#")
        if not sha:
            raise BadInputError("--holdout is URI#SHA256 (the table's content hash)")
        holdout = load_holdout(uri, sha, target=args.target)
    elif target is not None and target.lab is not None:
        from conveyor.lab.promote import lab_holdout

        holdout = lab_holdout(target.lab)
    if source:
        _console().print(f"rules      {source}")
    decision = promote(
        _tracker(args, target), target.model if target else args.model, holdout=holdout,
        store=_store(args, target), metric=rules["metric"], min_delta=rules["min_delta"],
        minimums=rules["minimums"], dry_run=args.dry_run, include_all=args.all,
        check_rows=rules["check_rows"],
    )
    _print_decision(decision)
    return 1 if decision.action == "aborted" else 0


def _print_decision(decision: Any) -> None:
    from rich.table import Table

    console = _console()
    metric = decision.metric
    table = Table(title=f"{decision.model}: candidates on the hold-out set", header_style="bold")
    for column in ("version", "role", "config", "status", metric, "accuracy", "note"):
        table.add_column(column, justify="right" if column in (metric, "accuracy") else "left")
    for c in decision.candidates:
        mark = " ←" if c.version == decision.chosen else ""
        table.add_row(f"v{c.version}{mark}", c.role, c.config or "-", c.status,
                      _fmt(c.scores.get(metric)), _fmt(c.scores.get("accuracy")), c.reason)
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


def _fmt(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "-"


def cmd_rollback(args: argparse.Namespace) -> int:
    from conveyor.promotion import rollback

    target = _target(args)
    result = rollback(_tracker(args, target), target.model if target else args.model,
                      store=_store(args, target))
    console = _console()
    if result.action == "rolled_back":
        console.print(f"[bold green]rolled back[/]: {result.reason}")
    else:
        console.print(f"[yellow]nothing done[/]: {result.reason}")
    if result.record_uri:
        console.print(f"record     {result.record_uri}")
    return 0


def register(sub: Any) -> None:
    """Add ``promote`` and ``rollback`` to the ``conveyor`` command's sub-parsers."""
    from conveyor.promotion import METRICS

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
    promote.add_argument("--metric", choices=METRICS,
                         help="compared metric, macro-averaged (default: the spec's, or f1)")
    promote.add_argument("--min-delta", type=float, metavar="D",
                         help="the best must beat production by at least D (default: the "
                              "spec's, or 0)")
    promote.add_argument("--minimum", type=_minimum, action="append", metavar="METRIC=VALUE",
                         help="absolute floor, repeatable (e.g. --minimum f1=0.9)")
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
