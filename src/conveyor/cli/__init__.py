"""The ``conveyor`` command: a thin layer over the public API (:mod:`conveyor`).

This package owns terminal output; each sub-command lives in a module of its own
(``run``, ``runs``, ``ui``, ``registry``, ``lab``, ``serve``, ``score``, ``monitor``, ``synth``;
``airflow`` in :mod:`conveyor.airflow.cli`, which starts Airflow in subprocesses and
imports none of it here). They are imported statically, so the import contracts
(pyproject.toml) see them.

Exit codes: 0 success, 1 failure, 2 bad input (spec, data, usage), 3 the gate rejected the
model (the run completed; nothing was registered or exported) or, for ``monitor``, drift
passed the thresholds (docs/monitoring.md).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from conveyor.airflow import cli as airflow_cli
from conveyor.cli import lab, monitor, registry, runs, score, serve, ui
from conveyor.cli import run as run_cli
from conveyor.cli import schema as schema_cli  # issue 12
from conveyor.cli import synth as synth_cli  # issue 12
from conveyor.cli.output import stderr as _stderr
from conveyor.cli.run import StepProgress, progress_line, resume_command
from conveyor.errors import BadInputError, ConveyorError

__all__ = ["StepProgress", "build_parser", "main", "parse_args", "progress_line",
           "resume_command"]

log = logging.getLogger("conveyor")


def _quiet_libraries(debug: bool) -> None:
    # MLflow 3 reports usage to its maintainers unless told not to; a user who wants that
    # sets MLFLOW_DISABLE_TELEMETRY=false. Read when mlflow is first imported: set it first.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if not debug:  # MLflow configures its own loggers on import; this is the knob it reads
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not debug:
        for name in ("mlflow", "alembic", "matplotlib", "urllib3", "botocore", "s3fs"):
            logging.getLogger(name).setLevel(logging.ERROR)
        logging.getLogger("conveyor").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", module=r"mlflow(\..*)?$")
        warnings.filterwarnings("ignore", category=FutureWarning)


def build_parser() -> argparse.ArgumentParser:
    """The ``conveyor`` argument parser, every sub-command included."""
    from conveyor import __version__

    parser = argparse.ArgumentParser(
        prog="conveyor", description="One YAML spec to a tracked, validated, exported model.")
    parser.add_argument("--debug", action="store_true", help="logs and tracebacks")
    parser.add_argument("--version", action="version", version=f"conveyor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def spec_args(p: argparse.ArgumentParser, *, overrides: bool = True) -> None:
        p.add_argument("spec", type=Path, help="the pipeline spec (YAML)")
        if overrides:
            p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                           help="dotted overrides, e.g. model.params.C=0.3")
        p.add_argument("--profile", help="overlay <spec>.<profile>.yaml on the spec")

    run_cli.register(sub, spec_args)
    runs.register(sub, spec_args)
    ui.register(sub)
    airflow_cli.register(sub)
    registry.register(sub)
    lab.register(sub)
    serve.register(sub)
    score.register(sub)
    monitor.register(sub)
    synth_cli.register(sub)
    schema_cli.register(sub, spec_args)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, taking ``KEY=VALUE`` overrides anywhere on the line (also after options).

    argparse fills a ``nargs="*"`` positional once, where it first stands, so
    ``run SPEC --until split model.params.C=0.3`` would leave the override unrecognised; and
    ``parse_intermixed_args`` does not support sub-commands. Left-overrides that are not
    options are appended to the overrides, in order.
    """
    args, extra = parser.parse_known_args(argv)
    if extra:
        if isinstance(getattr(args, "overrides", None), list) and not any(
                word.startswith("-") for word in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.parse_args(argv)  # argparse's own "unrecognized arguments" (exit 2)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    parser = build_parser()
    args = parse_args(parser, argv)
    _quiet_libraries(args.debug)
    with _pinned_home(args):
        return _dispatch(args)


@contextlib.contextmanager
def _pinned_home(args: argparse.Namespace) -> Iterator[None]:
    """Decide the home once, from the spec's folder or the working folder (ADR 0024).

    It is put in ``CONVEYOR_HOME`` for the command's duration, so every part of the command
    and every process it starts (Airflow, the MLflow UI) uses the same home.
    """
    from conveyor.store.artifacts import locate_home

    starts = []
    for name in ("spec", "target"):
        value = getattr(args, name, None)
        if value and Path(value).is_file():
            starts.append(Path(value).resolve().parent)
    args.home = locate_home(*starts)
    before = os.environ.get("CONVEYOR_HOME")
    os.environ["CONVEYOR_HOME"] = str(args.home.path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CONVEYOR_HOME", None)
        else:
            os.environ["CONVEYOR_HOME"] = before


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except BadInputError as exc:
        if args.debug:
            raise
        _stderr(f"error: {exc}")
        return exc.exit_code
    except ConveyorError as exc:
        if args.debug:
            raise
        _stderr(f"failed: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _stderr("interrupted")
        return 130
    except Exception as exc:  # a bug or a foreign failure: one line, the rest with --debug
        if args.debug:
            raise
        _stderr(f"failed: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return 1

