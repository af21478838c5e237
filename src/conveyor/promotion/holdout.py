"""The hold-out set every candidate of a promotion is scored on: read from the Store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conveyor.errors import BadInputError
from conveyor.store import ArtifactRef, Store
from conveyor.tracking.registry import HOLDOUT_SHA_TAG, HOLDOUT_TARGET_TAG, HOLDOUT_URI_TAG

__all__ = ["Holdout", "holdout_from_tags", "load_holdout"]


@dataclass(frozen=True)
class Holdout:
    """The rows every candidate is scored on.

    Attributes:
        X: the feature table (pandas DataFrame).
        y: the true labels.
        uri: where it is stored (recorded in the decision).
        sha256: its content hash.
        target: its label column.
    """

    X: Any
    y: Any
    uri: str = ""
    sha256: str = ""
    target: str = "target"


def load_holdout(uri: str, sha256: str, *, target: str = "target",
                 storage_options: dict[str, Any] | None = None) -> Holdout:
    """Read a hold-out table (Parquet) from the Store, verifying its hash.

    Raises:
        BadInputError: the table has no ``target`` column.
        StoreError: it cannot be read or does not match ``sha256``.
    """
    store = Store(uri.rsplit("/", 1)[0], storage_options)
    frame = store.get_table(ArtifactRef(uri=uri, sha256=sha256, size=0))
    if target not in frame.columns:
        raise BadInputError(f"hold-out set {uri} has no target column {target!r}")
    return Holdout(X=frame.drop(columns=[target]), y=frame[target].to_numpy(), uri=uri,
                   sha256=sha256, target=target)


def holdout_from_tags(versions: Iterable[Any]) -> Holdout:
    """The hold-out set the newest of ``versions`` names in its tags (set at registration).

    Raises:
        BadInputError: no version names one.
    """
    for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
        tags = dict(version.tags or {})
        if tags.get(HOLDOUT_URI_TAG) and tags.get(HOLDOUT_SHA_TAG):
            return load_holdout(tags[HOLDOUT_URI_TAG], tags[HOLDOUT_SHA_TAG],
                                target=tags.get(HOLDOUT_TARGET_TAG, "target"))
    raise BadInputError("no hold-out set: no candidate version names one (tag "
                        f"{HOLDOUT_URI_TAG}); pass the hold-out set explicitly")
