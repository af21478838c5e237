#!/usr/bin/env bash
# Set up, then run the linters and the whole test suite (unit + integration: real MLflow,
# Airflow, an S3 server on 127.0.0.1, PostgreSQL and Redis when present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
# Two workers (this machine's cores; CONVEYOR_TEST_WORKERS=0 runs in one process): the docs
# blocks and the Airflow tests each stay together on one worker (tests/conftest.py).
workers=${CONVEYOR_TEST_WORKERS:-2}
if [ "$workers" = "0" ]; then
  exec .venv/bin/pytest -q "$@"
fi
exec .venv/bin/pytest -q -n "$workers" "$@"
