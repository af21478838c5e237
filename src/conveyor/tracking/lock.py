"""A mutex in the model registry: MLflow has no compare-and-set on aliases.

Every registry backend makes registered model names unique, so creating the registered model
``<model>.lock`` succeeds for exactly one caller. See
docs/decisions/0021-promotion-registry-lock.md.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import Any

from conveyor.errors import TrackingError
from conveyor.tracking.tracker import one_line

__all__ = ["RegistryLock", "error_code"]

log = logging.getLogger(__name__)

_LOCK_OWNER = "conveyor.lock.owner"
_LOCK_TOKEN = "conveyor.lock.token"
_LOCK_EXPIRES = "conveyor.lock.expires_at"


def error_code(exc: BaseException) -> str:
    """MLflow's error code of an exception (``RESOURCE_DOES_NOT_EXIST``...), or ''."""
    return str(getattr(exc, "error_code", "") or "")


class RegistryLock:
    """A mutex in the model registry that works on every MLflow backend.

    Creating a registered model is atomic and its name is unique (a database constraint on
    SQL stores, the same on a tracking server), so ``create_registered_model("<model>.lock")``
    succeeds for exactly one caller: create is acquire, delete is release. The lock's tags
    hold its owner, a random token and an expiry; a lock past its expiry (its holder died)
    is broken by *renaming* it to ``<model>.lock.stale-<token>``: the rename fails for every
    breaker but the first, because the target name then exists, so a lock is broken once and
    a fresh lock is never mistaken for the stale one. The renamed model is left as a record.

    Args:
        client: an ``MlflowClient``.
        model: the registered model the lock guards.
        owner: who holds it (shown to whoever waits).
        ttl: seconds after which the lock may be broken; the critical sections it guards
            take well under a second.
        wait: seconds to wait for the lock before giving up.
    """

    def __init__(self, client: Any, model: str, *, owner: str | None = None,
                 ttl: float = 120.0, wait: float = 60.0) -> None:
        self.client = client
        self.model = model
        self.name = f"{model}.lock"
        self.owner = owner or f"{os.uname().nodename}:{os.getpid()}"
        self.ttl = ttl
        self.wait = wait
        self.token: str | None = None
        self.broken_stale = 0

    def acquire(self) -> None:
        """Take the lock, waiting up to ``wait`` seconds.

        Raises:
            TrackingError: the lock is held by someone else for longer than ``wait``.
        """
        deadline = time.monotonic() + self.wait
        delay = 0.05
        holder = "?"
        while True:
            token = uuid.uuid4().hex
            tags = {_LOCK_OWNER: self.owner, _LOCK_TOKEN: token,
                    _LOCK_EXPIRES: f"{time.time() + self.ttl:.3f}"}
            try:
                self.client.create_registered_model(
                    self.name, tags=tags,
                    description=f"Conveyor lock for {self.model}; delete it only if its owner "
                                "is gone")
                self.token = token
                return
            except Exception as exc:
                if error_code(exc) != "RESOURCE_ALREADY_EXISTS" and not _transient(exc):
                    raise TrackingError(f"taking the lock {self.name!r} failed: "
                                        f"{one_line(exc)}") from exc
            holder = self._break_if_stale() or holder
            if time.monotonic() >= deadline:
                raise TrackingError(
                    f"the registry lock {self.name!r} is held by {holder}; waited "
                    f"{self.wait:g}s (another promotion or rollback is running; a dead "
                    f"holder's lock expires after {self.ttl:g}s)")
            time.sleep(delay * (0.5 + uuid.uuid4().int % 1000 / 1000))
            delay = min(delay * 2, 1.0)

    def _break_if_stale(self) -> str | None:
        """Break an expired lock; return who holds the lock (None if it is gone)."""
        try:
            held = self.client.get_registered_model(self.name)
        except Exception as exc:  # gone since the create failed, or a transient error
            if error_code(exc) == "RESOURCE_DOES_NOT_EXIST" or _transient(exc):
                return None
            raise TrackingError(f"reading the lock {self.name!r} failed: {one_line(exc)}") \
                from exc
        tags = dict(held.tags or {})
        owner = tags.get(_LOCK_OWNER, "an unknown owner")
        try:
            expires = float(tags.get(_LOCK_EXPIRES, "0"))
        except ValueError:
            expires = 0.0
        if expires > time.time():
            return owner
        token = re.sub(r"[^0-9a-f]", "", tags.get(_LOCK_TOKEN, ""))[:32] or "unknown"
        try:
            self.client.rename_registered_model(self.name, f"{self.name}.stale-{token}")
        except Exception as exc:  # noqa: BLE001 - another breaker won, or it was released
            log.debug("breaking %s lost: %s", self.name, one_line(exc))
            return owner
        self.broken_stale += 1
        log.warning("broke the stale registry lock %s held by %s (expired %.0fs ago)",
                    self.name, owner, time.time() - expires)
        return None

    def release(self) -> None:
        """Release the lock if it is still ours (an expired lock may have been broken)."""
        if self.token is None:
            return
        token, self.token = self.token, None
        try:
            held = self.client.get_registered_model(self.name)
            if dict(held.tags or {}).get(_LOCK_TOKEN) != token:
                log.warning("registry lock %s was broken while held by %s", self.name,
                            self.owner)
                return
            self.client.delete_registered_model(self.name)
        except Exception as exc:
            if error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                return
            raise TrackingError(f"releasing the lock {self.name!r} failed: {one_line(exc)}; "
                                f"it expires after {self.ttl:g}s") from exc

    def __enter__(self) -> RegistryLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _transient(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "temporarily unavailable" in text

