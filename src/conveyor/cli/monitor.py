"""``conveyor monitor``: compare a window of served (or batch) inputs with the model's
reference profile (docs/monitoring.md).

Exit codes: 0 no drift, 3 drift passed the thresholds, 2 bad input, 1 a failure.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from conveyor.cli.output import write_stdout

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``monitor`` sub-command."""
    p = sub.add_parser(
        "monitor", help="check a served model's inputs and predictions for drift",
        description="Compare the server's sampled requests (or a batch file) with the "
        "reference profile saved with the model: PSI and KS per feature, prediction drift, "
        "missing and out-of-range shares, live metrics from a labels file. Writes a JSON and "
        "an HTML report, logs an MLflow run, and on drift alerts and triggers retraining. "
        "Exit 0: no drift; 3: drift; 2: bad input.")
    p.add_argument("model", help="models:/<name>@<alias>, models:/<name>/<N>, or an export")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--window", help="read the server's samples of the last 30m, 24h, 7d "
                       "(default: the spec's monitor.window, else 24h)")
    where.add_argument("--input", help="a CSV or Parquet batch file instead of the samples")
    p.add_argument("--labels", help="a CSV or Parquet file of true labels, for live metrics")
    p.add_argument("--id-column", help="the column joining --labels to the inputs")
    p.add_argument("--spec", type=Path, help="the pipeline spec: monitor thresholds, store, "
                   "tracking and the training DAG")
    p.add_argument("--store", help="the Store's root URI (default: the spec's or the home's)")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.set_defaults(func=_monitor)


def _monitor(args: argparse.Namespace) -> int:
    from conveyor.api import monitor
    from conveyor.cli.output import print_json

    result = monitor(args.model, window=args.window, input=args.input, labels=args.labels,
                     id_column=args.id_column, spec=args.spec, store=args.store)
    if args.json:
        print_json({**result.verdict, "actions": result.actions,
                    "mlflow_run_id": result.mlflow_run_id})
        return result.exit_code
    report = result.report
    verdict = "DRIFT" if result.drifted else "no drift"
    lines = [f"{report['model']} version {report.get('version')}: {verdict} "
             f"({report['rows']} rows)"]
    for name in report["features_drifted"]:
        lines.append(f"  drifted    {name}: {'; '.join(report['features'][name]['why'])}")
    if report["prediction"]["drifted"]:
        lines.append(f"  drifted    predictions: {'; '.join(report['prediction']['why'])}")
    by_reason: dict[str, list[str]] = {}
    for name, reason in report["not_computable"].items():
        by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        lines.append(f"  not computable ({reason}): {shown}")
    for name, value in report["live_metrics"].items():
        lines.append(f"  {name} {value:.4f}")
    for what, action in result.actions.items():
        shown = {k: v for k, v in action.items() if k != "airflow_url"}
        lines.append(f"  {what}: {shown}")
    lines.append(f"report     {result.html_uri}")
    lines.append(f"json       {result.report_uri}")
    lines.append(f"MLflow run {result.mlflow_run_id} (experiment {report['model']}-monitoring)")
    write_stdout("\n".join(lines) + "\n")
    return result.exit_code
