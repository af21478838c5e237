"""``conveyor ui``: the MLflow UI on the embedded store."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from typing import Any

from conveyor.cli.output import console as _console
from conveyor.errors import BadInputError

__all__ = ["cmd_ui", "register"]


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


def register(sub: Any) -> None:
    """Add ``ui`` to the ``conveyor`` command's sub-parsers."""
    ui = sub.add_parser("ui", help="the MLflow UI on the embedded store")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=cmd_ui)
