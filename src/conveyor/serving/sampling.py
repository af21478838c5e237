"""STAND-IN (fix/serve-http): the interface fix/serve-core builds, at its module path, so the
HTTP app runs before that branch lands. Replaced whole by serve-core's sampling.py at merge."""

from __future__ import annotations

from typing import Any

__all__ = ["Sampler"]


class Sampler:
    """Takes samples of served requests (this stand-in keeps none)."""

    def __init__(self, store_root: str, model_name: str, *, rate: float = 0.1,
                 **options: Any) -> None:
        self.store_root, self.model_name, self.rate = store_root, model_name, rate

    def offer(self, X: Any, feature_names: Any, prediction: Any, version: Any,
              request_ids: Any) -> None:
        pass

    def close(self) -> None:
        pass
