"""Where the embedded default lives does not depend on the working folder (issue 8, item 10).

``conveyor`` runs as a subprocess without CONVEYOR_HOME, from a project's root, from one of
its sub-folders and from a folder outside it: one Store, one MLflow registry, printed on
every run with how to change it (ADR 0024).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

SPEC = """\
name: homed
data: {source: sklearn, name: iris}
schema: {target: target}
model: {estimator: logistic_regression}
"""


def conveyor(cwd: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CONVEYOR_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env["HOME"] = str(home)  # the fallback home, if the project were not found
    return subprocess.run([sys.executable, "-m", "conveyor.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_two_working_folders_share_one_home(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "pipelines" / "deep").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    spec = project / "pipelines" / "homed.yaml"
    spec.write_text(SPEC)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    user = tmp_path / "user"
    user.mkdir()
    home = project / ".conveyor"

    first = conveyor(project, "run", "pipelines/homed.yaml", "--until", "split", home=user)
    assert first.returncode == 0, first.stderr
    second = conveyor(elsewhere, "run", str(spec), "--until", "split", home=user)
    assert second.returncode == 0, second.stderr
    assert (f"home {home} (project folder, has {project / 'pyproject.toml'}; "
            "set CONVEYOR_HOME to use another)") in first.stdout
    # the second run finds the home the first one made: the nearest marker is .conveyor/
    assert (f"home {home} (project folder, has {home}; "
            "set CONVEYOR_HOME to use another)") in second.stdout

    runs = sorted(p.name for p in (home / "artifacts" / "homed").iterdir()
                  if not p.name.startswith("_"))
    assert len(runs) == 2
    with sqlite3.connect(home / "mlflow.db") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == 2
    assert not (elsewhere / ".conveyor").exists() and not (user / ".conveyor").exists()
    assert not (project / "pipelines" / ".conveyor").exists()

    listed = conveyor(project / "pipelines" / "deep", "runs", "--json", home=user)
    assert listed.returncode == 0, listed.stderr
    assert all(run_id in listed.stdout for run_id in runs)


def test_conveyor_home_wins_and_is_printed(tmp_path: Path) -> None:
    spec = tmp_path / "homed.yaml"
    spec.write_text(SPEC)
    chosen = tmp_path / "chosen"
    done = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "run", str(spec), "--until", "ingest"],
        cwd=tmp_path, env={**os.environ, "CONVEYOR_HOME": str(chosen)}, capture_output=True,
        text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert f"home {chosen} (from CONVEYOR_HOME)" in done.stdout
    assert (chosen / "artifacts" / "homed").is_dir()
