"""``data.source: synthetic``: a generated table, seeded (the ``temperature`` generator).

The section names the generator and its parameters::

    data: {source: synthetic, generator: temperature, datasets: 3, days: 730, seed: 7,
           noise: 1.5, anomaly_rate: 0.05, shapes: [spike, drift, stuck, dropout]}

Light on purpose (the spec imports it to validate a spec): numpy and pandas are imported
by :meth:`SyntheticSourceReader.read`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from conveyor.sources.base import BaseSource

__all__ = ["SyntheticSource", "SyntheticSourceReader"]

Shape = Literal["spike", "drift", "stuck", "dropout"]


class SyntheticSource(BaseModel):
    """A generated data set (``temperature``: daily readings with injected anomalies)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["synthetic"]
    generator: Literal["temperature"]
    datasets: int = Field(default=1, ge=1, le=1000, description="Stations, one after another.")
    seed: int = 0
    days: int = Field(default=730, ge=14, le=36_600)
    start: str = Field(default="2024-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$")
    noise: float = Field(default=1.5, ge=0.0, le=50.0)
    anomaly_rate: float = Field(default=0.05, ge=0.0, le=0.5)
    shapes: list[Shape] = Field(default_factory=lambda: ["spike", "drift", "stuck", "dropout"],
                                min_length=1)
    spike_size: float = Field(default=8.0, gt=0.0)
    drift_size: float = Field(default=8.0, gt=0.0)
    drift_days: int = Field(default=6, ge=2, le=365)
    stuck_days: int = Field(default=5, ge=2, le=365)

    def params(self) -> dict[str, Any]:
        """The generator's keyword arguments."""
        return self.model_dump(exclude={"source", "generator", "datasets", "seed"})


class SyntheticSourceReader(BaseSource):
    """A seeded synthetic table (``data.source: synthetic``)."""

    name = "synthetic"
    spec_model = SyntheticSource

    def read(self, config: Any, base_dir: Path) -> tuple[Any, dict[str, Any]]:
        import pandas as pd

        from conveyor.sources.temperature import temperature_datasets

        frames = temperature_datasets(config.datasets, seed=config.seed, **config.params())
        frame = pd.concat(frames, ignore_index=True)
        return frame, {"uri": f"synthetic://{config.generator}?seed={config.seed}",
                       "bytes": 0, "format": "synthetic", "first_line": None, "lines": None}
