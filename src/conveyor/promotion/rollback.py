"""Roll ``production`` back to ``previous_production``, once, under the registry lock."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from conveyor.errors import BadInputError
from conveyor.ids import new_id, now_iso
from conveyor.promotion.records import write_record
from conveyor.store import Store
from conveyor.tracking import PREVIOUS, PRODUCTION, Tracker
from conveyor.tracking.aliases import (
    production_state,
    registry_lock,
    roll_back_production,
    set_last_decision,
    tag_version,
)

__all__ = ["ROLLED_BACK_TAG", "RollbackResult", "rollback"]

log = logging.getLogger(__name__)
#: on the version a rollback took out of production: when
ROLLED_BACK_TAG = "conveyor.rolled_back_at"


@dataclass
class RollbackResult:
    """What a rollback did: ``rolled_back`` or ``none`` (nothing to roll back)."""

    model: str
    action: str
    reason: str
    production_before: str | None
    production_after: str | None
    decision_id: str = ""
    decided_at: str = ""
    record_uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rollback(tracker: Tracker, model: str, *, store: Store | None = None,
             owner: str | None = None, lock_ttl: float = 120.0,
             lock_wait: float = 60.0) -> RollbackResult:
    """Move ``production`` back to ``previous_production`` (idempotent).

    ``previous_production`` is removed once used, so a second rollback finds nothing to roll
    back and says so instead of swinging forward again. Serialised with promotions by the
    registry lock: a promotion that was scoring meanwhile sees ``production`` moved and aborts.

    Raises:
        BadInputError: the model does not exist or has no production version.
    """
    production_state(tracker, model)  # an unknown model is bad input, before taking the lock
    result = RollbackResult(model=model, action="none", reason="", production_before=None,
                            production_after=None, decision_id=new_id(), decided_at=now_iso())
    with registry_lock(tracker, model, owner=owner, ttl=lock_ttl, wait=lock_wait):
        state = production_state(tracker, model)
        production, previous = state.production, state.previous
        result.production_before = result.production_after = production
        if production is None:
            raise BadInputError(f"{model!r} has no {PRODUCTION!r} alias: nothing to roll back "
                                "(promote a version first)")
        if previous is None or previous == production:
            result.reason = (
                f"nothing to roll back: v{production} is the first version in production"
                if state.generation <= 1 else
                f"nothing to roll back: production is v{production} and there is no "
                f"{PREVIOUS} (a rollback already moved production back to it)")
        else:
            roll_back_production(tracker, model, state=state)
            result.action = "rolled_back"
            result.production_after = previous
            result.reason = f"production moved back from v{production} to v{previous}"
    if result.action == "rolled_back":
        assert result.production_before is not None
        tag_version(tracker, model, result.production_before,
                    {ROLLED_BACK_TAG: result.decided_at}, strict=True)
        result.record_uri = write_record(store, "rollbacks", model, result.to_dict())
        set_last_decision(tracker, model, result.record_uri)
    log.info("rollback of %s: %s", model, result.reason)
    return result
