"""The running step's line: elapsed seconds on a terminal, nothing off one."""

from __future__ import annotations

import io

from rich.console import Console

from conveyor.cli import StepProgress, progress_line


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=80, color_system=None), out


def test_the_line_names_the_step_and_its_seconds() -> None:
    assert progress_line("train", 3.04) == "train     running   3.0s"
    assert progress_line("evaluate", 125.0) == "evaluate  running 125.0s"


def test_elapsed_time_grows_while_the_step_runs() -> None:
    console, out = terminal()
    clock = Clock()
    progress = StepProgress(console, enabled=True, clock=clock)
    progress.start("train")
    clock.now += 12.5
    progress._live.refresh()
    assert "train     running  12.5s" in out.getvalue()
    clock.now += 30
    progress._live.refresh()
    assert "train     running  42.5s" in out.getvalue()
    progress.stop()
    assert progress._live is None and progress.step is None
    progress.stop()  # idempotent: the runner's finally stops it again


def test_nothing_is_drawn_off_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80)
    progress = StepProgress(console, enabled=console.is_terminal)
    progress.start("train")
    progress.stop()
    assert out.getvalue() == ""
