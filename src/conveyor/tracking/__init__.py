"""MLflow tracking and registry. The only package that imports mlflow."""

from conveyor.tracking.registry import (
    PromotionEvidence,
    find_version,
    register_model,
    withdraw_versions,
)
from conveyor.tracking.tracker import RUN_TAG, Tracker, default_tracking_uri, flatten

__all__ = ["RUN_TAG", "PromotionEvidence", "Tracker", "default_tracking_uri", "find_version",
           "flatten", "register_model", "withdraw_versions"]
