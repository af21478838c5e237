"""``conveyor collect``: one interval of a collection spec into its dataset (docs/collect.md).

Exit codes: 0 collected, 2 bad input (spec, interval, a refused request such as an exhausted
quota), 1 a failure worth a retry (the API stayed unavailable).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from conveyor.cli.output import write_stdout

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``collect`` sub-command."""
    p = sub.add_parser(
        "collect", help="collect one interval from an HTTP API into a dataset",
        description="Fetch every page of the collection spec's API, keep the records no "
        "other interval holds (by the record key) and replace this interval's part of the "
        "dataset with them. Re-running an interval replaces it, never duplicates.")
    p.add_argument("spec", type=Path, help="the collection spec (YAML with collect:)")
    p.add_argument("--interval", help="START/END in ISO 8601, e.g. "
                   "2026-11-30T10:00Z/2026-11-30T11:00Z (default: the last whole hour)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_collect)


def _collect(args: argparse.Namespace) -> int:
    from conveyor.api import collect
    from conveyor.cli.output import print_json

    result = collect(args.spec, args.interval, home=args.home.path)
    if args.json:
        print_json(result.to_dict())
        return 0
    skipped = ", ".join(f"{next(iter(s.values()))} ({s['reason']})" for s in result.skipped)
    lines = [
        f"{result.name} [{result.start.isoformat()}, {result.end.isoformat()}): "
        f"{result.fetched} fetched, {result.new} new"
        + (" (replaced the interval's earlier part)" if result.replaced else ""),
        f"  pages {result.pages}, requests {result.requests}, retries {result.retries}",
    ]
    if skipped:
        lines.append(f"  skipped {skipped}")
    lines.append(f"  part    {result.part_uri}")
    lines.append(f"  dataset {result.dataset_rows} rows")
    write_stdout("\n".join(lines) + "\n")
    return 0
