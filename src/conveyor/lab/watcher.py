"""The watcher's tasks: find new files, claim them, train each, reject failures.

Each function is one task of the ``iris_lab_train`` DAG and works from any process (state
lives in the Store and the registry, never in memory):

* :func:`pending_files` - the sensor's poke: are there settled, safe, unclaimed new files?
* :func:`claim_new` - scan and claim; returns JSON-able claims, one per mapped task;
* :func:`train_claim` - one mapped task: train the claimed bytes (read and fitted in a child
  process under ``watch.file_time_limit_seconds``), record the outcome, and on bad input of
  any kind move the file to ``rejected/`` (then raise, failing only this task);
* :func:`process_inbox` - all of the above in one process (local runs and tests); each file
  succeeds, is rejected or is released for the next pass on its own.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from conveyor.errors import BadInputError, ConveyorError, ConveyorRuntimeError
from conveyor.lab.inbox import Inbox, InboxFile, Skipped
from conveyor.lab.ledger import Claim, Ledger, default_owner
from conveyor.lab.spec import Lab
from conveyor.lab.train import LabSplit, TrainResult, fit_worker, lab_split, train_file
from conveyor.lab.worker import FitWorker, TimeLimitError

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
        errors: files that could not be checked or claimed (name -> error); not recorded,
            so the next pass tries them again.
    """

    claims: list[Claim] = field(default_factory=list)
    known: dict[str, str] = field(default_factory=dict)
    taken: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"claims": [c.to_dict() for c in self.claims], "known": self.known,
                "taken": self.taken, "rejected": self.rejected,
                "skipped": [asdict(s) for s in self.skipped], "errors": self.errors}


def _superseded(lab: Lab, outcome: dict[str, Any]) -> bool:
    """Whether a recorded outcome no longer holds: the content ran out of time under a lower
    limit than the lab's current one (the user raised it, so the content may try again)."""
    limit = outcome.get("time_limit")
    return (outcome.get("status") == "rejected" and isinstance(limit, (int, float))
            and limit < lab.spec.watch.file_time_limit_seconds)


def pending_files(lab: Lab) -> list[str]:
    """Names of settled, safe files whose content has neither an outcome nor a live claim.

    A file whose ledger entries cannot be read counts as pending, so that :func:`claim_new`
    reports it rather than the sensor hiding it.
    """
    ledger = ledger_for(lab)
    pending = []
    for file in inbox_for(lab).scan().files:
        try:
            outcome = ledger.outcome(file.sha256)
            ready = ledger.is_pending(file.sha256, supersede=outcome is not None
                                      and _superseded(lab, outcome))
        except Exception as exc:  # noqa: BLE001 - one file's entry must not hide the others
            log.warning("inbox %s: cannot check %r: %s", lab.inbox_uri, file.name, exc)
            ready = True
        if ready:
            pending.append(file.name)
    return pending


def claim_new(lab: Lab, *, owner: str | None = None) -> ClaimBatch:
    """Scan the inbox and claim every new content hash (one winner per hash, any process).

    Byte-identical files share a hash, so only one of them is claimed and trained; the
    others are reported as known once it has an outcome. A file that cannot be checked or
    claimed (the Store refused) is reported in ``errors`` and left for the next pass; the
    others go on.

    Raises:
        ConveyorRuntimeError: every file failed so (the Store is down): worth a retry.
    """
    owner = owner or default_owner()
    inbox, ledger = inbox_for(lab), ledger_for(lab)
    scan = inbox.scan()
    batch = ClaimBatch(skipped=scan.skipped)
    for skipped in scan.skipped:
        log.info("inbox %s: skipped %r: %s", inbox.uri, skipped.name, skipped.reason)
    claimed: set[str] = set()
    for file in scan.files:
        try:
            _claim_one(lab, inbox, ledger, file, batch, claimed, owner)
        except Exception as exc:  # noqa: BLE001 - one file's failure never ends the pass
            log.error("inbox %s: cannot claim %r (the next pass tries again): %s", inbox.uri,
                      file.name, exc)
            batch.errors[file.name] = f"{type(exc).__name__}: {exc}"
    log.info("inbox %s: %d claimed, %d known, %d taken by others, %d skipped, %d errors",
             inbox.uri, len(batch.claims), len(batch.known), len(batch.taken),
             len(batch.skipped), len(batch.errors))
    if batch.errors and len(batch.errors) == len(scan.files):
        name, error = next(iter(batch.errors.items()))
        raise ConveyorRuntimeError(f"no file of {inbox.uri} could be claimed; {name}: {error}")
    return batch


def _claim_one(lab: Lab, inbox: Inbox, ledger: Ledger, file: InboxFile, batch: ClaimBatch,
               claimed: set[str], owner: str) -> None:
    outcome = ledger.outcome(file.sha256)
    supersede = outcome is not None and _superseded(lab, outcome)
    if outcome is not None and not supersede:
        batch.known[file.name] = str(outcome.get("status"))
        if outcome.get("status") == "rejected":
            inbox.reject(file.name, sha256=file.sha256, lab=lab.name,
                         error=f"identical to {outcome.get('file')!r}, rejected before: "
                               f"{outcome.get('error')}")
            batch.rejected.append(file.name)
        return
    if file.sha256 in claimed:  # a second copy in this very scan
        batch.known[file.name] = "duplicate"
        return
    claim = ledger.claim(file.data, file=file.name, file_uri=file.uri, owner=owner,
                         supersede=supersede)
    if claim is None:
        batch.taken.append(file.name)
        return
    claimed.add(file.sha256)
    batch.claims.append(claim)


def train_claim(lab: Lab, claim: Claim | dict[str, Any], *, split: LabSplit | None = None,
                worker: FitWorker | None = None) -> TrainResult:
    """Train one claimed file and record the outcome in the ledger.

    Safe to run twice (an Airflow retry): the registry finds each config's version again.

    Args:
        lab: the lab.
        claim: the claim (or its :meth:`~conveyor.lab.ledger.Claim.to_dict`, from XCom).
        split: the lab's split; made here when omitted.
        worker: the child process that reads and fits under the lab's per-file time limit;
            one is started for this call when omitted.

    Raises:
        BadInputError: the file is invalid, failed to fit or ran out of time (whatever the
            cause: a parser's own ``ValueError`` too); it was moved to ``rejected/`` with
            ``<name>.error.json`` and recorded, so it is never tried again.
        ConveyorRuntimeError: a transient failure (MLflow, the Store, the training process
            could not start); nothing is recorded and the claim stays, so a retry trains it.
    """
    if isinstance(claim, dict):
        claim = Claim.from_dict(claim)
    ledger = ledger_for(lab)
    data = ledger.read_blob(claim)
    split = split or lab_split(lab)  # the lab's own data: a failure here is not the file's
    try:
        result = train_file(lab, data, claim.file, split=split, worker=worker)
    except BadInputError as exc:
        _reject(lab, ledger, claim, exc)
        raise
    ledger.record(claim, {"status": "trained", "model": result.model_name,
                          "versions": result.versions,
                          "configs": [c.name for c in result.configs]})
    return result


def _reject(lab: Lab, ledger: Ledger, claim: Claim, error: BadInputError) -> None:
    """Record the file as rejected and move it aside with its ``.error.json``."""
    outcome: dict[str, Any] = {"status": "rejected", "error": str(error),
                               "error_type": type(error).__name__, "report": None}
    if isinstance(error, TimeLimitError):  # a higher limit later lets the content try again
        outcome["time_limit"] = lab.spec.watch.file_time_limit_seconds
    try:
        outcome["report"] = inbox_for(lab).reject(claim.file, sha256=claim.sha256,
                                                  error=error, lab=lab.name)
    except ConveyorError as exc:
        # the outcome is known all the same; the next scan finds the file still there and
        # moves it aside then (claim_new re-rejects content recorded as rejected)
        log.error("%s was rejected but could not be moved aside: %s", claim.file, exc)
    ledger.record(claim, outcome)


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
    """Claim and train every new file in this process; each file succeeds or fails alone.

    One child process reads and fits the files one after another, each within
    ``watch.file_time_limit_seconds`` (a file over it is stopped and rejected). A file that
    is bad in any way is rejected (``report.rejected``); a transient failure (MLflow, the
    Store) releases that file's claim for the next pass (``report.failed``). Either way the
    pass goes on with the next file.
    """
    batch = claim_new(lab, owner=owner)
    report = InboxReport(batch=batch, rejected={name: "identical to a rejected file"
                                                for name in batch.rejected})
    if not batch.claims:
        return report
    ledger = ledger_for(lab)
    unfinished = list(batch.claims)
    try:
        with fit_worker(lab) as worker:
            worker.start()  # the child imports while the split is made
            split = lab_split(lab)
            for claim in batch.claims:
                try:
                    report.trained.append(train_claim(lab, claim, split=split, worker=worker))
                except BadInputError as exc:
                    report.rejected[claim.file] = str(exc)
                except Exception as exc:  # one file's failure never ends the pass
                    log.error("training %s failed (the next pass retries it): %s",
                              claim.file, exc)
                    log.debug("training %s failed", claim.file, exc_info=True)
                    report.failed[claim.file] = f"{type(exc).__name__}: {exc}" \
                        if not isinstance(exc, ConveyorError) else str(exc)
                    _release(ledger, claim)
                unfinished.remove(claim)
    finally:
        # interrupted (or the lab's own data failed): give the untouched claims back at once
        # rather than making the next pass wait for their expiry
        for claim in unfinished:
            _release(ledger, claim)
    return report


def _release(ledger: Ledger, claim: Claim) -> None:
    try:
        ledger.release(claim)
    except Exception as exc:  # noqa: BLE001 - it expires on its own; the pass goes on
        log.warning("could not release the claim on %s (it expires after the claim TTL): "
                    "%s", claim.file, exc)
