"""The lab: a watched folder of classifier configs, each trained, logged and registered;
then the best registered version promoted to production."""

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
