"""``conveyor serve``: serve a model over HTTP (docs/serving.md).

Thin over :func:`conveyor.api.serve`. Exit codes: 0 after a clean shutdown (SIGTERM, Ctrl-C),
2 bad input (a malformed URI, no such model, an unset token variable) before the port is
bound, 1 a failure (the port is taken).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["cmd_serve", "register"]


def cmd_serve(args: argparse.Namespace) -> int:
    from conveyor.api import serve
    from conveyor.cli.output import stderr

    def checked(identity: Any) -> None:
        version = f" version {identity.version}" if identity.version else ""
        auth = f", bearer token from ${args.token_env}" if args.token_env else ""
        stderr(f"serving {identity.name}{version} ({args.model}) on "
               f"http://{args.host}:{args.port} with {args.workers} worker(s){auth}")

    return serve(args.model, host=args.host, port=args.port, workers=args.workers,
                 token_env=args.token_env, poll_seconds=args.poll_seconds, store=args.store,
                 max_rows=args.max_rows, max_body_bytes=args.max_body_bytes,
                 sample_rate=args.sample_rate, tracking_uri=args.tracking_uri,
                 on_checked=checked)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command."""
    p = sub.add_parser("serve", help="serve a model over HTTP (MLflow scoring protocol, "
                                     "/predict, /metrics, a status page)")
    p.add_argument("model", metavar="MODEL_URI",
                   help="models:/NAME@ALIAS, models:/NAME/N, or an export folder "
                        "(e.g. .conveyor/exports/breast_cancer/latest)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                                                       "127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    p.add_argument("--token-env", metavar="VAR",
                   help="require 'Authorization: Bearer <token>' on /invocations and /predict, "
                        "the token read from environment variable VAR")
    p.add_argument("--poll-seconds", type=float, default=10.0, metavar="S",
                   help="how often the alias is checked for a move (default 10)")
    p.add_argument("--store", metavar="URI",
                   help="Store root for request samples and drift verdicts (default "
                        "CONVEYOR_HOME/artifacts)")
    p.add_argument("--max-rows", type=int, default=10_000, metavar="N",
                   help="rows per request (default 10000)")
    p.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024, metavar="N",
                   help="bytes per request body (default 8 MiB)")
    p.add_argument("--sample-rate", type=float, default=0.1, metavar="R",
                   help="share of requests sampled to the Store for monitoring (default 0.1)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: the embedded SQLite "
                                          "store, or MLFLOW_TRACKING_URI)")
    p.set_defaults(func=cmd_serve)
