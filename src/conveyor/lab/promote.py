"""Promotion for a lab: the spec's metric, minimums and hold-out set, the registry's lock.

The promotion itself (scoring, the gate, compare-and-set on the alias, rollback) lives in
:mod:`conveyor.promotion`; this module supplies what a spec decides. A spec given to
``conveyor promote --spec`` is either a lab spec (model name, tracking, store, hold-out set
and the ``promotion:`` rules) or a pipeline spec (``registry.name``, tracking and store; the
hold-out set is the one its versions name): :func:`registry_target` reads either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.errors import SpecError
from conveyor.lab.spec import Lab, load_lab
from conveyor.lab.train import TARGET, lab_split, publish_holdout
from conveyor.promotion import (
    Holdout,
    PromotionDecision,
    RollbackResult,
    load_holdout,
    promote,
    rollback,
)
from conveyor.spec import load_spec, read_yaml
from conveyor.store import Store, home_dir, to_uri
from conveyor.tracking import Tracker

__all__ = ["RegistryTarget", "lab_holdout", "promote_lab", "registry_target", "rollback_lab"]


def lab_holdout(lab: Lab) -> Holdout:
    """The lab's hold-out set (published once, read back hash-checked)."""
    ref = publish_holdout(lab, lab_split(lab))
    return load_holdout(ref.uri, ref.sha256, target=TARGET,
                        storage_options=lab.spec.store.storage_options)


def promote_lab(lab: Lab, *, dry_run: bool = False, owner: str | None = None,
                include_all: bool = False, metric: str | None = None,
                min_delta: float | None = None, minimums: dict[str, float] | None = None,
                check_rows: int | None = None) -> PromotionDecision:
    """Score the lab model's candidates on the lab's hold-out set and promote the best.

    The spec's ``promotion:`` rules apply; an argument given here replaces its rule.

    Returns:
        The decision: ``promoted``, ``kept`` or ``aborted`` (``promote``/``keep`` for a dry
        run). An aborted promotion changed nothing; run it again.
    """
    rules = lab.spec.promotion
    return promote(
        Tracker(lab.tracking_uri, lab.experiment), lab.spec.model_name,
        holdout=lab_holdout(lab), store=lab.store(),
        metric=metric or rules.metric,
        min_delta=rules.min_delta if min_delta is None else min_delta,
        minimums=dict(rules.minimums) if minimums is None else minimums,
        dry_run=dry_run, include_all=include_all,
        check_rows=rules.check_rows if check_rows is None else check_rows, owner=owner,
    )


def rollback_lab(lab: Lab, *, owner: str | None = None) -> RollbackResult:
    """Move the lab model's ``production`` back to ``previous_production`` (idempotent)."""
    return rollback(Tracker(lab.tracking_uri, lab.experiment), lab.spec.model_name,
                    store=lab.store(), owner=owner)


@dataclass(frozen=True)
class RegistryTarget:
    """The registered model a spec names, and where its registry and records are.

    Attributes:
        kind: ``lab`` or ``pipeline``.
        model: the registered model's name.
        tracking_uri: the MLflow tracking URI (``None``: the embedded default).
        experiment: the spec's MLflow experiment.
        store: where decision records go.
        rules: the spec's promotion rules (a lab's ``promotion:``; empty for a pipeline).
        lab: the loaded lab (a lab spec only): its hold-out set is computed, not looked up.
    """

    kind: str
    model: str
    tracking_uri: str | None
    experiment: str
    store: Store
    rules: dict[str, Any] = field(default_factory=dict)
    lab: Lab | None = None


def registry_target(path: str | Path) -> RegistryTarget:
    """Read a lab spec or a pipeline spec for ``conveyor promote`` / ``rollback``.

    A lab spec is told apart by its ``watch:`` section (a pipeline spec has none).

    Raises:
        SpecError: the file is not a valid spec, or a pipeline spec without
            ``registry.name``.
    """
    file = Path(path)
    data, _ = read_yaml(file)
    if isinstance(data, dict) and "watch" in data:
        lab = load_lab(file)
        rules = lab.spec.promotion
        return RegistryTarget(
            kind="lab", model=lab.spec.model_name, tracking_uri=lab.tracking_uri,
            experiment=lab.experiment, store=lab.store(), lab=lab,
            rules={"metric": rules.metric, "min_delta": rules.min_delta,
                   "minimums": dict(rules.minimums), "check_rows": rules.check_rows})
    loaded = load_spec(file)
    spec = loaded.spec
    if not spec.registry.name:
        raise SpecError("the pipeline registers no model (registry.name is not set); "
                        "nothing to promote", file=str(file), key="registry.name")
    root = (to_uri(spec.store.root, loaded.base_dir) if spec.store.root
            else (home_dir() / "artifacts").as_uri())
    return RegistryTarget(kind="pipeline", model=spec.registry.name,
                          tracking_uri=spec.tracking.uri,
                          experiment=spec.tracking.experiment or spec.name,
                          store=Store(root, spec.store.storage_options))
