"""A saved MLflow scikit-learn model folder, read without importing MLflow where possible.

Serving and batch scoring start often and load one model each time: importing MLflow costs
about 1.9 s here, so a folder saved by :meth:`Tracker.save_sklearn_model` (skops format, its
trusted types recorded in ``MLmodel``) is loaded with skops directly. Anything else falls back
to ``mlflow.sklearn.load_model``. Callers verify the folder's sha256 *before* calling these
(nothing in an unverified folder is deserialised).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conveyor.errors import TrackingError
from conveyor.tracking.tracker import Tracker, _skops_quietly, import_skops, one_line

__all__ = ["load_sklearn_folder", "read_mlmodel", "signature_inputs"]


def read_mlmodel(folder: Path) -> dict[str, Any]:
    """The ``MLmodel`` file of a model folder, as a mapping (read by the bounded YAML reader).

    Raises:
        TrackingError: there is no readable ``MLmodel`` file.
    """
    from conveyor.spec.reader import read_yaml

    path = Path(folder) / "MLmodel"
    if not path.is_file():
        raise TrackingError(f"{folder} is not an MLflow model folder (no MLmodel file)")
    try:
        data, _ = read_yaml(path, what="MLmodel")
    except Exception as exc:
        raise TrackingError(f"{path}: {one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise TrackingError(f"{path} is not a mapping")
    return data


def signature_inputs(mlmodel: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's input columns from its signature: ``[{"name", "type", "required"}, ...]``.

    Raises:
        TrackingError: the model has no column-based input signature.
    """
    raw = (mlmodel.get("signature") or {}).get("inputs")
    try:
        columns = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise TrackingError(f"the model's signature is not JSON: {exc}") from exc
    if not isinstance(columns, list) or not all(isinstance(c, dict) and c.get("name")
                                                 for c in columns):
        raise TrackingError("the model has no column signature (log it with an input "
                            "example, as Conveyor does)")
    return [{"name": str(c["name"]), "type": str(c.get("type", "double")),
             "required": bool(c.get("required", True))} for c in columns]


def load_sklearn_folder(folder: Path) -> Any:
    """The scikit-learn estimator in a verified model folder.

    skops-format folders are loaded with ``skops.io.load`` trusting exactly the types recorded
    in ``MLmodel`` when the model was trained (no MLflow import); other folders go through
    ``mlflow.sklearn.load_model``.

    Raises:
        TrackingError: the folder cannot be loaded (one line naming it).
    """
    mlmodel = read_mlmodel(folder)
    flavour = (mlmodel.get("flavors") or {}).get("sklearn") or {}
    if flavour.get("serialization_format") == "skops" and flavour.get("pickled_model"):
        skops_io = import_skops()
        path = Path(folder) / str(flavour["pickled_model"])
        trusted = [str(t) for t in flavour.get("skops_trusted_types") or []]
        try:
            with _skops_quietly():
                return skops_io.load(path, trusted=trusted)
        except Exception as exc:
            raise TrackingError(f"loading the model from {folder} failed: {one_line(exc)}") \
                from exc
    return Tracker.load_sklearn_model(Path(folder))
