"""The lab: a watched folder of classifier configs, each trained, logged and registered;
then the best registered version promoted to production.

The names below are imported on first use (PEP 562), so that ``conveyor.lab.spec`` (the lab
spec's loader, which the Airflow DAG processor runs at parse time) costs no pandas,
scikit-learn or MLflow import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ClassifierConfig": "configs", "ConfigError": "configs", "parse_config_bytes": "configs",
    "Inbox": "inbox",
    "Claim": "ledger", "Ledger": "ledger",
    "promote_lab": "promote", "rollback_lab": "promote",
    "Lab": "spec", "LabSpec": "spec", "load_lab": "spec",
    "FitError": "train", "TrainResult": "train", "train_file": "train",
    "ClaimBatch": "watcher", "InboxReport": "watcher", "claim_new": "watcher",
    "pending_files": "watcher", "process_inbox": "watcher", "train_claim": "watcher",
}

__all__ = [
    "Claim",
    "ClaimBatch",
    "ClassifierConfig",
    "ConfigError",
    "FitError",
    "Inbox",
    "InboxReport",
    "Lab",
    "LabSpec",
    "Ledger",
    "TrainResult",
    "claim_new",
    "load_lab",
    "parse_config_bytes",
    "pending_files",
    "process_inbox",
    "promote_lab",
    "rollback_lab",
    "train_claim",
    "train_file",
]

if TYPE_CHECKING:
    from conveyor.lab.configs import ClassifierConfig, ConfigError, parse_config_bytes
    from conveyor.lab.inbox import Inbox
    from conveyor.lab.ledger import Claim, Ledger
    from conveyor.lab.promote import promote_lab, rollback_lab
    from conveyor.lab.spec import Lab, LabSpec, load_lab
    from conveyor.lab.train import FitError, TrainResult, train_file
    from conveyor.lab.watcher import (
        ClaimBatch,
        InboxReport,
        claim_new,
        pending_files,
        process_inbox,
        train_claim,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor.lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"conveyor.lab.{module}"), name)
    globals()[name] = value
    return value


assert sorted(_EXPORTS) == __all__, "conveyor.lab: _EXPORTS and __all__ disagree"


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
