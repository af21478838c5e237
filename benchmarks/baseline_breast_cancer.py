"""The hand-written equivalent of ``conveyor run examples/breast_cancer/pipeline.yaml``.

What a careful engineer writes without Conveyor: the job the plain script runs
(breast_cancer_job.py: read, split, fit, score), then MLflow on a SQLite file (params,
metrics, the dataset as an input, the model with signature, input example, explicit pip
requirements and skops trusted types), registration in the model registry, and the metrics
JSON and the model written to an export folder.

It makes the same MLflow choices Conveyor makes, so the benchmark compares the same work:
explicit ``pip_requirements`` (inference costs ~6 s per log_model) and
``MLFLOW_UV_AUTO_DETECT=false`` (otherwise MLflow copies the working folder's uv.lock into
the model).

Usage::

    python benchmarks/baseline_breast_cancer.py --data wdbc.data --home /tmp/fresh-folder
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

from breast_cancer_job import PARAMS, SEED, TEST_SIZE, prepare

MODEL_NAME = "breast_cancer_classifier_baseline"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, required=True, help="the raw WDBC file")
    parser.add_argument("--home", type=Path, required=True,
                        help="folder for mlflow.db, MLflow artifacts and the export")
    args = parser.parse_args(argv)
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
    os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")

    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    # -- data and model: the job the plain script runs too ----------------------------------
    job = prepare(args.data)
    frame, X_train, model, results = job.frame, job.X_train, job.model, job.results

    # -- MLflow ----------------------------------------------------------------------------
    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name("breast_cancer_baseline") is None:
        mlflow.create_experiment("breast_cancer_baseline",
                                 artifact_location=(home / "mlartifacts").as_uri())
    mlflow.set_experiment("breast_cancer_baseline")
    pip_requirements = [f"{p}=={version(p)}" for p in
                        ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "skops")]
    example = X_train.head(5)
    signature = infer_signature(example, model.predict(example))
    with mlflow.start_run():
        mlflow.log_params({"model.estimator": "LogisticRegression",
                           **{f"model.params.{k}": v for k, v in PARAMS.items()},
                           "split.test_size": TEST_SIZE, "split.seed": SEED,
                           "split.stratify": True, "preprocess.numeric.impute": "median",
                           "preprocess.numeric.scale": "standard"})
        mlflow.log_input(mlflow.data.from_pandas(frame, source=args.data.resolve().as_uri(),
                                                 name="breast_cancer", targets="diagnosis"),
                         context="raw")
        mlflow.log_metrics(results)
        info = mlflow.sklearn.log_model(
            model, name="model", signature=signature, input_example=example,
            pip_requirements=pip_requirements, skops_trusted_types=["numpy.dtype"])
        registered = mlflow.register_model(info.model_uri, MODEL_NAME)

    # -- export ----------------------------------------------------------------------------
    export = home / "export"
    export.mkdir(parents=True, exist_ok=True)
    (export / "metrics.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    mlflow.sklearn.save_model(
        model, str(export / "model"), signature=signature, input_example=example,
        pip_requirements=pip_requirements, skops_trusted_types=["numpy.dtype"])

    print(f"test_accuracy={results['test_accuracy']:.4f} test_f1={results['test_f1']:.4f} "
          f"registered models:/{MODEL_NAME}/{registered.version} export {export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
