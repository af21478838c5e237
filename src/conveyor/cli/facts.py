"""The one-line facts a finished step shows in ``conveyor run`` and ``conveyor show``."""

from __future__ import annotations

from typing import Any

__all__ = ["_facts"]


def _facts(step: str, record: Any) -> str:
    from conveyor.steps import step_class  # each step writes its own one-line summary

    found = step_class(step)
    text = found().summary(record.info, record.metrics) if found is not None else ""
    return text + _warned(record.info.get("library_warnings") or [])


def _warned(noted: list[Any]) -> str:
    """`` · 3 warnings: ConvergenceWarning: lbfgs failed …`` for the warnings a step counted
    (the first kind in full; others as a count)."""
    if not noted:
        return ""
    total = sum(int(n.get("count", 1)) for n in noted)
    first = noted[0]
    more = f" (+{len(noted) - 1} other kinds)" if len(noted) > 1 else ""
    return (f" · {total} warning{'s' if total != 1 else ''}: {first.get('category')}: "
            f"{first.get('message')}{more}")
