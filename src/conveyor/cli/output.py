"""The CLI's terminal output: the console, and how ids, times, sizes and numbers are shown."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["STATUS_STYLE", "console", "fmt", "home_line", "print_json", "size", "stderr",
           "when"]


def console() -> Any:
    """A rich console: the terminal's width, or 160 columns off a terminal (pipes, logs)."""
    from rich.console import Console

    shown = Console(highlight=False, soft_wrap=True)
    if not shown.is_terminal:
        shown = Console(highlight=False, soft_wrap=True, width=160)
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
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


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
    sys.stderr.write(text + "\n")

