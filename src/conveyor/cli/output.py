"""The CLI's terminal output: the console, and how ids, times, sizes and numbers are shown."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

__all__ = ["STATUS_STYLE", "console", "fmt", "home_line", "print_json", "size", "stderr",
           "stdout_gone", "when", "write_stdout"]


def _to_devnull(stream: Any) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


def stdout_gone() -> None:
    """The reader of stdout went away (``conveyor run SPEC | head``): whatever is printed from
    now on goes to ``/dev/null``, and the command carries on to its own end and exit code.

    rich's default ends the process (``SystemExit(1)``) at the first line that cannot be
    written, which in the middle of a run left it failed with ``SystemExit: 1``.
    """
    _to_devnull(sys.stdout)


def write_stdout(text: str) -> None:
    """``sys.stdout.write`` and flush; a reader that went away is not an error (see
    :func:`stdout_gone`)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_gone()


def console(width: int | None = None) -> Any:
    """A rich console: ``width``, else the terminal's width, or 160 columns off a terminal
    (pipes, logs). A closed pipe stops its printing, not the command (:func:`stdout_gone`)."""
    from rich.console import Console

    def stop_printing(self: Any) -> None:
        self.quiet = True
        stdout_gone()

    kind = type("Console", (Console,), {"on_broken_pipe": stop_printing})
    shown = kind(highlight=False, soft_wrap=True, width=width)
    if width is None and not shown.is_terminal:
        shown = kind(highlight=False, soft_wrap=True, width=160)
    return shown


def home_line(args: argparse.Namespace) -> str:
    """Where the embedded default writes, why there, and how to change it."""
    home = getattr(args, "home", None)
    if home is None:
        from conveyor.store.artifacts import locate_home

        home = locate_home()
    if home.reason == "CONVEYOR_HOME":
        return f"home {home.path} (from CONVEYOR_HOME)"
    return f"home {home.path} ({home.reason}; set CONVEYOR_HOME to use another)"


def print_json(data: Any) -> None:
    write_stdout(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


STATUS_STYLE = {"ok": "green", "rejected": "red", "failed": "red", "interrupted": "yellow",
                "partial": "cyan", "running": "blue"}

def when(stamp: str | None) -> str:
    if not stamp:
        return "-"
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return "-"  # pragma: no cover


def fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def stderr(text: str) -> None:
    """A line on stderr; a reader of it that went away (``2>&1 | head``) is not an error."""
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except BrokenPipeError:
        _to_devnull(sys.stderr)

