#!/usr/bin/env bash
# Set up everything Conveyor needs on a fresh machine: uv, then the locked environment in .venv.
# Idempotent and quiet when nothing changed. Needs only Python 3.11+ and pip.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
[ -n "$python" ] || { echo "setup: Python 3.11 or 3.12 is needed (none found on PATH)" >&2; exit 2; }
# After `source .venv/bin/activate` the first python on PATH is the project's own, which has
# neither pip nor uv: use the interpreter that venv was made from.
python=$("$python" -c 'import sys; print(getattr(sys, "_base_executable", "") or sys.executable)')

if command -v uv >/dev/null 2>&1; then
  uv=(uv)
else
  if ! "$python" -m uv --version >/dev/null 2>&1; then
    echo "setup: installing uv (the package manager that reads uv.lock) with pip" >&2
    "$python" -m pip install --quiet --user uv 2>/dev/null || "$python" -m pip install --quiet uv
  fi
  uv=("$python" -m uv)
fi

# --frozen: install exactly what uv.lock pins (Airflow's dependency tree drifts otherwise).
# --compile-bytecode: without it every process recompiles ~3,000 modules (5-6 s here).
"${uv[@]}" sync --frozen --all-extras --compile-bytecode --python "$python" --quiet
echo "setup: environment ready in .venv ($(.venv/bin/python --version))" >&2
