#!/usr/bin/env bash
# Set up, then run the breast-cancer pipeline on the embedded default (local store, MLflow on
# SQLite under .conveyor/). Uses the raw UCI file when it is beside the repo (../shared/data or
# WDBC_PATH), else scikit-learn's bundled copy of the same data (--profile sklearn).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
spec=examples/breast_cancer/pipeline.yaml
wdbc=${WDBC_PATH:-$(cd .. && pwd)/shared/data/wdbc/wdbc.data}
if [ -f "$wdbc" ]; then
  WDBC_PATH=$wdbc exec .venv/bin/conveyor run "$spec" "$@"
else
  echo "demo: $wdbc not found; using scikit-learn's bundled WDBC (--profile sklearn)" >&2
  exec .venv/bin/conveyor run "$spec" --profile sklearn "$@"
fi
