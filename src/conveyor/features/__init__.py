"""Preprocessing built from the spec."""

from conveyor.features.preprocess import build_model_pipeline, build_preprocessor, feature_types

__all__ = ["build_model_pipeline", "build_preprocessor", "feature_types"]
