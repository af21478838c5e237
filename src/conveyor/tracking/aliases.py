"""The ``production`` alias of a registered model: read its state, move it, tag the record.

Everything here is one MLflow call or a few; the rules for *when* to move the alias live in
:mod:`conveyor.promotion`, which calls these holding the registry lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from conveyor.errors import BadInputError, TrackingError
from conveyor.tracking.lock import RegistryLock, error_code
from conveyor.tracking.tracker import Tracker, one_line

__all__ = [
    "CHALLENGER",
    "GENERATION_TAG",
    "LAST_DECISION_TAG",
    "PREVIOUS",
    "PRODUCTION",
    "SEEN_TAG",
    "ProductionState",
    "mark_seen",
    "move_production",
    "production_state",
    "registry_lock",
    "roll_back_production",
    "set_alias",
    "set_last_decision",
    "tag_version",
    "version_aliases",
]

log = logging.getLogger(__name__)

PRODUCTION = "production"
PREVIOUS = "previous_production"
CHALLENGER = "challenger"
SEEN_TAG = "conveyor.promotion.seen"
GENERATION_TAG = "conveyor.promotion.generation"
LAST_DECISION_TAG = "conveyor.promotion.last_decision"

T = TypeVar("T")


@dataclass(frozen=True)
class ProductionState:
    """Where ``production`` points now.

    Attributes:
        production: the version with the ``production`` alias, if any.
        previous: the version with the ``previous_production`` alias, if any.
        generation: how many times Conveyor moved ``production`` (promotion or rollback).
        seen: the highest version an earlier promotion evaluated.
    """

    production: str | None
    previous: str | None
    generation: int
    seen: int


def _call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise TrackingError(f"{what} failed: {one_line(exc)}") from exc


def _int_tag(tags: Mapping[str, str], name: str) -> int:
    try:
        return int(tags.get(name, 0) or 0)
    except ValueError:
        return 0


def production_state(tracker: Tracker, model: str) -> ProductionState:
    """Read the aliases and promotion tags of registered model ``model``.

    Raises:
        BadInputError: there is no such registered model.
        TrackingError: the registry failed.
    """
    try:
        registered = tracker.client.get_registered_model(model)
    except Exception as exc:
        if error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
            raise BadInputError(f"registered model {model!r} not found in the registry; "
                                "check the name (MLflow UI, Models tab)") from None
        raise TrackingError(f"reading registered model {model!r} failed: {one_line(exc)}") \
            from exc
    aliases = dict(registered.aliases or {})
    tags = dict(registered.tags or {})
    return ProductionState(
        production=str(aliases[PRODUCTION]) if PRODUCTION in aliases else None,
        previous=str(aliases[PREVIOUS]) if PREVIOUS in aliases else None,
        generation=_int_tag(tags, GENERATION_TAG), seen=_int_tag(tags, SEEN_TAG))


def registry_lock(tracker: Tracker, model: str, *, owner: str | None = None,
                  ttl: float = 120.0, wait: float = 60.0) -> RegistryLock:
    """The lock serialising every move of ``model``'s ``production`` alias."""
    return RegistryLock(tracker.client, model, owner=owner, ttl=ttl, wait=wait)


def move_production(tracker: Tracker, model: str, version: str, *,
                    state: ProductionState) -> int:
    """Point ``production`` at ``version`` and ``previous_production`` at the one it replaces.

    Call it holding the registry lock, after checking that ``state`` is still current.

    Returns:
        The new generation.
    """
    client = tracker.client
    _call(f"moving {model!r} production", client.set_registered_model_alias, model,
          PRODUCTION, version)
    if state.production is not None:
        _call(f"setting {model!r} {PREVIOUS}", client.set_registered_model_alias, model,
              PREVIOUS, state.production)
    generation = state.generation + 1
    _call("recording the generation", client.set_registered_model_tag, model, GENERATION_TAG,
          str(generation))
    return generation


def roll_back_production(tracker: Tracker, model: str, *, state: ProductionState) -> int:
    """Point ``production`` at ``previous_production`` and remove that alias (used once).

    Call it holding the registry lock, with ``state.previous`` set.

    Returns:
        The new generation.
    """
    client = tracker.client
    _call(f"moving {model!r} production back", client.set_registered_model_alias, model,
          PRODUCTION, state.previous)
    _call(f"removing {model!r} {PREVIOUS}", client.delete_registered_model_alias, model,
          PREVIOUS)
    generation = state.generation + 1
    _call("recording the generation", client.set_registered_model_tag, model, GENERATION_TAG,
          str(generation))
    return generation


def mark_seen(tracker: Tracker, model: str, versions: Iterable[int]) -> None:
    """Remember the highest version evaluated, so the next promotion skips older ones."""
    evaluated = list(versions)
    if not evaluated:
        return
    seen = production_state(tracker, model).seen
    _call("recording the versions seen", tracker.client.set_registered_model_tag, model,
          SEEN_TAG, str(max(seen, *evaluated)))


def set_alias(tracker: Tracker, model: str, alias: str, version: str) -> None:
    """Point ``alias`` (``challenger``) at ``version``; never used for ``production``, which
    moves only through :func:`move_production` under the registry lock."""
    if alias in (PRODUCTION, PREVIOUS):
        raise TrackingError(f"{alias!r} moves only through a promotion or a rollback")
    _call(f"setting {model!r} {alias}", tracker.client.set_registered_model_alias, model,
          alias, version)


def version_aliases(tracker: Tracker, model: str, version: str) -> tuple[str, ...]:
    """The aliases of registered model ``model`` that point at ``version``, sorted."""
    registered = _call(f"reading registered model {model!r}",
                       tracker.client.get_registered_model, model)
    return tuple(sorted(alias for alias, number in (registered.aliases or {}).items()
                        if str(number) == str(version)))


def set_last_decision(tracker: Tracker, model: str, record_uri: str) -> None:
    """Point the registered model at the record of its last promotion or rollback."""
    _call("recording the last decision", tracker.client.set_registered_model_tag, model,
          LAST_DECISION_TAG, record_uri)


def tag_version(tracker: Tracker, model: str, version: str, tags: Mapping[str, str], *,
                strict: bool = False) -> bool:
    """Set tags on a version; a version deleted meanwhile is logged and skipped.

    Args:
        strict: raise :class:`TrackingError` instead of logging a failure.

    Returns:
        Whether every tag was set.
    """
    for key, value in tags.items():
        try:
            tracker.client.set_model_version_tag(model, version, key, value)
        except Exception as exc:
            if strict:
                raise TrackingError(f"tagging {model} v{version} failed: {one_line(exc)}") \
                    from exc
            log.warning("cannot tag %s v%s: %s", model, version, one_line(exc))
            return False
    return True
