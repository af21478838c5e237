"""Decision records: every promotion and rollback is written as JSON to the Store."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from conveyor.store import Store, home_dir

__all__ = ["write_record"]


def _record_key(model: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", model).strip(".-")[:64]
    return safe if safe and safe == model else f"{safe or 'model'}-" \
        f"{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def write_record(store: Store | None, kind: str, model: str, data: dict[str, Any]) -> str:
    """Write ``data`` to ``_registry/<model>/<kind>/<decision_id>.json``; return its URI.

    Args:
        store: where records go (default: ``CONVEYOR_HOME/artifacts``).
        kind: ``promotions`` or ``rollbacks``.
        model: the registered model.
        data: the record; its ``decision_id`` names the file.
    """
    target = store or Store((home_dir() / "artifacts").as_uri())
    uri = target.uri("_registry", _record_key(model), kind, f"{data['decision_id']}.json")
    target.put_json(uri, data)
    return uri
