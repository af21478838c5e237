"""``conveyor synth GENERATOR --out DIR``: seeded synthetic data sets in DIR/train/ and DIR/test/.

Thin over :func:`conveyor.api.synth`. Exit codes: 0 written, 2 bad input (an unknown
generator, a parameter out of range).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from conveyor.cli.output import stderr as _stderr

__all__ = ["cmd_synth", "register"]


def cmd_synth(args: argparse.Namespace) -> int:
    from conveyor.api import synth

    params: dict[str, Any] = {k: getattr(args, k) for k in (
        "days", "start", "noise", "anomaly_rate", "spike_size", "drift_size", "drift_days",
        "stuck_days") if getattr(args, k) is not None}
    if args.shapes:
        params["shapes"] = [s.strip() for s in args.shapes.split(",") if s.strip()]
    result = synth(args.generator, args.out, datasets=args.datasets,
                   test_datasets=args.test_datasets, seed=args.seed, **params)
    _stderr(f"wrote {len(result.train)} {args.generator} data set(s) to {args.out / 'train'} "
            f"and {len(result.test)} to {args.out / 'test'}")
    return 0


def register(sub: Any) -> None:
    """Add the ``synth`` sub-command."""
    parser = sub.add_parser(
        "synth", help="write seeded synthetic data sets into DIR/train/ and DIR/test/",
        description="Write seeded synthetic data sets, one CSV file each, into DIR/train/ "
                    "and DIR/test/ (other seeds: no data set is in both). temperature: "
                    "daily readings of a station with seasonality, noise and injected "
                    "anomalies (spike, drift, stuck, dropout), features and is_anomaly.")
    parser.add_argument("generator", choices=("temperature",))
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    parser.add_argument("--datasets", type=int, default=1, metavar="N",
                        help="data sets in DIR/train/ (default 1)")
    parser.add_argument("--test-datasets", type=int, metavar="N",
                        help="data sets in DIR/test/ (default: --datasets)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=int, help="readings per data set (default 730)")
    parser.add_argument("--start", help="the first day, YYYY-MM-DD (default 2024-01-01)")
    parser.add_argument("--noise", type=float, help="spread of the weather in °C (1.5)")
    parser.add_argument("--anomaly-rate", type=float,
                        help="expected share of anomalous days (0.05)")
    parser.add_argument("--shapes", help="comma-separated: spike,drift,stuck,dropout (all)")
    parser.add_argument("--spike-size", type=float, help="°C (8)")
    parser.add_argument("--drift-size", type=float, help="°C (8)")
    parser.add_argument("--drift-days", type=int, help="days (6)")
    parser.add_argument("--stuck-days", type=int, help="days (5)")
    parser.set_defaults(func=cmd_synth)
