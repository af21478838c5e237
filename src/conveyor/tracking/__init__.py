"""MLflow tracking and registry. The only package that imports mlflow."""

from conveyor.tracking.registry import find_version, register_model, withdraw_version
from conveyor.tracking.tracker import RUN_TAG, Tracker, default_tracking_uri, flatten

__all__ = ["RUN_TAG", "Tracker", "default_tracking_uri", "find_version", "flatten",
           "register_model", "withdraw_version"]
