"""Ids and timestamps: one format for every run, decision and record Conveyor writes.

An id sorts by creation time and is unique without coordination:
``20261123T101500123456-3f9a1c`` (UTC to the microsecond, then 24 random bits). Timestamps
are ISO 8601 in UTC to the microsecond, so two records written within one second still
sort in the order they were written.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

__all__ = ["ID_PATTERN", "new_id", "now_iso"]

#: what :func:`new_id` returns (older ids, to the second, match too)
ID_PATTERN = re.compile(r"^\d{8}T\d{6}(\d{6})?-[0-9a-f]{6}$")


def new_id(now: datetime | None = None) -> str:
    """A sortable, unique id.

    >>> bool(ID_PATTERN.match(new_id()))
    True
    >>> new_id(datetime(2026, 11, 23, 10, 15, tzinfo=UTC))[:21]
    '20261123T101500000000'
    """
    return f"{(now or datetime.now(UTC)):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the microsecond (``2026-11-23T10:15:00.123456+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")
