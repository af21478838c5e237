"""``conveyor run SPEC | head``: a reader that stops reading does not stop the command.

rich ends the process with ``SystemExit(1)`` at the first line it cannot write; in the middle
of a run that left the run failed (``why: SystemExit: 1``), nothing registered or exported.
Now the output goes to /dev/null from then on and the run finishes with its own exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SPEC = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"


def _env(home: Path, wdbc_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CONVEYOR_EXPORT_URI")}
    env.update(CONVEYOR_HOME=str(home), WDBC_PATH=str(wdbc_path))
    return env


def _first_line_then_close(args: list[str], env: dict[str, str], *,
                           stderr_too: bool = False) -> tuple[str, int]:
    """Run the CLI with stdout (and stderr) into a pipe; read one line and close the pipe,
    as ``| head -1`` does."""
    proc = subprocess.Popen([sys.executable, "-m", "conveyor.cli", *args], env=env,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if stderr_too else subprocess.DEVNULL)
    assert proc.stdout is not None
    first = proc.stdout.readline().decode()
    proc.stdout.close()
    return first, proc.wait(timeout=300)


def test_a_run_piped_into_head_still_completes(tmp_path: Path, wdbc_path: Path) -> None:
    env = _env(tmp_path / "home", wdbc_path)
    first, code = _first_line_then_close(["run", str(SPEC)], env, stderr_too=True)
    assert first.startswith("breast_cancer"), first
    assert code == 0
    runs = json.loads(subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "runs", "--json"], env=env, check=True,
        capture_output=True, text=True).stdout)
    assert [r["status"] for r in runs] == ["ok"], runs
    assert (tmp_path / "home" / "exports" / "breast_cancer" / "latest.json").is_file()

    # the read-only commands end quietly too, with their own exit code
    first, code = _first_line_then_close(["runs"], env)
    assert first.strip() and code == 0
    first, code = _first_line_then_close(["runs", "--json"], env)
    assert first.strip() == "[" and code == 0
