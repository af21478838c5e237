"""Hyper-parameter search over one or more candidate models, on the same folds.

``grid`` and ``random`` are scikit-learn's ``GridSearchCV``/``RandomizedSearchCV`` (the
folds and scorer of :func:`conveyor.modeling.training.fit_model`; random search draws a range
from a scipy.stats law, :func:`sampled`); ``optuna`` is a
Bayesian search: one seeded TPE study per candidate, asked and told in turn (trial 0 is the
first candidate's, trial 1 the second's, ...), so every candidate gets its share of the
trial budget and of the time budget, and a search stopped by its time budget has tried each
candidate at least once. Each fold's running mean is reported to the study, so a median
pruner can stop a trial whose first folds lag behind (ADR 0039).

Pure: no Store, no MLflow. The result carries the fitted best model, one record per trial
and the search record ("Contract A" of docs/training.md) that the train step writes and
hands to the tracker, which logs every trial as a child run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from conveyor.errors import DataError
from conveyor.spec.models import LOWER_IS_BETTER
from conveyor.spec.space import ParamRange

__all__ = ["SearchCandidate", "SearchResult", "TrialRecord", "direction", "history_plot",
           "make_folds", "run_search"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchCandidate:
    """One model to tune: its name, its unfitted pipeline (last step ``model``), its space."""

    name: str
    estimator: str
    pipeline: Any
    space: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrialRecord:
    """One trial: what it tried and what it scored (``cv_mean`` is ``None`` unless complete).

    ``scores`` are the folds it finished (a pruned trial stops early), in the metric's own
    units (log loss as a positive number).
    """

    number: int
    candidate: str
    params: dict[str, Any]
    cv_mean: float | None
    cv_std: float | None
    state: str  # complete | pruned | failed
    seconds: float
    scores: list[float] = field(default_factory=list)
    error: str | None = None


@dataclass
class SearchResult:
    """What a search found: the refitted best model, and the search record."""

    model: Any
    record: dict[str, Any]
    trials: list[TrialRecord]

    @property
    def best(self) -> dict[str, Any]:
        return self.record["best"]


def direction(metric: str) -> str:
    """``minimize`` for a metric in :data:`LOWER_IS_BETTER`, else ``maximize``.

    >>> direction("f1"), direction("log_loss")
    ('maximize', 'minimize')
    """
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"


def make_folds(X: Any, y: Any, *, cv: int, seed: int, stratify: bool = True) -> list[Any]:
    """The folds every candidate is scored on: shuffled, seeded, stratified on ``y``
    (unless ``stratify`` is false or the target is continuous).

    Raises:
        DataError: too few rows (or rows of a class) for ``cv`` folds.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    continuous = getattr(y, "dtype", None) is not None and y.dtype.kind == "f" \
        and y.nunique() > max(20, len(y) // 10)
    splitter = (StratifiedKFold if stratify and not continuous else KFold)(
        n_splits=cv, shuffle=True, random_state=seed)
    try:
        return list(splitter.split(X, y))
    except ValueError as exc:
        raise DataError(f"cannot make {cv} cross-validation folds of {len(y)} training rows: "
                        f"{exc}") from None


def _fold_scorer(metric: str, positive: Any) -> Callable[[Any, Any, Any], float]:
    """A scorer returning the metric in its own units (log loss positive, not negated).

    Accuracy, and precision, recall, F1 and specificity of a positive class, are counted
    from the predicted labels (:func:`~conveyor.modeling.metrics.label_metric_rows`: the same
    integer counts and the same one division as scikit-learn, so the same float); sklearn's
    scorer checked its inputs for a few milliseconds per fold, as long as a small model's fit
    (ADR 0052). Anything else, or labels it would refuse, goes through sklearn's scorer.
    """
    from sklearn.metrics import get_scorer

    from conveyor.modeling.metrics import scorer

    score = get_scorer(scorer(metric, positive))
    sign = getattr(score, "_sign", 1)

    def natural(model: Any, X: Any, y: Any) -> float:
        return float(score(model, X, y)) * sign

    counted = metric == "accuracy" or (
        positive is not None and metric in ("precision", "recall", "f1", "specificity"))
    if not counted:
        natural.sign = sign  # type: ignore[attr-defined]
        return natural

    import numpy as np

    from conveyor.modeling.metrics import label_metric_rows

    def from_labels(model: Any, X: Any, y: Any) -> float:
        y_true, y_pred = np.asarray(y), np.asarray(model.predict(X))
        if metric != "accuracy":
            seen = {*y_true.tolist(), *y_pred.tolist()}
            if len(seen) > 2 or (len(seen) == 2 and positive not in seen):
                return natural(model, X, y)  # sklearn's own error, or its multiclass rule
        return float(label_metric_rows(y_true, y_pred[np.newaxis], metric,
                                       positive=positive)[0])

    from_labels.sign = sign  # type: ignore[attr-defined]
    return from_labels


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def run_search(candidates: Sequence[SearchCandidate], X: Any, y: Any, *, tune: Any,
               seed: int, positive: Any = None) -> SearchResult:
    """Tune each candidate on the same folds, pick the best by ``tune.metric``, refit it.

    Args:
        candidates: the models (their spaces: lists, or :class:`ParamRange` for random and
            optuna).
        X, y: the training split.
        tune: a ``TuneSpec`` (method, metric, cv, budgets, pruning, n_jobs, seed).
        seed: the folds' seed (the spec's ``split.seed``); the sampler's unless
            ``tune.seed`` is set.
        positive: the positive label for binary scorers (``None``: macro averages).

    Raises:
        DataError: the folds cannot be made, or every trial of every candidate failed.
    """
    from conveyor.modeling.lean_median import lean_fitting

    started = time.perf_counter()
    folds = make_folds(X, y, cv=tune.cv, seed=seed, stratify=tune.stratify)
    score = _fold_scorer(tune.metric, positive)
    with lean_fitting(*(c.pipeline for c in candidates)):  # median imputers: ADR 0056
        if tune.method == "optuna":
            trials, stopped_by = _optuna(candidates, X, y, folds, score, tune,
                                         seed if tune.seed is None else tune.seed)
        else:
            trials, stopped_by = _sklearn(candidates, X, y, folds, tune, seed, positive, score)
    goal = direction(tune.metric)
    table = [_candidate_row(c, trials, goal) for c in candidates]
    scored = [row for row in table if row["cv_mean"] is not None]
    if not scored:
        first = next((t.error for t in trials if t.error), "no trial completed")
        raise DataError(f"every trial of the search failed; the first error: {first}")
    pick = (min if goal == "minimize" else max)(scored, key=lambda row: row["cv_mean"])
    chosen = next(c for c in candidates if c.name == pick["name"])
    from sklearn.base import clone

    model = clone(chosen.pipeline).set_params(
        **{f"model__{k}": v for k, v in pick["best_params"].items()})
    try:
        with lean_fitting(model):
            model.fit(X, y)
    except ValueError as exc:
        raise DataError(f"fitting {chosen.estimator} with the best params failed: {exc}") \
            from None
    record = {
        "method": tune.method, "metric": tune.metric, "direction": goal, "cv": tune.cv,
        "n_trials": len(trials), "stopped_by": stopped_by,
        "seconds": round(time.perf_counter() - started, 3),
        "best": {"candidate": pick["name"], "estimator": chosen.estimator,
                 "params": pick["best_params"], "cv_mean": pick["cv_mean"],
                 "cv_std": pick["cv_std"]},
        "candidates": table,
        "trials": [{k: v for k, v in asdict(t).items() if k != "error" or v} for t in trials],
    }
    if tune.method == "optuna":
        record.update(budget={"n_trials": tune.n_trials, "timeout": tune.timeout},
                      pruning=tune.pruning, n_jobs=_jobs(tune.n_jobs))
    return SearchResult(model=model, record=record, trials=trials)


def _candidate_row(candidate: SearchCandidate, trials: list[TrialRecord],
                   goal: str) -> dict[str, Any]:
    mine = [t for t in trials if t.candidate == candidate.name]
    done = [t for t in mine if t.state == "complete" and t.cv_mean is not None]
    best = ((min if goal == "minimize" else max)(done, key=lambda t: t.cv_mean)
            if done else None)
    return {"name": candidate.name, "estimator": candidate.estimator,
            "best_params": best.params if best else {},
            "cv_mean": best.cv_mean if best else None, "cv_std": best.cv_std if best else None,
            "trials": len(mine), "complete": len(done),
            "pruned": sum(t.state == "pruned" for t in mine),
            "failed": sum(t.state == "failed" for t in mine)}


def _last_error(exc: BaseException) -> str:
    """scikit-learn's "all fits failed" message is a page of tracebacks: its last error line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "Error:" in line]
    return (errors[-1] if errors else lines[0] if lines else type(exc).__name__)[:400]


def _mean_std(scores: list[float]) -> tuple[float, float]:
    mean = sum(scores) / len(scores)
    return mean, math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))


# ----------------------------------------------------------------------- grid / random
def _sklearn(candidates: Sequence[SearchCandidate], X: Any, y: Any, folds: list[Any],
             tune: Any, seed: int, positive: Any,
             score: Any) -> tuple[list[TrialRecord], str]:
    """Grid or random search per candidate: scikit-learn's, on the shared folds."""
    from sklearn.model_selection import GridSearchCV, ParameterGrid, RandomizedSearchCV

    from conveyor.modeling.metrics import scorer

    trials: list[TrialRecord] = []
    stopped_by = "exhausted"
    for candidate in candidates:
        grid = {f"model__{k}": sampled(v) for k, v in candidate.space.items()}
        drawn = any(not isinstance(v, list) for v in grid.values())  # a continuous range
        if tune.method == "random" and (drawn or len(ParameterGrid(grid)) > tune.n_iter):
            stopped_by = "trials"
            search = RandomizedSearchCV(candidate.pipeline, grid, n_iter=tune.n_iter, cv=folds,
                                        scoring=scorer(tune.metric, positive),
                                        random_state=seed, n_jobs=1, refit=False)
        else:
            search = GridSearchCV(candidate.pipeline, grid, cv=folds, n_jobs=1, refit=False,
                                  scoring=scorer(tune.metric, positive))
        try:
            search.fit(X, y)
        except ValueError as exc:
            raise DataError(f"tuning {candidate.name} failed: {_last_error(exc)}") from None
        results = search.cv_results_
        sign = score.sign
        for i, params in enumerate(results["params"]):
            folds_scores = [float(results[f"split{k}_test_score"][i]) * sign
                            for k in range(len(folds))]
            ok = all(math.isfinite(s) for s in folds_scores)
            mean, std = _mean_std(folds_scores) if ok else (None, None)
            seconds = float(results["mean_fit_time"][i] + results["mean_score_time"][i]) \
                * len(folds)
            trials.append(TrialRecord(
                number=len(trials), candidate=candidate.name,
                params={k.removeprefix("model__"): _plain(v) for k, v in params.items()},
                cv_mean=mean, cv_std=std, state="complete" if ok else "failed",
                seconds=round(seconds, 4), scores=folds_scores if ok else [],
                error=None if ok else "a fit or score failed (scikit-learn scored it NaN)"))
    return trials, stopped_by


class _RoundedLogUniform:
    """Integers in ``[low, high]`` on a log scale, as Optuna's ``suggest_int(log=True)``:
    a log-uniform draw on ``[low - 0.5, high + 0.5]``, rounded (scipy has no such law)."""

    def __init__(self, low: int, high: int) -> None:
        from scipy.stats import loguniform

        self.low, self.high = low, high
        self._law = loguniform(max(low - 0.5, low / 2), high + 0.5)

    def rvs(self, size: Any = None, random_state: Any = None) -> Any:
        import numpy as np

        draws = np.clip(np.rint(self._law.rvs(size=size, random_state=random_state)),
                        self.low, self.high).astype(int)
        return draws if size is not None else int(draws)

    def __repr__(self) -> str:
        return f"int_loguniform({self.low}, {self.high})"


def sampled(value: Any) -> Any:
    """One hyper-parameter's space for scikit-learn's random search: a list stays a list of
    choices; a :class:`ParamRange` with ``step`` becomes the list of its points (as Optuna
    samples them), else a scipy.stats law: ``loguniform`` (``log: true``), ``uniform``
    (floats) or ``randint`` (integers, both bounds included).

    >>> sampled(ParamRange(low=1, high=9, step=4))
    [1, 5, 9]
    >>> sampled(ParamRange(low=0.5, high=1.0, step=0.25))
    [0.5, 0.75, 1.0]
    """
    if not isinstance(value, ParamRange):
        return list(value)
    if value.step is not None:
        count = math.floor((value.high - value.low) / value.step + 1e-9) + 1
        points = [value.low + i * value.step for i in range(count)]
        return points if value.kind == "int" else [round(p, 12) for p in points]
    from scipy import stats

    if value.kind == "int":
        return (_RoundedLogUniform(int(value.low), int(value.high)) if value.log
                else stats.randint(value.low, value.high + 1))
    if value.log:
        return stats.loguniform(value.low, value.high)
    return stats.uniform(value.low, value.high - value.low)


# ----------------------------------------------------------------------------- optuna
def _jobs(n_jobs: int) -> int:
    return max(1, os.cpu_count() or 1) if n_jobs == -1 else n_jobs


def _suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in space.items():
        if isinstance(value, ParamRange):
            suggest = trial.suggest_int if value.kind == "int" else trial.suggest_float
            extra = {"step": value.step} if value.step is not None else {}
            params[name] = suggest(name, value.low, value.high, log=value.log, **extra)
        elif all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
            params[name] = trial.suggest_categorical(name, list(value))
        else:  # lists or mappings as choices: Optuna stores primitives, so choose by index
            index = trial.suggest_categorical(name, [json.dumps(v) for v in value])
            params[name] = json.loads(index)
    return params


def _optuna(candidates: Sequence[SearchCandidate], X: Any, y: Any, folds: list[Any],
            score: Callable[[Any, Any, Any], float], tune: Any,
            seed: int) -> tuple[list[TrialRecord], str]:
    import optuna
    from sklearn.base import clone

    goal = direction(tune.metric)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per trial on the terminal
    studies = [optuna.create_study(
        direction=goal, study_name=c.name,
        sampler=optuna.samplers.TPESampler(seed=seed + i),
        pruner=(optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
                if tune.pruning else optuna.pruners.NopPruner()))
        for i, c in enumerate(candidates)]
    deadline = None if tune.timeout is None else time.monotonic() + tune.timeout
    lock = threading.Lock()
    trials: list[TrialRecord] = []
    state = {"started": 0, "stopped_by": "trials"}

    def ask() -> tuple[int, int, Any, dict[str, Any]] | None:
        with lock:
            number = state["started"]
            if number >= tune.n_trials:
                return None
            # each candidate's first trial runs whatever the clock says: a search stopped by
            # its time budget still has a scored model of every kind to choose from
            if deadline is not None and number >= len(candidates) \
                    and time.monotonic() >= deadline:
                state["stopped_by"] = "timeout"
                return None
            state["started"] += 1
            index = number % len(candidates)
            trial = studies[index].ask()
            return number, index, trial, _suggest(trial, candidates[index].space)

    prepared = _Prepared(X, y, folds)

    def run_one(number: int, index: int, trial: Any, params: dict[str, Any]) -> None:
        candidate = candidates[index]
        started = time.perf_counter()
        scores: list[float] = []
        outcome, error = "complete", None
        try:
            for step in range(len(folds)):
                X_train, y_train, X_test, y_test = prepared.fold(candidate.pipeline, step)
                model = clone(candidate.pipeline[-1]).set_params(**params)
                model.fit(X_train, y_train)
                value = score(model, X_test, y_test)
                if not math.isfinite(value):
                    raise ValueError(f"fold {step} scored {value}")
                scores.append(value)
                if tune.pruning and step < len(folds) - 1:
                    trial.report(sum(scores) / len(scores), step)
                    if trial.should_prune():
                        outcome = "pruned"
                        break
        except (ValueError, TypeError, ArithmeticError) as exc:  # sklearn's parameter errors
            outcome, error = "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        mean, std = _mean_std(scores) if outcome == "complete" else (None, None)
        record = TrialRecord(number=number, candidate=candidate.name,
                             params={k: _plain(v) for k, v in params.items()}, cv_mean=mean,
                             cv_std=std, state=outcome,
                             seconds=round(time.perf_counter() - started, 4), scores=scores,
                             error=error)
        with lock:
            study = studies[index]
            if outcome == "complete":
                study.tell(trial, mean)
            else:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED if outcome == "pruned"
                           else optuna.trial.TrialState.FAIL)
            trials.append(record)

    def worker() -> None:
        while (job := ask()) is not None:
            run_one(*job)

    from threadpoolctl import threadpool_limits

    # Trials are the unit of parallelism: BLAS and OpenMP pools inside one small CV fit cost
    # more than they give, five times the search's time on a loaded 2-core machine (ADR 0039)
    limits = threadpool_limits(limits=1)
    try:
        jobs = _jobs(tune.n_jobs)
        if jobs == 1:
            worker()
        else:  # parallel trials: faster, not repeatable (ADR 0039)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="trial") as pool:
                for future in [pool.submit(worker) for _ in range(jobs)]:
                    future.result()
    finally:
        limits.restore_original_limits()
        optuna.logging.set_verbosity(verbosity)
    trials.sort(key=lambda t: t.number)
    return trials, state["stopped_by"]


class _Prepared:
    """Each fold's rows, through the candidate's preprocessing fitted on that fold's training
    rows, made once and shared by every trial (and by candidates with the same preprocessing).

    A trial changes only the estimator's params, so refitting the imputer, scaler and
    encoder for every trial and fold would recompute the same arrays: on breast cancer that
    was a third of a logistic regression search's time. The result is the same as fitting the
    whole pipeline per fold (ADR 0039). Tables above :data:`_PREPARE_MAX_CELLS` are
    transformed per trial instead, to keep the copies out of memory.
    """

    def __init__(self, X: Any, y: Any, folds: list[Any]) -> None:
        self.X, self.y, self.folds = X, y, folds
        self.keep = X.shape[0] * max(1, X.shape[1]) <= _PREPARE_MAX_CELLS
        self.lock = threading.Lock()
        self.made: dict[tuple[str, int], tuple[Any, Any, Any, Any]] = {}
        #: id(pipeline) -> (pipeline, hash of its preprocessing): hashed once per candidate,
        #: not once per trial and fold (a pickle of the whole preprocessing each time)
        self.hashes: dict[int, tuple[Any, str]] = {}

    def _key(self, pipeline: Any) -> str:
        from joblib import hash as joblib_hash

        known = self.hashes.get(id(pipeline))
        if known is None or known[0] is not pipeline:
            known = self.hashes[id(pipeline)] = (pipeline, joblib_hash(pipeline[:-1]))
        return known[1]

    def fold(self, pipeline: Any, step: int) -> tuple[Any, Any, Any, Any]:
        if len(pipeline) == 1:
            return self._rows(step)
        if not self.keep:
            return self._make(pipeline, step)
        with self.lock:
            key = (self._key(pipeline), step)
            if key not in self.made:
                self.made[key] = self._make(pipeline, step)
            return self.made[key]

    def _rows(self, step: int) -> tuple[Any, Any, Any, Any]:
        train_rows, test_rows = self.folds[step]
        return (self.X.iloc[train_rows], self.y.iloc[train_rows], self.X.iloc[test_rows],
                self.y.iloc[test_rows])

    def _make(self, pipeline: Any, step: int) -> tuple[Any, Any, Any, Any]:
        from sklearn.base import clone

        X_train, y_train, X_test, y_test = self._rows(step)
        pre = clone(pipeline[:-1])
        return pre.fit_transform(X_train, y_train), y_train, pre.transform(X_test), y_test


#: cells (rows x columns) up to which the folds' preprocessed copies are kept for the search
_PREPARE_MAX_CELLS = 20_000_000


# ------------------------------------------------------------------------------- plot
def history_plot(record: dict[str, Any]) -> bytes:
    """A PNG of the search: each trial's CV score by trial number, and the best so far."""
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6), dpi=100)  # no pyplot: no global state
    ax = fig.add_subplot()
    names = [c["name"] for c in record["candidates"]]
    for name in names:
        points = [(t["number"], t["cv_mean"]) for t in record["trials"]
                  if t["candidate"] == name and t["state"] == "complete"]
        if points:
            ax.scatter(*zip(*points, strict=True), s=18, label=name, alpha=0.8)
    pruned = [t["number"] for t in record["trials"] if t["state"] == "pruned"]
    best, xs, ys = None, [], []
    minimize = record["direction"] == "minimize"
    for t in record["trials"]:
        if t["state"] == "complete":
            value = t["cv_mean"]
            if best is None or (value < best if minimize else value > best):
                best = value
        if best is not None:
            xs.append(t["number"])
            ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="black", linewidth=1.2, label="best so far")
    if pruned:
        ax.plot([], [], " ", label=f"{len(pruned)} pruned")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"CV {record['metric']} (mean of {record['cv']} folds)")
    ax.set_title(f"{record['method']} search: {len(record['trials'])} trials, stopped by "
                 f"{record['stopped_by']}")
    ax.legend(fontsize=8, loc="best")
    buffer = io.BytesIO()
    # bbox_inches="tight" kept: the y tick labels' width follows the metric's values (an
    # RMSE of 12345.6), so fixed margins would clip some; zlib level 1 as modeling/plots.py
    fig.savefig(buffer, format="png", bbox_inches="tight", pil_kwargs={"compress_level": 1})
    return buffer.getvalue()
