"""The one-line facts a finished step shows in ``conveyor run`` and ``conveyor show``."""

from __future__ import annotations

from typing import Any

__all__ = ["_facts"]


def _facts(step: str, record: Any) -> str:
    from conveyor.steps import step_class  # each step writes its own one-line summary

    found = step_class(step)
    return found().summary(record.info, record.metrics) if found is not None else ""
