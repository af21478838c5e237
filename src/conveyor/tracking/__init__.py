"""MLflow tracking and registry. The only package that imports mlflow."""

from conveyor.tracking.aliases import PREVIOUS, PRODUCTION, ProductionState
from conveyor.tracking.lock import RegistryLock
from conveyor.tracking.registry import (
    PromotionEvidence,
    VersionRefusedError,
    find_version,
    register_model,
    search_versions,
    withdraw_versions,
)
from conveyor.tracking.tracker import (
    RUN_TAG,
    Tracker,
    default_tracking_uri,
    flatten,
    mlflow_scope,
    one_line,
)
from conveyor.tracking.trials import log_search

__all__ = ["PREVIOUS", "PRODUCTION", "RUN_TAG", "ProductionState", "PromotionEvidence",
           "RegistryLock", "Tracker", "VersionRefusedError", "default_tracking_uri",
           "find_version", "flatten", "log_search", "mlflow_scope", "one_line", "register_model",
           "search_versions", "withdraw_versions"]
