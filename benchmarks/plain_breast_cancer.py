"""The plain script: the breast-cancer job with pandas and scikit-learn only, no MLflow.

What a careful engineer writes when nothing needs tracking: the shared job
(breast_cancer_job.py: read the raw WDBC CSV with pandas, a stratified 80/20 split, seed 42,
median imputer + StandardScaler + LogisticRegression(C=1, max_iter=1000) as one sklearn
Pipeline, accuracy/precision/recall/F1/ROC AUC on train and test, M positive), and the metrics
JSON and the fitted model written to an output folder. The model is saved with joblib (it
ships with scikit-learn; ``--format skops`` saves with skops instead, as Conveyor's model
format does).

It is the floor of issue 11's speed targets: ``conveyor run`` on a fresh home within 2x its
time, a cached re-run within 1.3x (benchmarks/run_breast_cancer.py).

Usage::

    python benchmarks/plain_breast_cancer.py --data wdbc.data --out /tmp/fresh-folder
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from breast_cancer_job import prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, required=True, help="the raw WDBC file")
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics and model")
    parser.add_argument("--format", choices=("joblib", "skops"), default="joblib",
                        help="how the model is saved (default joblib)")
    args = parser.parse_args(argv)

    job = prepare(args.data)
    model, results = job.model, job.results

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    if args.format == "skops":
        import skops.io

        skops.io.dump(model, out / "model.skops")
    else:
        import joblib

        joblib.dump(model, out / "model.joblib")
    print(f"test_accuracy={results['test_accuracy']:.4f} test_f1={results['test_f1']:.4f} "
          f"model {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
