"""Small things a newcomer trips over (issue 8, item 12): ``--version``, ``ui`` on a busy
port, a lab spec given to ``validate``, MLflow's telemetry, and progress on a terminal."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import re
import select
import socket
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from conveyor.cli import main

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "examples" / "iris_lab" / "lab.yaml"
TINY = """\
name: tiny
data: {source: sklearn, name: iris}
schema: {target: target}
model: {estimator: logistic_regression, params: {max_iter: 500}}
"""


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "conveyor.cli", "--version"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"conveyor {version('conveyor-ml')}"


def test_ui_on_a_busy_port_exits_2_and_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "conveyor.cli", "ui", "--port", str(port)],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "CONVEYOR_HOME": str(tmp_path / "home")})
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"error: cannot serve the MLflow UI on 127.0.0.1:{port}: the port is already in use; "
        "choose another with --port (or stop what is listening there)")
    assert "Traceback" not in done.stderr and "MLflow UI on" not in done.stdout
    assert time.monotonic() - started < 60  # it did not start a server that then failed


def test_validate_recognises_a_lab_spec() -> None:
    code, out, err = cli("validate", str(LAB))
    assert code == 0, err
    assert f"{LAB}: lab iris_lab is valid" in out
    assert "registers: iris_classifier" in out and "minimums: f1 >= 0.85" in out
    assert "unknown key" not in out + err


def test_validate_reports_a_lab_spec_error_in_lab_terms(tmp_path: Path) -> None:
    bad = tmp_path / "lab.yaml"
    bad.write_text(LAB.read_text().replace("min_delta: 0.01", "min_detla: 0.01"))
    code, _, err = cli("validate", str(bad))
    assert code == 2
    assert "promotion.min_detla: unknown key 'min_detla'; did you mean 'min_delta'?" in err
    assert "'model'" not in err and "schema" not in err  # not the pipeline loader's complaint


TELEMETRY = """\
import os, sys
from conveyor.cli import main
main(["validate", sys.argv[1]])
import mlflow  # noqa: E402,F401 - the telemetry client is made on import
from mlflow.telemetry.client import get_telemetry_client
print(os.environ.get("MLFLOW_DISABLE_TELEMETRY"), get_telemetry_client() is None)
"""


@pytest.mark.parametrize(("chosen", "expected"), [(None, "true True"),
                                                  ("false", "false False")])
def test_mlflow_telemetry_is_off_unless_the_user_asks(tmp_path: Path, chosen: str | None,
                                                      expected: str) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    # MLflow itself stays quiet under pytest and CI: take those signals away.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_CURRENT_TEST", "CI", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
    env["HOME"] = str(tmp_path)  # where MLflow would keep its installation id
    if chosen is not None:
        env["MLFLOW_DISABLE_TELEMETRY"] = chosen
    done = subprocess.run([sys.executable, "-c", TELEMETRY, str(spec)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == expected


def test_a_terminal_shows_the_running_steps_elapsed_time(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "run", str(spec), "--until", "train"],
        stdin=follower, stdout=follower, stderr=follower, close_fds=True,
        env={**os.environ, "CONVEYOR_HOME": str(tmp_path / "home"), "COLUMNS": "100",
             "TERM": "xterm"})
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            elif process.poll() is not None:
                break
        assert process.wait(timeout=60) == 0, seen.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
    assert re.search(r"train     running +\d+\.\ds", text), text
    assert re.search(r"✓ train +\d+\.\d\ds", text), text
