"""``conveyor schema accept``: make the data as it is now the pipeline's saved schema.

A pipeline's first completed run saves its table's schema; later runs compare their data
with it (``validate.drift``). When the data changed on purpose, this command accepts the new
schema (docs/validation.md, ADR 0046). Exit 0 saved, 2 bad spec or data.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import conveyor
from conveyor.cli.output import console as _console

__all__ = ["cmd_accept", "register"]


def cmd_accept(args: argparse.Namespace) -> int:
    uri, changes = conveyor.accept_schema(args.spec, args.overrides, profile=args.profile)
    console = _console()
    for change in changes:
        console.print(f"  changed: {change}", markup=False, soft_wrap=True)
    console.print(f"saved schema: {uri}" + ("" if changes else " (no differences)"),
                  markup=False, soft_wrap=True)
    return 0


def register(sub: Any, spec_args: Callable[..., None]) -> None:
    """Add ``schema accept`` to the ``conveyor`` command's sub-parsers."""
    schema = sub.add_parser("schema", help="the pipeline's saved data schema")
    actions = schema.add_subparsers(dest="action", required=True, metavar="ACTION")
    accept = actions.add_parser(
        "accept", help="save the schema of the spec's data as it is now (later runs are "
                       "compared with it)")
    spec_args(accept)
    accept.set_defaults(func=cmd_accept)
