"""Promotion and rollback of a registered model's ``production`` alias.

A promotion has two halves:

* :func:`plan_promotion` changes nothing. It scores every candidate version (new since the
  last promotion, plus the current production version) on one hold-out set: each version's
  artifacts are downloaded from the registry, checked against the digest recorded when it was
  registered, loaded with ``mlflow.pyfunc`` and scored. A version whose artifacts are missing,
  altered or unloadable is *refused* (recorded with the reason), never fatal. The gate then
  picks the best candidate that meets the absolute minimums and beats production by at least
  ``min_delta``; a tie keeps production.
* :func:`commit_promotion` loads the chosen version again through ``models:/<name>/<v>`` (the
  path a serving client takes) and scores a check batch, then, holding the registry lock,
  compares the ``production`` alias with the version the plan was based on and only if they
  are equal moves ``production`` and sets ``previous_production`` (compare-and-set). The
  decision is written as JSON to the Store and as tags on the versions.

MLflow has no compare-and-set on aliases, so :class:`RegistryLock` builds a mutex from what
every registry backend has: registered model names are unique, so creating the registered
model ``<model>.lock`` succeeds for exactly one caller. See
docs/decisions/0021-promotion-registry-lock.md.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.errors import BadInputError, TrackingError
from conveyor.store import ArtifactRef, Store, home_dir
from conveyor.tracking.registry import (
    DIGEST_TAG,
    HOLDOUT_SHA_TAG,
    HOLDOUT_TARGET_TAG,
    HOLDOUT_URI_TAG,
    _download,
    _folder_digest,
    model_digest,
)
from conveyor.tracking.tracker import Tracker

__all__ = [
    "DIGEST_TAG",
    "HOLDOUT_SHA_TAG",
    "HOLDOUT_TARGET_TAG",
    "HOLDOUT_URI_TAG",
    "METRICS",
    "PREVIOUS",
    "PRODUCTION",
    "CandidateScore",
    "Holdout",
    "PromotionDecision",
    "RegistryLock",
    "RollbackResult",
    "commit_promotion",
    "load_holdout",
    "model_digest",
    "plan_promotion",
    "promote",
    "rollback",
]

log = logging.getLogger(__name__)

PRODUCTION = "production"
PREVIOUS = "previous_production"
METRICS = ("accuracy", "f1", "precision", "recall")
SEEN_TAG = "conveyor.promotion.seen"
GENERATION_TAG = "conveyor.promotion.generation"
LAST_DECISION_TAG = "conveyor.promotion.last_decision"
_LOCK_OWNER = "conveyor.lock.owner"
_LOCK_TOKEN = "conveyor.lock.token"
_LOCK_EXPIRES = "conveyor.lock.expires_at"
_EPS = 1e-9


# --------------------------------------------------------------------------- hold-out set


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
    """Read a hold-out table (Parquet) from the Store, verifying its hash."""
    store = Store(uri.rsplit("/", 1)[0], storage_options)
    frame = store.get_table(ArtifactRef(uri=uri, sha256=sha256, size=0))
    if target not in frame.columns:
        raise BadInputError(f"hold-out set {uri} has no target column {target!r}")
    return Holdout(X=frame.drop(columns=[target]), y=frame[target].to_numpy(), uri=uri,
                   sha256=sha256, target=target)


# --------------------------------------------------------------------------- scoring


def _scores(y_true: Any, y_pred: Any) -> dict[str, float]:
    from sklearn import metrics as m

    macro = {"average": "macro", "zero_division": 0}
    return {
        "accuracy": float(m.accuracy_score(y_true, y_pred)),
        "f1": float(m.f1_score(y_true, y_pred, **macro)),
        "precision": float(m.precision_score(y_true, y_pred, **macro)),
        "recall": float(m.recall_score(y_true, y_pred, **macro)),
    }


@dataclass
class CandidateScore:
    """One version's result in a promotion.

    Attributes:
        version: the registry version.
        role: ``production`` (the current one) or ``candidate``.
        status: ``scored``, ``below_minimum`` or ``refused``.
        scores: metric -> value on the hold-out set (empty when refused).
        reason: why it was refused or fell below a minimum.
        config: the config name it was trained from (tag), if known.
    """

    version: str
    role: str
    status: str
    scores: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    config: str = ""
    predictions: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("predictions")
        return data


def _score_version(tracker: Tracker, model: str, version: Any, holdout: Holdout,
                   role: str) -> CandidateScore:
    import mlflow.pyfunc

    number = str(version.version)
    tags = dict(version.tags or {})
    result = CandidateScore(version=number, role=role, status="refused",
                            config=tags.get("conveyor.config.name", ""))
    expected = tags.get(DIGEST_TAG)
    if not expected:
        result.reason = (f"no {DIGEST_TAG} tag: its artifacts cannot be verified (register "
                         "versions through Conveyor)")
        return result
    with tempfile.TemporaryDirectory(prefix="conveyor-score-") as tmp:
        try:
            folder = _download(tracker, f"models:/{model}/{number}", Path(tmp))
            digest = _folder_digest(folder)
        except Exception as exc:  # noqa: BLE001 - any download failure refuses this version
            result.reason = f"artifacts missing or unreadable: {_short(exc)}"
            return result
        if digest != expected:
            result.reason = "artifacts do not match the digest recorded at registration " \
                            "(altered or corrupt)"
            return result
        try:
            loaded = mlflow.pyfunc.load_model(str(folder))
            predictions = loaded.predict(holdout.X)
        except Exception as exc:  # noqa: BLE001 - a model that cannot load or predict
            result.reason = f"cannot load or predict: {_short(exc)}"
            return result
    result.predictions = _as_array(predictions)
    if len(result.predictions) != len(holdout.X):
        result.reason = f"returned {len(result.predictions)} predictions for {len(holdout.X)} rows"
        result.predictions = None
        return result
    result.scores = _scores(holdout.y, result.predictions)
    result.status = "scored"
    return result


def _as_array(predictions: Any) -> Any:
    import numpy as np

    values = getattr(predictions, "to_numpy", None)
    array = values() if callable(values) else np.asarray(predictions)
    return array.ravel() if array.ndim > 1 and array.shape[1] == 1 else array


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


# --------------------------------------------------------------------------- decision


@dataclass
class PromotionDecision:
    """What a promotion compared, decided and did.

    ``action`` is ``promote`` or ``keep`` in a plan; after :func:`commit_promotion` it is
    ``promoted``, ``kept`` or ``aborted`` (production moved while this promotion was
    scoring: nothing was changed; run it again).
    """

    model: str
    metric: str
    min_delta: float
    minimums: dict[str, float]
    action: str
    reason: str
    production_before: str | None
    chosen: str | None
    candidates: list[CandidateScore]
    holdout_uri: str = ""
    holdout_sha256: str = ""
    holdout_target: str = "target"
    decision_id: str = ""
    decided_at: str = ""
    dry_run: bool = False
    production_after: str | None = None
    previous_production: str | None = None
    record_uri: str | None = None
    generation: int = 0

    def candidate(self, version: str | None) -> CandidateScore | None:
        return next((c for c in self.candidates if c.version == version), None)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "candidates"}
        data["candidates"] = [c.to_dict() for c in self.candidates]
        return data


def _decide(candidates: list[CandidateScore], production: CandidateScore | None, *,
            metric: str, min_delta: float) -> tuple[str, CandidateScore | None, str]:
    """The gate: (action, chosen, reason). Pure: the same scores give the same decision."""
    eligible = sorted((c for c in candidates if c.role == "candidate" and c.status == "scored"),
                      key=lambda c: (c.scores[metric], int(c.version)), reverse=True)
    if not eligible:
        why = "no candidate version" if not candidates or all(
            c.role == "production" for c in candidates) else "no candidate passed the checks"
        if production is None:
            return "keep", None, f"{why}; there is no production version yet"
        return "keep", None, f"{why}; production stays v{production.version}"
    best = eligible[0]
    value = best.scores[metric]
    if production is None:
        return "promote", best, (f"no production version yet; v{best.version} has the best "
                                 f"{metric} ({value:.4f})")
    if production.status == "refused":
        return "promote", best, (f"production v{production.version} was refused "
                                 f"({production.reason}); v{best.version} has the best "
                                 f"{metric} ({value:.4f})")
    current = production.scores[metric]
    delta = value - current
    if delta <= _EPS:
        kind = "ties" if abs(delta) <= _EPS else "does not beat"
        return "keep", None, (f"best candidate v{best.version} ({metric} {value:.4f}) {kind} "
                              f"production v{production.version} ({current:.4f}); "
                              "production stays")
    if delta < min_delta - _EPS:
        return "keep", None, (f"best candidate v{best.version} ({metric} {value:.4f}) beats "
                              f"production v{production.version} ({current:.4f}) by "
                              f"{delta:.4f}, less than min_delta {min_delta:g}; production stays")
    return "promote", best, (f"v{best.version} ({metric} {value:.4f}) beats production "
                             f"v{production.version} ({current:.4f}) by {delta:.4f} "
                             f">= min_delta {min_delta:g}")


def _registered_model(client: Any, model: str) -> Any:
    try:
        return client.get_registered_model(model)
    except Exception as exc:
        if _code(exc) == "RESOURCE_DOES_NOT_EXIST":
            raise BadInputError(f"registered model {model!r} not found in the registry; "
                                "check the name (MLflow UI, Models tab)") from None
        raise TrackingError(f"reading registered model {model!r} failed: {_short(exc)}") \
            from exc


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", "") or "")


def _versions(client: Any, model: str) -> list[Any]:
    found = client.search_model_versions(f"name = '{_quote(model)}'", max_results=10_000)
    return [v for v in found if str(getattr(v, "status", "READY")) == "READY"]


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _holdout_from_tags(versions: list[Any]) -> Holdout:
    for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
        tags = dict(version.tags or {})
        if tags.get(HOLDOUT_URI_TAG) and tags.get(HOLDOUT_SHA_TAG):
            return load_holdout(tags[HOLDOUT_URI_TAG], tags[HOLDOUT_SHA_TAG],
                                target=tags.get(HOLDOUT_TARGET_TAG, "target"))
    raise BadInputError("no hold-out set: no candidate version names one (tag "
                        f"{HOLDOUT_URI_TAG}); pass the hold-out set explicitly")


def _check_metric(metric: str, minimums: dict[str, float]) -> None:
    for name in (metric, *minimums):
        if name not in METRICS:
            raise BadInputError(f"unknown metric {name!r}; use one of {', '.join(METRICS)}")
    for name, value in minimums.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise BadInputError(f"minimum for {name} must be a number, got {value!r}")


def plan_promotion(
    tracker: Tracker, model: str, *, holdout: Holdout | None = None, metric: str = "f1",
    min_delta: float = 0.0, minimums: dict[str, float] | None = None,
    include_all: bool = False,
) -> PromotionDecision:
    """Score the candidates and decide; change nothing.

    Args:
        tracker: the MLflow connection.
        model: the registered model's name.
        holdout: the rows to score on; by default the hold-out set named by the newest
            candidate's tags (``conveyor.holdout.uri`` and ``.sha256``).
        metric: the metric the gate compares (macro-averaged): accuracy, f1, precision, recall.
        min_delta: how much the best candidate must beat production by.
        minimums: absolute floors per metric; a candidate below one is not eligible.
        include_all: consider every version, not only those new since the last promotion.

    Raises:
        BadInputError: unknown model or metric, or no hold-out set.
        TrackingError: the registry failed.
    """
    minimums = dict(minimums or {})
    _check_metric(metric, minimums)
    if min_delta < 0 or not math.isfinite(min_delta):
        raise BadInputError(f"min_delta must be a number >= 0, got {min_delta!r}")
    client = tracker.client
    registered = _registered_model(client, model)
    aliases = dict(registered.aliases or {})
    production = str(aliases[PRODUCTION]) if PRODUCTION in aliases else None
    generation = _generation(registered)
    seen = 0 if include_all else int((registered.tags or {}).get(SEEN_TAG, 0) or 0)
    versions = _versions(client, model)
    chosen = [v for v in versions
              if str(v.version) == production or int(v.version) > seen]
    if holdout is None and chosen:
        holdout = _holdout_from_tags(chosen)
    scored: list[CandidateScore] = []
    for version in sorted(chosen, key=lambda v: int(v.version)):
        assert holdout is not None
        role = "production" if str(version.version) == production else "candidate"
        result = _score_version(tracker, model, version, holdout, role)
        if result.status == "scored":
            low = [f"{name} {result.scores[name]:.4f} < {floor:g}"
                   for name, floor in minimums.items() if result.scores[name] < floor - _EPS]
            if low:
                result.status, result.reason = "below_minimum", "; ".join(low)
        scored.append(result)
    current = next((c for c in scored if c.role == "production"), None)
    if production is not None and current is None:
        current = CandidateScore(version=production, role="production", status="refused",
                                 reason="the version is missing or not READY")
        scored.insert(0, current)
    action, best, reason = _decide(scored, current, metric=metric, min_delta=min_delta)
    now = datetime.now(UTC)
    return PromotionDecision(
        model=model, metric=metric, min_delta=min_delta, minimums=minimums, action=action,
        reason=reason, production_before=production, chosen=best.version if best else None,
        candidates=scored, holdout_uri=holdout.uri if holdout else "",
        holdout_sha256=holdout.sha256 if holdout else "",
        holdout_target=holdout.target if holdout else "target",
        decision_id=f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
        decided_at=now.isoformat(timespec="seconds"), production_after=production,
        previous_production=None, generation=generation,
    )


def _generation(registered: Any) -> int:
    """How many times ``production`` was moved by Conveyor (promotion or rollback)."""
    try:
        return int((registered.tags or {}).get(GENERATION_TAG, 0) or 0)
    except ValueError:
        return 0


# --------------------------------------------------------------------------- the lock


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
                if _code(exc) != "RESOURCE_ALREADY_EXISTS" and not _transient(exc):
                    raise TrackingError(f"taking the lock {self.name!r} failed: "
                                        f"{_short(exc)}") from exc
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
            if _code(exc) == "RESOURCE_DOES_NOT_EXIST" or _transient(exc):
                return None
            raise TrackingError(f"reading the lock {self.name!r} failed: {_short(exc)}") \
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
            log.debug("breaking %s lost: %s", self.name, _short(exc))
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
            if _code(exc) == "RESOURCE_DOES_NOT_EXIST":
                return
            raise TrackingError(f"releasing the lock {self.name!r} failed: {_short(exc)}; "
                                f"it expires after {self.ttl:g}s") from exc

    def __enter__(self) -> RegistryLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _transient(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "temporarily unavailable" in text


# --------------------------------------------------------------------------- commit


def _record_store(store: Store | None) -> Store:
    return store or Store((home_dir() / "artifacts").as_uri())


def _record_key(model: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", model).strip(".-")[:64]
    return safe if safe and safe == model else f"{safe or 'model'}-" \
        f"{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def _write_record(store: Store | None, kind: str, model: str, data: dict[str, Any]) -> str:
    target = _record_store(store)
    uri = target.uri("_registry", _record_key(model), kind, f"{data['decision_id']}.json")
    target.put_json(uri, data)
    return uri


def _check_batch(tracker: Tracker, decision: PromotionDecision, chosen: CandidateScore,
                 holdout: Holdout, rows: int) -> str:
    """Load the chosen version as a client would and score a check batch; '' if it passes."""
    import mlflow.pyfunc

    tracker.client  # noqa: B018 - sets the registry URI models:/ reads
    try:
        loaded = mlflow.pyfunc.load_model(f"models:/{decision.model}/{chosen.version}")
        got = _as_array(loaded.predict(holdout.X.iloc[:rows]))
    except Exception as exc:  # noqa: BLE001 - any failure refuses the version
        return f"check batch: loading from the registry failed: {_short(exc)}"
    expected = chosen.predictions[:rows]
    if len(got) != len(expected) or any(str(a) != str(b) for a, b in zip(got, expected,
                                                                           strict=False)):
        return "check batch: predictions from the registry differ from those scored"
    return ""


def commit_promotion(
    tracker: Tracker, decision: PromotionDecision, *, holdout: Holdout | None = None,
    store: Store | None = None, owner: str | None = None, check_rows: int = 10,
    lock_ttl: float = 120.0, lock_wait: float = 60.0,
) -> PromotionDecision:
    """Carry out a plan: check batch, then compare-and-set the alias under the registry lock.

    Args:
        tracker: the MLflow connection.
        decision: a plan from :func:`plan_promotion` (changed in place and returned).
        holdout: the plan's hold-out set (read again from its URI when omitted).
        store: where the decision record goes (default: ``CONVEYOR_HOME/artifacts``).
        owner: who promotes (lock owner, tags).
        check_rows: rows of the check batch.
        lock_ttl: seconds after which a dead promoter's lock may be broken.
        lock_wait: seconds to wait for a running promotion or rollback.

    Returns:
        The decision with ``action`` ``promoted``, ``kept`` or ``aborted``.
    """
    client = tracker.client
    if decision.action == "promote":
        if holdout is None:
            holdout = load_holdout(decision.holdout_uri, decision.holdout_sha256,
                                   target=decision.holdout_target)
        while decision.action == "promote":
            chosen = decision.candidate(decision.chosen)
            assert chosen is not None
            problem = _check_batch(tracker, decision, chosen, holdout, check_rows)
            if not problem:
                break
            chosen.status, chosen.reason = "refused", problem
            current = next((c for c in decision.candidates if c.role == "production"), None)
            action, best, reason = _decide(decision.candidates, current,
                                           metric=decision.metric, min_delta=decision.min_delta)
            decision.action, decision.reason = action, f"v{chosen.version} refused ({problem}); "\
                + reason
            decision.chosen = best.version if best else None
    evaluated = [int(c.version) for c in decision.candidates if c.role == "candidate"]
    with RegistryLock(client, decision.model, owner=owner, ttl=lock_ttl, wait=lock_wait):
        registered = client.get_registered_model(decision.model)
        aliases = dict(registered.aliases or {})
        current = str(aliases[PRODUCTION]) if PRODUCTION in aliases else None
        generation = _generation(registered)
        # compare the version *and* the generation: a promotion then a rollback puts the
        # same version back (A-B-A), and a plan made before them must not pass
        if current != decision.production_before or generation != decision.generation:
            decision.action = "aborted"
            decision.reason = (f"production moved ({_v(decision.production_before)} at "
                               f"generation {decision.generation}, now {_v(current)} at "
                               f"generation {generation}) while this promotion was scoring; "
                               f"nothing was changed (was going to: {decision.reason}); "
                               "run it again")
            decision.production_after = current
        elif decision.action == "promote" and decision.chosen is not None:
            client.set_registered_model_alias(decision.model, PRODUCTION, decision.chosen)
            if current is not None:
                client.set_registered_model_alias(decision.model, PREVIOUS, current)
            decision.generation = generation + 1
            client.set_registered_model_tag(decision.model, GENERATION_TAG,
                                            str(decision.generation))
            decision.action = "promoted"
            decision.production_after = decision.chosen
            decision.previous_production = current
        else:
            decision.action = "kept"
            decision.production_after = current
        if decision.action != "aborted" and evaluated:
            seen = int((client.get_registered_model(decision.model).tags or {}).get(
                SEEN_TAG, 0) or 0)
            client.set_registered_model_tag(decision.model, SEEN_TAG,
                                            str(max(seen, *evaluated)))
    decision.record_uri = _write_record(store, "promotions", decision.model, decision.to_dict())
    if decision.action != "aborted":
        _tag_versions(client, decision)
        client.set_registered_model_tag(decision.model, LAST_DECISION_TAG, decision.record_uri)
    log.info("promotion of %s: %s (%s)", decision.model, decision.action, decision.reason)
    return decision


def _tag_versions(client: Any, decision: PromotionDecision) -> None:
    for candidate in decision.candidates:
        tags = {"conveyor.promotion.decision": decision.decision_id,
                "conveyor.promotion.status": candidate.status}
        if candidate.scores:
            tags[f"conveyor.promotion.{decision.metric}"] = \
                f"{candidate.scores[decision.metric]:.6f}"
        if candidate.reason:
            tags["conveyor.promotion.note"] = candidate.reason[:4000]
        if candidate.version == decision.chosen and decision.action == "promoted":
            tags.update({"conveyor.promotion.promoted_at": decision.decided_at,
                         "conveyor.promotion.reason": decision.reason[:4000],
                         "conveyor.promotion.replaced": decision.previous_production or ""})
        for key, value in tags.items():
            try:
                client.set_model_version_tag(decision.model, candidate.version, key, value)
            except Exception as exc:  # noqa: BLE001 - a version deleted meanwhile
                log.warning("cannot tag %s v%s: %s", decision.model, candidate.version,
                            _short(exc))
                break


def _v(version: str | None) -> str:
    return f"v{version}" if version is not None else "nothing"


def promote(
    tracker: Tracker, model: str, *, holdout: Holdout | None = None, store: Store | None = None,
    metric: str = "f1", min_delta: float = 0.0, minimums: dict[str, float] | None = None,
    dry_run: bool = False, include_all: bool = False, check_rows: int = 10,
    owner: str | None = None, lock_ttl: float = 120.0, lock_wait: float = 60.0,
) -> PromotionDecision:
    """Score the candidates, decide, and (unless ``dry_run``) move ``production``.

    See :func:`plan_promotion` and :func:`commit_promotion` for the arguments. A dry run
    returns the plan (``action`` ``promote`` or ``keep``) and changes nothing.
    """
    decision = plan_promotion(tracker, model, holdout=holdout, metric=metric,
                              min_delta=min_delta, minimums=minimums, include_all=include_all)
    if dry_run:
        decision.dry_run = True
        return decision
    return commit_promotion(tracker, decision, holdout=holdout, store=store, owner=owner,
                            check_rows=check_rows, lock_ttl=lock_ttl, lock_wait=lock_wait)


# --------------------------------------------------------------------------- rollback


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
    client = tracker.client
    _registered_model(client, model)
    now = datetime.now(UTC)
    result = RollbackResult(model=model, action="none", reason="", production_before=None,
                            production_after=None,
                            decision_id=f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
                            decided_at=now.isoformat(timespec="seconds"))
    with RegistryLock(client, model, owner=owner, ttl=lock_ttl, wait=lock_wait):
        registered = client.get_registered_model(model)
        aliases = dict(registered.aliases or {})
        production = str(aliases[PRODUCTION]) if PRODUCTION in aliases else None
        previous = str(aliases[PREVIOUS]) if PREVIOUS in aliases else None
        result.production_before = result.production_after = production
        if production is None:
            raise BadInputError(f"{model!r} has no {PRODUCTION!r} alias: nothing to roll back "
                                "(promote a version first)")
        if previous is None or previous == production:
            result.reason = (f"nothing to roll back: production is v{production} and there is "
                             f"no {PREVIOUS} (already rolled back?)")
        else:
            client.set_registered_model_alias(model, PRODUCTION, previous)
            client.delete_registered_model_alias(model, PREVIOUS)
            client.set_registered_model_tag(model, GENERATION_TAG,
                                            str(_generation(registered) + 1))
            result.action = "rolled_back"
            result.production_after = previous
            result.reason = f"production moved back from v{production} to v{previous}"
    if result.action == "rolled_back":
        client.set_model_version_tag(model, result.production_before, "conveyor.rolled_back_at",
                                     result.decided_at)
        result.record_uri = _write_record(store, "rollbacks", model, result.to_dict())
        client.set_registered_model_tag(model, LAST_DECISION_TAG, result.record_uri)
    log.info("rollback of %s: %s", model, result.reason)
    return result
