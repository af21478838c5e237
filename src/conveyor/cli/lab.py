"""``conveyor lab run LAB_SPEC [--once | --watch]``: a lab without Airflow.

``--once`` (the default) makes one pass over the watched folder through
:func:`conveyor.process_inbox` and exits like ``conveyor run``: 0 every new file was trained
(or there was none), 2 a file was rejected (bad in any way; moved to ``rejected/``), 1 a file
failed for another reason (MLflow or the Store: it stays in the folder for the next pass);
1 wins over 2. ``--watch`` makes a pass every ``--interval`` seconds until Ctrl-C or SIGTERM,
then exits 0: a pass under way is interrupted, its untouched claims released and the fitting
child process stopped (docs/decisions/0028).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conveyor
from conveyor.cli.output import console as _console
from conveyor.errors import BadInputError, ConveyorError

__all__ = ["cmd_lab_run", "register", "report_exit_code"]


def report_exit_code(report: Any) -> int:
    """0 all new files trained, 2 one was rejected (bad input), 1 one failed otherwise."""
    if report.failed:
        return 1
    return 2 if report.rejected else 0


def _print_report(console: Any, report: Any, *, quiet_when_idle: bool = False) -> None:
    batch = report.batch
    if quiet_when_idle and not (report.trained or report.rejected or report.failed
                                or batch.errors):
        return
    for result in report.trained:
        versions = ", ".join(f"v{c.version} ({c.name})" for c in result.configs)
        console.print(f"trained  {result.file}: {result.model_name} {versions}", markup=False)
    for name, error in report.rejected.items():
        console.print(f"rejected {name}: {error}", markup=False)
    for name, error in {**batch.errors, **report.failed}.items():
        console.print(f"failed   {name}: {error} (the next pass tries it again)", markup=False)
    known = [name for name, status in batch.known.items() if name not in report.rejected]
    counts = [f"{len(report.trained)} trained", f"{len(report.rejected)} rejected",
              f"{len(report.failed) + len(batch.errors)} failed",
              f"{len(known)} seen before", f"{len(batch.taken)} taken by another watcher",
              f"{len(batch.skipped)} skipped"]
    console.print(f"[bold]{time.strftime('%H:%M:%S')}[/] pass: " + ", ".join(counts))


class _Stopped(BaseException):
    """Ctrl-C or SIGTERM: unwinds a pass as an interrupt does (``finally`` blocks release the
    claims and stop the fitting child), never caught as a file's failure (not an Exception)."""


@contextlib.contextmanager
def _signals_stop() -> Iterator[None]:
    """Raise :class:`_Stopped` in the main thread on SIGINT or SIGTERM, in the block.

    Not ``KeyboardInterrupt``: seen here, a KeyboardInterrupt raised while a pass was
    starting its fitting child was caught, "stopped" printed and 0 returned, and the process
    still ended by SIGINT (exit -2): CPython's exit-by-SIGINT after an unhandled
    KeyboardInterrupt is a process-wide flag that one raised through C code can leave set.
    """

    def stop(signum: int, frame: Any) -> None:
        raise _Stopped

    watched = (signal.SIGINT, signal.SIGTERM)
    before = {signum: signal.signal(signum, stop) for signum in watched}
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def cmd_lab_run(args: argparse.Namespace) -> int:
    from conveyor.lab.spec import Lab

    if args.interval <= 0:
        raise BadInputError(f"--interval must be positive, got {args.interval}")
    lab = conveyor.validate(args.spec)
    if not isinstance(lab, Lab):
        raise BadInputError(f"{args.spec} is a pipeline spec, not a lab spec (no watch: "
                            f"section); run it with: conveyor run {args.spec}")
    console = _console()
    console.print(f"lab [bold]{lab.spec.name}[/] · watches {lab.inbox_uri} · registers "
                  f"{lab.spec.model_name}")
    if not args.watch:
        report = conveyor.process_inbox(lab)
        _print_report(console, report)
        return report_exit_code(report)
    console.print(f"a pass every {args.interval:g}s; Ctrl-C (or SIGTERM) stops")
    with _signals_stop():
        try:
            while True:
                try:
                    _print_report(console, conveyor.process_inbox(lab), quiet_when_idle=True)
                except ConveyorError as exc:  # the Store or MLflow down: the next pass retries
                    console.print(f"pass failed: {exc} (trying again in {args.interval:g}s)",
                                  markup=False)
                time.sleep(args.interval)
        except _Stopped:
            console.print("stopped")
    return 0


def register(sub: Any) -> None:
    """Add ``conveyor lab run`` to the ``conveyor`` command's sub-parsers."""
    parser = sub.add_parser("lab", help="run a lab (a watched folder of classifier configs) "
                                        "without Airflow")
    commands = parser.add_subparsers(dest="lab_command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="train and register the new files of the lab's "
                                          "watched folder")
    run.add_argument("spec", type=Path, metavar="LAB_SPEC", help="the lab spec (YAML)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true",
                      help="one pass, then exit 0 (all trained), 2 (a file rejected) or 1 "
                           "(a file failed; it is retried next time); the default")
    mode.add_argument("--watch", action="store_true",
                      help="a pass every --interval seconds until Ctrl-C or SIGTERM")
    run.add_argument("--interval", type=float, default=10.0, metavar="SECONDS",
                     help="seconds between passes with --watch (default 10)")
    run.set_defaults(func=cmd_lab_run)
