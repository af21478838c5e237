"""``conveyor score``: a CSV or Parquet input scored into Parquet (docs/scoring.md).

Thin over :func:`conveyor.api.score`. Progress (rows done / total, rows/s) goes to stderr
every few seconds, and a summary at the end. Exit codes: 0 scored, 1 failure (a refused
model, an unreachable store or scheduler), 2 bad input (missing or unreadable input, a
missing column, an existing output).
"""

from __future__ import annotations

import argparse
from typing import Any

from conveyor.cli.output import stderr as _stderr

__all__ = ["cmd_score", "register"]


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s" if seconds > 0 else "- rows/s"


def progress_text(rows: int, total: int | None, seconds: float) -> str:
    """``scored 200,000 / 1,000,000 rows (20%) in 1.2s, 166,667 rows/s``."""
    done = f"{rows:,}" if total is None else (
        f"{rows:,} / {total:,} rows ({100 * rows / total:.0f}%)" if total else f"{rows:,}")
    if total is None:
        done += " rows"
    return f"scored {done} in {seconds:.1f}s, {_rate(rows, seconds)}"


def cmd_score(args: argparse.Namespace) -> int:
    from conveyor.api import score

    def on_progress(rows: int, total: int | None, seconds: float) -> None:
        if not args.quiet:
            _stderr(progress_text(rows, total, seconds))

    result = score(args.model, args.input, args.output, id_column=args.id_column,
                   chunk_rows=args.chunk_rows, engine=args.engine, scheduler=args.scheduler,
                   workers=args.workers, overwrite=args.overwrite,
                   tracking_uri=args.tracking_uri, on_progress=on_progress,
                   prediction_column=args.prediction_column,
                   probabilities=not args.no_proba)
    version = f" (version {result.model_version})" if result.model_version else ""
    _stderr(f"scored {result.rows:,} rows in {result.seconds:.2f}s, "
            f"{_rate(result.rows, result.seconds)}, engine {result.engine}, "
            f"model {result.model}{version}")
    _stderr(f"output {result.output_uri}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
        if value < 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer") from None
    return value


def register(sub: Any) -> None:
    """Add the ``score`` sub-command."""
    parser = sub.add_parser(
        "score", help="score a CSV or Parquet input with a model into Parquet",
        description="Score a CSV or Parquet input (a file, a glob or a folder; a path, "
                    "file:// or s3:// URI) with a model whose files are checked against "
                    "their recorded sha256 first. The output is Parquet with the id column, "
                    "prediction and proba_<class>, published whole or not at all.")
    parser.add_argument("model", help="models:/NAME@ALIAS, models:/NAME/VERSION, or an export "
                                      "folder (e.g. .conveyor/exports/breast_cancer/latest)")
    parser.add_argument("--input", required=True, metavar="URI",
                        help="CSV or Parquet: a file, a glob (data/*.parquet) or a folder")
    parser.add_argument("--output", required=True, metavar="URI",
                        help="the Parquet output: a file (local engine) or a folder of parts "
                             "(dask engine); a .csv file is written as CSV (local engine); "
                             "refused if it exists unless --overwrite")
    parser.add_argument("--prediction-column", default="prediction", metavar="NAME",
                        help="the prediction's column name (default prediction; e.g. Survived "
                             "for a Kaggle submission)")
    parser.add_argument("--no-proba", action="store_true",
                        help="leave out the proba_<class> columns")
    parser.add_argument("--id-column", metavar="COL",
                        help="copied beside the predictions (default: 'id' if present)")
    parser.add_argument("--chunk-rows", type=_positive, metavar="N",
                        help="rows per chunk (default 100000): bounds memory on the local "
                             "engine, sizes CSV partitions on dask")
    parser.add_argument("--engine", choices=("local", "dask"), default="local",
                        help="local: chunked in this process; dask: on a dask.distributed "
                             "cluster (default local)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="a Dask scheduler (tcp://host:8786); default: a LocalCluster "
                             "of in-process workers (threads)")
    parser.add_argument("--workers", type=_positive, default=2, metavar="N",
                        help="workers of the LocalCluster, one thread each (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI for models:/ (default: "
                                               "the embedded SQLite store)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=cmd_score)
