"""A 50-trial Optuna search on breast cancer: ``conveyor run`` against plain Optuna code.

Both sides are whole processes, timed from spawn to exit, rounds interleaved:

(a) plain: this file with ``--plain``: read the raw WDBC CSV with pandas, the same stratified
    80/20 split (seed 42), median imputer + StandardScaler + the estimator as one Pipeline,
    one Optuna study (TPESampler(seed=42), MedianPruner(5, 1)) over the same space, on the
    same StratifiedKFold(5, shuffle, 42) folds, each fold's running mean reported for
    pruning; the best params refitted on the training split and scored on the test split.
    No MLflow, no artifacts.
(b) conveyor: ``conveyor run`` of a spec with the same search under ``model.tune`` (method
    optuna) on a fresh home: everything a run records (Store artifacts, MLflow run with the
    model, 50 child runs, the search record and plot, evaluation, gate, registration, export).

The two must find the same best CV score (same folds, sampler and trials), or it stops.
BLAS/OpenMP pools are held at one thread in both (the search does so itself, ADR 0039).

    .venv/bin/python benchmarks/optuna_breast_cancer.py --rounds 3
    .venv/bin/python benchmarks/optuna_breast_cancer.py --rounds 3 --estimator logistic_regression
    .venv/bin/python benchmarks/optuna_breast_cancer.py --rounds 3 --warm   # a home in use
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "wdbc" / "wdbc.data"
SPACES = {
    "gradient_boosting": {
        "params": {"random_state": 0},
        "space": {"n_estimators": {"low": 20, "high": 100, "step": 20},
                  "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
                  "max_depth": {"low": 2, "high": 4}},
    },
    "logistic_regression": {
        "params": {"max_iter": 5000},
        "space": {"C": {"low": 0.001, "high": 100.0, "log": True},
                  "class_weight": [None, "balanced"]},
    },
}
COLUMNS = ["id", "diagnosis"] + [f"f{i}" for i in range(30)]
TRIALS, SEED, FOLDS = 50, 42, 5


def spec_text(data: Path, estimator: str) -> str:
    chosen = SPACES[estimator]
    spec = {
        "name": "bench_optuna",
        "data": {"source": "file", "uri": str(data), "format": "csv", "header": False,
                 "columns": COLUMNS},
        "schema": {"target": "diagnosis", "positive_label": "M", "id": "id"},
        "split": {"test_size": 0.2, "stratify": True, "seed": SEED},
        "preprocess": {"numeric": {"impute": "median", "scale": "standard"}},
        "model": {"estimator": estimator, "params": chosen["params"],
                  "tune": {"method": "optuna", "metric": "f1", "cv": FOLDS,
                           "n_trials": TRIALS, "params": chosen["space"]}},
        "evaluate": {"metrics": ["accuracy", "precision", "recall", "f1", "roc_auc"]},
        "registry": {"name": "bench_optuna"},
    }
    return json.dumps(spec)  # JSON is YAML


def plain(data: Path, estimator: str) -> None:
    """(a): the search as a careful engineer writes it with Optuna and scikit-learn."""
    import optuna
    import pandas as pd
    from sklearn.base import clone
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold, train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(data, header=None, names=COLUMNS)
    train, test = train_test_split(frame, test_size=0.2, random_state=SEED,
                                   stratify=frame["diagnosis"])
    train, test = train.reset_index(drop=True), test.reset_index(drop=True)
    # in the order Conveyor's validate report lists them (by name): with correlated features
    # (radius, perimeter, area) a tree's ties between splits follow the column order
    features = sorted(COLUMNS[2:])
    X, y = train[features], train["diagnosis"]
    cls = {"gradient_boosting": GradientBoostingClassifier,
           "logistic_regression": LogisticRegression}[estimator]
    chosen = SPACES[estimator]
    base = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()),
                     ("model", cls(**chosen["params"]))])
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(X, y))

    def objective(trial: optuna.Trial) -> float:
        params = {}
        for name, space in chosen["space"].items():
            if isinstance(space, list):
                params[name] = trial.suggest_categorical(name, space)
            elif isinstance(space["low"], int) and isinstance(space["high"], int):
                params[name] = trial.suggest_int(name, space["low"], space["high"],
                                                 step=space.get("step", 1))
            else:
                params[name] = trial.suggest_float(name, space["low"], space["high"],
                                                   log=space.get("log", False))
        scores = []
        for step, (tr, te) in enumerate(folds):
            model = clone(base).set_params(**{f"model__{k}": v for k, v in params.items()})
            model.fit(X.iloc[tr], y.iloc[tr])
            scores.append(f1_score(y.iloc[te], model.predict(X.iloc[te]), pos_label="M"))
            if step < len(folds) - 1:
                trial.report(sum(scores) / len(scores), step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        return sum(scores) / len(scores)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=SEED),
                                pruner=optuna.pruners.MedianPruner(5, 1))
    study.optimize(objective, n_trials=TRIALS)
    best = clone(base).set_params(**{f"model__{k}": v for k, v in study.best_params.items()})
    best.fit(X, y)
    test_f1 = f1_score(test["diagnosis"], best.predict(test[features]), pos_label="M")
    print(json.dumps({"best_cv": study.best_value, "test_f1": test_f1}))


def timed(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--estimator", choices=sorted(SPACES), default="gradient_boosting")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "WDBC_PATH", DEFAULT_DATA)))
    parser.add_argument("--plain", action="store_true", help="be process (a)")
    parser.add_argument("--warm", action="store_true",
                        help="(b) in a home that already has its MLflow database (an untimed "
                             "first run), with --no-cache: the search and the steps, not the "
                             "first use of a home")
    args = parser.parse_args()
    data = args.data.resolve()
    if args.plain:
        plain(data, args.estimator)
        return
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    base.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    times: dict[str, list[float]] = {"plain": [], "conveyor": []}
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-optuna-") as tmp:
        spec = Path(tmp) / "bench_optuna.yaml"
        spec.write_text(spec_text(data, args.estimator))
        warm = Path(tmp) / "home-warm"
        if args.warm:
            timed([str(BIN / "conveyor"), "run", str(spec), "-q", "--run-id", "warmup"],
                  {**base, "CONVEYOR_HOME": str(warm),
                   "CONVEYOR_EXPORT_URI": (warm / "exports").as_uri()})
        for round_ in range(args.rounds):
            order = ("plain", "conveyor") if round_ % 2 == 0 else ("conveyor", "plain")
            for side in order:
                if side == "plain":
                    seconds, out = timed([sys.executable, __file__, "--plain", "--estimator",
                                          args.estimator, "--data", str(data)], base)
                    plain_best = json.loads(out.strip().splitlines()[-1])["best_cv"]
                else:
                    home = warm if args.warm else Path(tmp) / f"home-{round_}"
                    env = {**base, "CONVEYOR_HOME": str(home),
                           "CONVEYOR_EXPORT_URI": (home / "exports").as_uri()}
                    run_id = f"bench-{round_}"
                    seconds, _ = timed([str(BIN / "conveyor"), "run", str(spec), "-q",
                                        "--run-id", run_id,
                                        *(["--no-cache"] if args.warm else [])], env)
                    record = json.loads((home / "artifacts" / "bench_optuna" / run_id /
                                         "train" / "search.json").read_text())
                    conveyor_best = record["best"]["cv_mean"]
                times[side].append(seconds)
                print(f"round {round_ + 1}: {side:8s} {seconds:7.2f} s", flush=True)
            if abs(plain_best - conveyor_best) > 1e-9:
                raise SystemExit(f"the searches differ: plain best {plain_best}, conveyor "
                                 f"best {conveyor_best}")
    medians = {k: statistics.median(v) for k, v in times.items()}
    result = {"estimator": args.estimator, "trials": TRIALS, "rounds": args.rounds,
              "home": "warm, --no-cache" if args.warm else "fresh",
              "seconds": times, "medians": medians,
              "ratio": medians["conveyor"] / medians["plain"],
              "per_round_ratios": [c / p for c, p in zip(times["conveyor"], times["plain"],
                                                         strict=True)],
              "best_cv": conveyor_best, "load_1min": os.getloadavg()[0],
              "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    out = REPO / "benchmarks" / "results" / (
        f"optuna-{args.estimator}-{'warm-' if args.warm else ''}{stamp}.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("medians", "ratio", "per_round_ratios",
                                             "best_cv")}, indent=2))
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
