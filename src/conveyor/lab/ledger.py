"""The inbox ledger in the Store: claims, outcomes and the claimed bytes, keyed by content hash.

Layout under ``{store}/{lab}/_inbox/``:

* ``blobs/<sha256>``: the bytes of a claimed file (training reads these, never the inbox
  file again, so a file rewritten after its claim cannot change what is trained);
* ``claims/<sha256>.<attempt>.json``: who claimed the content, created with an *exclusive
  create*; the first creator wins, every other gets ``None``;
* ``ledger/<sha256>.json``: the outcome (trained with its versions, or rejected with the
  error), written once training finished. Content with an outcome is never trained again,
  whichever file name it comes under: byte-identical duplicates train once.

Exclusive create:

* local folders: write a private temporary file, then ``os.link`` it to the claim's name;
  ``link`` fails with ``EEXIST`` atomically when the name exists, and the claim appears
  whole (never half-written) because it was complete before the link;
* S3: a single ``PUT`` with ``If-None-Match: *`` (S3 conditional writes, also in MinIO and
  moto); the loser gets ``412 Precondition Failed`` (or ``409`` while the winner's request is
  in flight);
* any other filesystem is refused rather than given a claim that is not atomic.

A claim that never reached an outcome (its claimer died) expires after ``claim_ttl``; the
next claim takes the next *attempt* number with the same exclusive create, so two watchers
that both see the expired claim still produce exactly one new claimant.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from conveyor.errors import StoreError
from conveyor.store import Store

__all__ = ["Claim", "Ledger", "default_owner"]

log = logging.getLogger(__name__)
_MAX_ATTEMPTS = 100


def default_owner() -> str:
    """An owner id for claims and locks: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Claim:
    """The right to train one content hash, held by one owner.

    Small and JSON-able: this is what an Airflow task hands to a mapped training task.
    """

    sha256: str
    file: str
    file_uri: str
    attempt: int
    owner: str
    claimed_at: float
    expires_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Claim:
        return cls(sha256=str(data["sha256"]), file=str(data["file"]),
                   file_uri=str(data["file_uri"]), attempt=int(data["attempt"]),
                   owner=str(data["owner"]), claimed_at=float(data["claimed_at"]),
                   expires_at=float(data["expires_at"]))


class Ledger:
    """Claims and outcomes of one lab's inbox.

    Args:
        store: the artifact store.
        lab: the lab's name (a safe key).
        claim_ttl: seconds after which a claim without an outcome may be claimed again.
    """

    def __init__(self, store: Store, lab: str, *, claim_ttl: float = 3600.0) -> None:
        self.store = store
        self.lab = lab
        self.claim_ttl = claim_ttl

    def _uri(self, *parts: str) -> str:
        return self.store.uri(self.lab, "_inbox", *parts)

    def outcome_uri(self, sha256: str) -> str:
        return self._uri("ledger", f"{_check_sha(sha256)}.json")

    def blob_uri(self, sha256: str) -> str:
        return self._uri("blobs", _check_sha(sha256))

    def claim_uri(self, sha256: str, attempt: int) -> str:
        return self._uri("claims", f"{_check_sha(sha256)}.{attempt}.json")

    # ------------------------------------------------------------------ reads
    def outcome(self, sha256: str) -> dict[str, Any] | None:
        """The recorded outcome of this content, if any."""
        uri = self.outcome_uri(sha256)
        if not self.store.exists(uri):
            return None
        return self.store.get_json(uri)

    def latest_claim(self, sha256: str) -> Claim | None:
        """The newest claim on this content, if any."""
        attempt = 0
        while attempt < _MAX_ATTEMPTS and self.store.exists(self.claim_uri(sha256, attempt + 1)):
            attempt += 1
        if attempt == 0:
            return None
        try:
            return Claim.from_dict(self.store.get_json(self.claim_uri(sha256, attempt)))
        except (ValueError, KeyError) as exc:
            raise StoreError(f"claim {self.claim_uri(sha256, attempt)} is unreadable: {exc}") \
                from exc

    def is_pending(self, sha256: str, *, now: float | None = None,
                   supersede: bool = False) -> bool:
        """Whether this content has neither an outcome nor a live claim.

        With ``supersede`` the recorded outcome (and the claim that wrote it) do not count:
        the caller decided the content may be tried again.
        """
        outcome = self.outcome(sha256)
        if outcome is not None and not supersede:
            return False
        latest = self.latest_claim(sha256)
        return latest is None or not self._live(latest, outcome if supersede else None,
                                                now or time.time())

    @staticmethod
    def _live(claim: Claim, superseded: dict[str, Any] | None, now: float) -> bool:
        """Whether ``claim`` still holds its content (not expired, not already finished)."""
        if superseded is not None:
            finished = (superseded.get("claim") or {}).get("attempt", 0)
            if claim.attempt <= int(finished):
                return False
        return claim.expires_at > now

    def read_blob(self, claim: Claim) -> bytes:
        """The claimed bytes, verified against the claim's hash."""
        return self.store.get_bytes(self.blob_uri(claim.sha256), sha256=claim.sha256)

    # ------------------------------------------------------------------ writes
    def claim(self, data: bytes, *, file: str, file_uri: str, owner: str,
              now: float | None = None, supersede: bool = False) -> Claim | None:
        """Claim ``data`` (one file's bytes) for ``owner``; ``None`` when someone else has it.

        Returns ``None`` too when the content already has an outcome, unless ``supersede``
        (the caller decided the content may be tried again, e.g. it ran out of time under a
        lower limit): then the outcome and the claim that wrote it do not count, and the
        new outcome replaces the old one.
        """
        sha256 = hashlib.sha256(data).hexdigest()
        now = time.time() if now is None else now
        outcome = self.outcome(sha256)
        if outcome is not None and not supersede:
            return None
        latest = self.latest_claim(sha256)
        if latest is not None and self._live(latest, outcome, now):
            return None
        attempt = (latest.attempt if latest else 0) + 1
        if attempt > _MAX_ATTEMPTS:
            raise StoreError(f"content {sha256[:12]} was claimed {_MAX_ATTEMPTS} times "
                             "without an outcome; look at the claims in the store")
        if latest is not None:
            log.warning("claim %s of %s by %s expired; claiming it again", latest.attempt,
                        sha256[:12], latest.owner)
        # the blob first: whoever wins the claim finds the bytes in place (same content,
        # same key, so two writers write the same object)
        self.store.put_bytes(self.blob_uri(sha256), data)
        claim = Claim(sha256=sha256, file=file, file_uri=file_uri, attempt=attempt,
                      owner=owner, claimed_at=now, expires_at=now + self.claim_ttl)
        body = json.dumps(claim.to_dict(), sort_keys=True).encode()
        if self.store.create_bytes(self.claim_uri(sha256, attempt), body) is None:
            return None
        return claim

    def release(self, claim: Claim) -> None:
        """Give a claim up before its expiry (its owner failed transiently), so a later
        pass may claim the content again at once."""
        uri = self.claim_uri(claim.sha256, claim.attempt)
        if self.store.exists(uri) and Claim.from_dict(self.store.get_json(uri)) == claim:
            self.store.delete(uri)

    def record(self, claim: Claim, outcome: dict[str, Any]) -> None:
        """Record the outcome of a claim (trained or rejected); later claims are refused."""
        record = {**outcome, "sha256": claim.sha256, "file": claim.file,
                  "claim": claim.to_dict(), "finished_at": time.time()}
        self.store.put_json(self.outcome_uri(claim.sha256), record)


def _check_sha(value: str) -> str:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise StoreError(f"{value!r} is not a sha256 hex digest")
    return value
