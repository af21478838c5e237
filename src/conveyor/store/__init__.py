"""Artifact storage over fsspec: atomic writes, hashes, manifests."""

from conveyor.store.artifacts import (
    ArtifactRef,
    Store,
    check_key,
    files_digest,
    folder_digest,
    home_dir,
    store_root,
    to_uri,
    use_home,
    write_atomic,
)

__all__ = [
    "ArtifactRef",
    "Store",
    "check_key",
    "files_digest",
    "folder_digest",
    "home_dir",
    "store_root",
    "to_uri",
    "use_home",
    "write_atomic",
]
