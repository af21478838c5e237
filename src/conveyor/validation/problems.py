"""What a check found: a :class:`Problem` naming its column and rows, and how rows are named
in messages (``row 100 (line 101)``: the line an editor shows, ADR 0022)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["SAMPLES", "Lines", "Problem", "RowNamer", "plain"]

SAMPLES = 5  # rows named in a message before "and N more"


class Lines(Protocol):
    """Where each row starts in its file (``conveyor.sources.lines.LineMap``)."""

    def line(self, row: int) -> int | None: ...


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (``5``, not ``np.int64(5)``, in messages)."""
    return value.item() if hasattr(value, "item") else value


@dataclass(frozen=True)
class RowNamer:
    """Names rows of the table being checked by their row and line in the source file.

    Attributes:
        lines: the source's line map, or None (Parquet, bundled data: rows only).
        kept: after rows were dropped, the original position of each remaining row.
    """

    lines: Lines | None = None
    kept: Any = None

    def original(self, index: int) -> int:
        """The 0-based row of the source for row ``index`` of the current table."""
        return int(self.kept[index]) if self.kept is not None else int(index)

    def line(self, index: int) -> int | None:
        return self.lines.line(self.original(index)) if self.lines is not None else None

    def row(self, index: int) -> str:
        """``row N (line L)``: 1-based row of the source, and its line when known."""
        line = self.line(index)
        return f"row {self.original(index) + 1}" + (f" (line {line})" if line is not None
                                                     else "")

    def rows(self, indexes: Sequence[int] | Any, *, shown: int = SAMPLES,
             values: Sequence[Any] | None = None) -> str:
        """A few rows (with their values when given), and how many more there are."""
        named = []
        for i, index in enumerate(indexes[:shown]):
            text = self.row(int(index))
            if values is not None:
                text += f": {plain(values[i])!r}"
            named.append(text)
        more = len(indexes) - shown
        return ", ".join(named) + (f" and {more} more" if more > 0 else "")

    def sample(self, indexes: Sequence[int] | Any, *, shown: int = SAMPLES) -> dict[str, Any]:
        """Sample rows and lines for the report (1-based rows; lines may be None)."""
        first = [int(i) for i in indexes[:shown]]
        return {"rows": [self.original(i) + 1 for i in first],
                "lines": [self.line(i) for i in first]}


@dataclass
class Problem:
    """One thing a check found.

    Attributes:
        check: the ``validate:`` key whose policy applies (``types``, ``values``, ``drift``...).
        message: one line naming the file, column, rows and lines.
        column: the column, or None for the table.
        rows: 0-based positions (in the table checked) of the offending rows; empty for a
            problem of a whole column.
        policy: the policy that applies (``fail``, ``drop``, ``warn``).
        count: how many rows (or values) are affected.
    """

    check: str
    message: str
    column: str | None = None
    rows: Any = field(default_factory=list)
    policy: str = "fail"
    count: int = 0

    def to_dict(self, namer: RowNamer) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "policy": self.policy,
                               "column": self.column, "count": self.count,
                               "message": self.message}
        if len(self.rows):
            out.update(namer.sample(self.rows))
        return out
