"""``conveyor monitor``: see docs/serving.md (issue 10; being built)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``monitor`` sub-command."""
