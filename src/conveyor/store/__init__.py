"""Artifact storage over fsspec: atomic writes, hashes, manifests."""

from conveyor.store.artifacts import (
    ArtifactRef,
    Store,
    check_key,
    folder_digest,
    home_dir,
    to_uri,
)

__all__ = ["ArtifactRef", "Store", "check_key", "folder_digest", "home_dir", "to_uri"]
