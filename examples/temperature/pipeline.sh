#!/usr/bin/env bash
# The temperature scenario stage by stage: synthetic data, then one `conveyor run --step` per
# step of one run. Stops at the first failing stage and says which.
#
#   examples/temperature/pipeline.sh [DATASETS]      # default 4 stations in train/ and test/
#
# Data go to $TEMPERATURE_DATA, default $CONVEYOR_HOME/temperature-data (or
# .conveyor/temperature-data in the repository without CONVEYOR_HOME). CONVEYOR (default:
# `conveyor` on the PATH, else .venv/bin/conveyor) is the command run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
spec="$here/pipeline.yaml"
datasets="${1:-4}"
if [[ -z "${CONVEYOR:-}" ]]; then
  if command -v conveyor >/dev/null 2>&1; then CONVEYOR=conveyor; else CONVEYOR="$root/.venv/bin/conveyor"; fi
fi
export TEMPERATURE_DATA="${TEMPERATURE_DATA:-${CONVEYOR_HOME:-$root/.conveyor}/temperature-data}"
run_id="temperature-$(date -u +%Y%m%dT%H%M%S)-$$"
stage=""
trap 'status=$?; if [[ $status -ne 0 ]]; then echo "pipeline.sh: stage \"$stage\" failed (exit $status); run $run_id stopped there" >&2; fi' EXIT

stage="synth"
echo "== synth: $datasets stations into $TEMPERATURE_DATA/train and $TEMPERATURE_DATA/test"
"$CONVEYOR" synth temperature --out "$TEMPERATURE_DATA" --datasets "$datasets" --seed 7

stage="ingest"
echo "== ingest (run $run_id)"
"$CONVEYOR" run "$spec" --run-id "$run_id" --until ingest -q
for step in validate split train evaluate gate register export; do
  stage="$step"
  echo "== $step"
  "$CONVEYOR" run "$spec" --run-id "$run_id" --step "$step" -q
done
stage=""
echo "pipeline.sh: run $run_id done"
"$CONVEYOR" show "$run_id" "$spec"
