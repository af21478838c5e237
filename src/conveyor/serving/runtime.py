"""STAND-IN (fix/serve-http): the interface fix/serve-core builds, at its module path, so the
HTTP app runs before that branch lands. Replaced whole by serve-core's runtime.py at merge."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from conveyor.serving.model import LoadedModel, Prediction, load, resolve

__all__ = ["ModelHolder", "ServingModel"]


class ServingModel:
    """A loaded model as the server uses it."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.identity = loaded.identity
        self.features = loaded.features
        self.feature_names = loaded.feature_names
        self.classes = loaded.classes
        self.loaded_at = loaded.loaded_at
        self.numeric = all(f.dtype in ("double", "float", "long", "integer")
                           for f in loaded.features)

    def predict(self, X: Any) -> Prediction:
        import pandas as pd

        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(X, columns=self.feature_names)
        return self.loaded.predict(X)


class ModelHolder:
    """The model being served (no alias polling in this stand-in)."""

    def __init__(self, uri: str, *, tracking_uri: str | None = None, poll_seconds: float = 10.0,
                 on_event: Callable[..., None] | None = None) -> None:
        self.uri, self.tracking_uri = uri, tracking_uri
        self.current: ServingModel | None = None
        self._lock = threading.Lock()

    def load_now(self) -> ServingModel:
        with self._lock:
            identity = resolve(self.uri, tracking_uri=self.tracking_uri)
            self.current = ServingModel(load(identity, tracking_uri=self.tracking_uri))
            return self.current

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
