"""The watcher's tasks: find new files, claim them, train each, reject failures.

Each function is one task of the ``iris_lab_train`` DAG and works from any process (state
lives in the Store and the registry, never in memory):

* :func:`pending_files` - the sensor's poke: are there settled, safe, unclaimed new files?
* :func:`claim_new` - scan and claim; returns JSON-able claims, one per mapped task;
* :func:`train_claim` - one mapped task: train the claimed bytes, record the outcome, and
  on bad input move the file to ``rejected/`` (then raise, failing only this task);
* :func:`process_inbox` - all of the above in one process (local runs and tests).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from conveyor.errors import BadInputError, ConveyorError
from conveyor.lab.inbox import Inbox, Skipped
from conveyor.lab.ledger import Claim, Ledger, default_owner
from conveyor.lab.spec import Lab
from conveyor.lab.train import LabSplit, TrainResult, lab_split, train_file

__all__ = ["ClaimBatch", "InboxReport", "claim_new", "inbox_for", "ledger_for",
           "pending_files", "process_inbox", "train_claim"]

log = logging.getLogger(__name__)


def inbox_for(lab: Lab) -> Inbox:
    watch = lab.spec.watch
    return Inbox(lab.inbox_uri, watch.storage_options, min_age=watch.min_age_seconds,
                 max_bytes=watch.max_bytes)


def ledger_for(lab: Lab) -> Ledger:
    return Ledger(lab.store(), lab.name, claim_ttl=lab.spec.watch.claim_ttl_seconds)


@dataclass
class ClaimBatch:
    """The result of one claiming pass.

    Attributes:
        claims: what this caller won (hand each to :func:`train_claim`).
        known: files whose content already has an outcome (name -> status): duplicates.
        taken: files claimed by someone else.
        rejected: files re-rejected because identical bytes were rejected before.
        skipped: entries that were not read, with the reason.
    """

    claims: list[Claim] = field(default_factory=list)
    known: dict[str, str] = field(default_factory=dict)
    taken: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"claims": [c.to_dict() for c in self.claims], "known": self.known,
                "taken": self.taken, "rejected": self.rejected,
                "skipped": [asdict(s) for s in self.skipped]}


def pending_files(lab: Lab) -> list[str]:
    """Names of settled, safe files whose content has neither an outcome nor a live claim."""
    ledger = ledger_for(lab)
    return [f.name for f in inbox_for(lab).scan().files if ledger.is_pending(f.sha256)]


def claim_new(lab: Lab, *, owner: str | None = None) -> ClaimBatch:
    """Scan the inbox and claim every new content hash (one winner per hash, any process).

    Byte-identical files share a hash, so only one of them is claimed and trained; the
    others are reported as known once it has an outcome.
    """
    owner = owner or default_owner()
    inbox, ledger = inbox_for(lab), ledger_for(lab)
    scan = inbox.scan()
    batch = ClaimBatch(skipped=scan.skipped)
    for skipped in scan.skipped:
        log.info("inbox %s: skipped %r: %s", inbox.uri, skipped.name, skipped.reason)
    claimed: set[str] = set()
    for file in scan.files:
        outcome = ledger.outcome(file.sha256)
        if outcome is not None:
            batch.known[file.name] = str(outcome.get("status"))
            if outcome.get("status") == "rejected":
                inbox.reject(file.name, sha256=file.sha256, lab=lab.name,
                             error=f"identical to {outcome.get('file')!r}, rejected before: "
                                   f"{outcome.get('error')}")
                batch.rejected.append(file.name)
            continue
        if file.sha256 in claimed:  # a second copy in this very scan
            batch.known[file.name] = "duplicate"
            continue
        claim = ledger.claim(file.data, file=file.name, file_uri=file.uri, owner=owner)
        if claim is None:
            batch.taken.append(file.name)
            continue
        claimed.add(file.sha256)
        batch.claims.append(claim)
    log.info("inbox %s: %d claimed, %d known, %d taken by others, %d skipped", inbox.uri,
             len(batch.claims), len(batch.known), len(batch.taken), len(batch.skipped))
    return batch


def train_claim(lab: Lab, claim: Claim | dict[str, Any], *,
                split: LabSplit | None = None) -> TrainResult:
    """Train one claimed file and record the outcome in the ledger.

    Safe to run twice (an Airflow retry): the registry finds each config's version again.

    Raises:
        BadInputError: the file is invalid or failed to fit; it was moved to ``rejected/``
            with ``<name>.error.json`` and recorded, so it is never tried again.
        ConveyorRuntimeError: a transient failure (MLflow, the Store); nothing is recorded
            and the claim stays, so a retry trains it.
    """
    if isinstance(claim, dict):
        claim = Claim.from_dict(claim)
    ledger = ledger_for(lab)
    data = ledger.read_blob(claim)
    try:
        result = train_file(lab, data, claim.file, split=split)
    except BadInputError as exc:
        report = inbox_for(lab).reject(claim.file, sha256=claim.sha256, error=exc, lab=lab.name)
        ledger.record(claim, {"status": "rejected", "error": str(exc),
                              "error_type": type(exc).__name__, "report": report})
        raise
    ledger.record(claim, {"status": "trained", "model": result.model_name,
                          "versions": result.versions,
                          "configs": [c.name for c in result.configs]})
    return result


@dataclass
class InboxReport:
    """What one pass over the inbox did (JSON-able through :meth:`to_dict`)."""

    batch: ClaimBatch
    trained: list[TrainResult] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def versions(self) -> list[str]:
        return [v for result in self.trained for v in result.versions]

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch.to_dict(), "trained": [r.to_dict() for r in self.trained],
                "rejected": self.rejected, "failed": self.failed, "versions": self.versions}


def process_inbox(lab: Lab, *, owner: str | None = None) -> InboxReport:
    """Claim and train every new file in this process; a failing file does not stop others."""
    batch = claim_new(lab, owner=owner)
    report = InboxReport(batch=batch, rejected={name: "identical to a rejected file"
                                                for name in batch.rejected})
    split = lab_split(lab) if batch.claims else None
    for claim in batch.claims:
        try:
            report.trained.append(train_claim(lab, claim, split=split))
        except BadInputError as exc:
            report.rejected[claim.file] = str(exc)
        except ConveyorError as exc:
            log.error("training %s failed (the next pass retries it): %s", claim.file, exc)
            report.failed[claim.file] = str(exc)
            ledger_for(lab).release(claim)
    return report
