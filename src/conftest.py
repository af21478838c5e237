"""The docstring examples in src/ (run by ``make test``, ADR 0028) start from a clean slate.

Each example names its own home; a tracking URI, home or export location in the caller's
environment would otherwise take precedence over it, as it does for a user.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CONVEYOR_HOME",
                 "CONVEYOR_EXPORT_URI", "WDBC_PATH"):
        monkeypatch.delenv(name, raising=False)
