"""Where each row of a table came from in its file: the line an editor shows.

A row's line is not its index plus a constant: blank lines are skipped, a quoted field may
hold newlines, a header row may or may not be there. Readers record the first line of every
row; this module keeps that as runs of consecutive lines, which is one run for a clean file
and small enough to travel in a step's info.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["MAX_RUNS", "LineMap"]

# A file whose rows break the line sequence more often than this (many multi-line fields)
# keeps line numbers for its first rows only; later rows are named by row number alone.
MAX_RUNS = 1000


@dataclass(frozen=True)
class LineMap:
    """Row index (0-based) -> line of the file (1-based) where that row starts.

    Attributes:
        runs: ``(first_row, first_line, count)``: rows ``first_row .. first_row+count-1`` start
            on lines ``first_line ..`` one after the other. Rows in no run have no known line.
    """

    runs: tuple[tuple[int, int, int], ...]

    @classmethod
    def from_lines(cls, lines: Iterable[int]) -> LineMap:
        """Build the map from the start line of each row, in row order (at most MAX_RUNS runs)."""
        runs: list[list[int]] = []
        for row, line in enumerate(lines):
            last = runs[-1] if runs else None
            if last is not None and line == last[1] + last[2] and row == last[0] + last[2]:
                last[2] += 1
            elif len(runs) == MAX_RUNS:
                break
            else:
                runs.append([row, line, 1])
        return cls(tuple((a, b, c) for a, b, c in runs))

    @classmethod
    def from_json(cls, data: Sequence[Sequence[int]] | None) -> LineMap | None:
        """The map stored by :meth:`to_json`, or None when there is none."""
        if not data:
            return None
        return cls(tuple((int(a), int(b), int(c)) for a, b, c in data))

    def to_json(self) -> list[list[int]]:
        """Plain lists, for a step's info."""
        return [list(run) for run in self.runs]

    def line(self, row: int) -> int | None:
        """The line where ``row`` (0-based) starts, or None when it is not known."""
        index = bisect.bisect_right([run[0] for run in self.runs], row) - 1
        if index < 0:
            return None
        first_row, first_line, count = self.runs[index]
        return first_line + row - first_row if row < first_row + count else None
