"""A 50-trial Optuna search on breast cancer: ``conveyor run`` against plain Optuna code.

Both sides are whole processes, timed from spawn to exit (wall seconds, and CPU seconds:
user + system from ``os.wait4``), rounds interleaved, the 1-minute load average recorded:

(a) plain: this file with ``--plain``: read the raw WDBC CSV with pandas, the same stratified
    80/20 split (seed 42), median imputer + StandardScaler + the estimator, one Optuna study
    (TPESampler(seed=42), MedianPruner(5, 1)) over the same space, on the same
    StratifiedKFold(5, shuffle, 42) folds, each fold's running mean reported for pruning,
    sklearn's ``f1_score`` per fold; the best params refitted on the training split and
    scored on the test split. No MLflow, no artifacts. Two styles (``--plain-style``):
    ``prepared`` (default): the imputer and scaler fitted once per fold and their output
    shared by the trials, as Conveyor's search does (ADR 0039): the same fits on both sides;
    ``pipeline``: a whole Pipeline cloned and fitted per trial and fold, as Optuna code is
    usually written (5 x 50 imputer + scaler fits more than Conveyor does).
(b) conveyor: ``conveyor run`` of a spec with the same search under ``model.tune`` (method
    optuna) on a fresh home: everything a run records (Store artifacts, MLflow run with the
    model, 50 child runs, the search record and plot, evaluation, gate, registration, export).
    Its MLflow database comes from the template (ADR 0043), built once before the rounds in
    a private CONVEYOR_CACHE_DIR (reported, not timed in a round).

The two must find the same best CV score (same folds, sampler, pruner, trials, n_jobs=1), or
it stops. BLAS/OpenMP pools are held at one thread in both (the search does so itself, ADR
0039). ``--warm-bytecode``: both sides get a private, pre-warmed ``PYTHONPYCACHEPREFIX`` (one
untimed run each), so that compiling sources where ``PYTHONDONTWRITEBYTECODE`` is set (this
machine) does not count against the side that imports more modules.

    .venv/bin/python benchmarks/optuna_breast_cancer.py --rounds 3 --warm-bytecode
    .venv/bin/python benchmarks/optuna_breast_cancer.py --rounds 3 --estimator logistic_regression
    .venv/bin/python benchmarks/optuna_breast_cancer.py --rounds 3 --warm   # a home in use
    .venv/bin/python benchmarks/optuna_breast_cancer.py --plain-style pipeline
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from run_breast_cancer import _CPU, _git_sha, _timed  # the same timing as the other benchmark

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


def plain(data: Path, estimator: str, style: str) -> None:
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
    pre = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    base = Pipeline([*pre.steps, ("model", cls(**chosen["params"]))])
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(X, y))
    prepared = []  # each fold's imputed and scaled rows, fitted on that fold's training rows
    if style == "prepared":
        for tr, te in folds:
            fitted = clone(pre)
            prepared.append((fitted.fit_transform(X.iloc[tr]), y.iloc[tr],
                             fitted.transform(X.iloc[te]), y.iloc[te]))

    def fold_model(params: dict, step: int) -> tuple:
        if style == "prepared":
            X_tr, y_tr, X_te, y_te = prepared[step]
            model = clone(base[-1]).set_params(**params)
        else:
            tr, te = folds[step]
            X_tr, y_tr, X_te, y_te = X.iloc[tr], y.iloc[tr], X.iloc[te], y.iloc[te]
            model = clone(base).set_params(**{f"model__{k}": v for k, v in params.items()})
        return model.fit(X_tr, y_tr), X_te, y_te

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
        for step in range(len(folds)):
            model, X_te, y_te = fold_model(params, step)
            scores.append(f1_score(y_te, model.predict(X_te), pos_label="M"))
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


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system of the process and its children that it
    waited for, ``os.wait4``) and stdout of one whole process."""
    seconds, out = _timed(args, env=env, cwd=REPO, what=" ".join(args[:3]))
    return seconds, _CPU["last"], out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--estimator", choices=sorted(SPACES), default="gradient_boosting")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "WDBC_PATH", DEFAULT_DATA)))
    parser.add_argument("--plain", action="store_true", help="be process (a)")
    parser.add_argument("--plain-style", choices=("prepared", "pipeline"), default="prepared",
                        help="(a) fits the preprocessing once per fold as Conveyor does "
                             "(prepared), or a whole Pipeline per trial and fold (pipeline)")
    parser.add_argument("--warm", action="store_true",
                        help="(b) in a home that already has its MLflow database (an untimed "
                             "first run), with --no-cache: the search and the steps, not the "
                             "first use of a home")
    parser.add_argument("--warm-bytecode", action="store_true",
                        help="a private, pre-warmed PYTHONPYCACHEPREFIX for both sides")
    args = parser.parse_args()
    data = args.data.resolve()
    if args.plain:
        plain(data, args.estimator, args.plain_style)
        return
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    base.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    times: dict[str, list[float]] = {"plain": [], "conveyor": []}
    cpu: dict[str, list[float]] = {"plain": [], "conveyor": []}
    loads: list[float] = []
    load_at_start = round(os.getloadavg()[0], 2)
    plain_cmd = [sys.executable, __file__, "--plain", "--estimator", args.estimator,
                 "--plain-style", args.plain_style, "--data", str(data)]
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-optuna-") as tmp:
        base["CONVEYOR_CACHE_DIR"] = str(Path(tmp) / "cache")
        if args.warm_bytecode:
            base.pop("PYTHONDONTWRITEBYTECODE", None)
            base["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        template_seconds, _, _ = timed([sys.executable, "-c", "from conveyor.tracking.template "
                                        "import ensure_template; ensure_template()"], base)
        print(f"MLflow template built once: {template_seconds:.2f} s", flush=True)
        spec = Path(tmp) / "bench_optuna.yaml"
        spec.write_text(spec_text(data, args.estimator))

        def conveyor(home: Path, run_id: str, *extra: str) -> tuple[float, float, str]:
            env = {**base, "CONVEYOR_HOME": str(home),
                   "CONVEYOR_EXPORT_URI": (home / "exports").as_uri()}
            return timed([str(BIN / "conveyor"), "run", str(spec), "-q", "--run-id", run_id,
                          *extra], env)

        warm = Path(tmp) / "home-warm"
        if args.warm or args.warm_bytecode:  # untimed: the warm home, or the warm bytecode
            conveyor(warm if args.warm else Path(tmp) / "home-untimed", "warmup")
        if args.warm_bytecode:
            timed(plain_cmd, base)
        for round_ in range(args.rounds):
            order = ("plain", "conveyor") if round_ % 2 == 0 else ("conveyor", "plain")
            for side in order:
                if side == "plain":
                    seconds, used, out = timed(plain_cmd, base)
                    plain_best = json.loads(out.strip().splitlines()[-1])["best_cv"]
                else:
                    home = warm if args.warm else Path(tmp) / f"home-{round_}"
                    run_id = f"bench-{round_}"
                    seconds, used, _ = conveyor(home, run_id,
                                                *(["--no-cache"] if args.warm else []))
                    record = json.loads((home / "artifacts" / "bench_optuna" / run_id /
                                         "train" / "search.json").read_text())
                    conveyor_best = record["best"]["cv_mean"]
                times[side].append(seconds)
                cpu[side].append(used)
                print(f"round {round_ + 1}: {side:8s} {seconds:7.2f} s wall {used:7.2f} s CPU",
                      flush=True)
            loads.append(round(os.getloadavg()[0], 2))
            if abs(plain_best - conveyor_best) > 1e-9:
                raise SystemExit(f"the searches differ: plain best {plain_best}, conveyor "
                                 f"best {conveyor_best}")
    medians = {k: statistics.median(v) for k, v in times.items()}
    cpu_medians = {k: statistics.median(v) for k, v in cpu.items()}
    result = {"estimator": args.estimator, "trials": TRIALS, "rounds": args.rounds,
              "home": "warm, --no-cache" if args.warm else "fresh",
              "plain_style": args.plain_style,
              "bytecode": "warm (private prefix)" if args.warm_bytecode else "as-is",
              "seconds": times, "medians": medians,
              "ratio": medians["conveyor"] / medians["plain"],
              "per_round_ratios": [c / p for c, p in zip(times["conveyor"], times["plain"],
                                                         strict=True)],
              "cpu_seconds": cpu, "cpu_medians": cpu_medians,
              "cpu_ratio": cpu_medians["conveyor"] / cpu_medians["plain"],
              "cpu_per_round_ratios": [c / p for c, p in zip(cpu["conveyor"], cpu["plain"],
                                                             strict=True)],
              "template_seconds": template_seconds, "best_cv": conveyor_best,
              "load_1min_at_start": load_at_start, "load_1min_after_rounds": loads,
              "cpus": os.cpu_count(), "python": sys.version.split()[0], "git": _git_sha()}
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    tags = ("warm-" if args.warm else "") + (
        "pipeline-" if args.plain_style == "pipeline" else "")
    out = REPO / "benchmarks" / "results" / f"optuna-{args.estimator}-{tags}{stamp}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("medians", "ratio", "per_round_ratios",
                                             "cpu_medians", "cpu_ratio", "best_cv",
                                             "load_1min_after_rounds")}, indent=2))
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
