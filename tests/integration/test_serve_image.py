"""The serve image's own command starts the server from the installed package.

No Docker engine runs here, so the test does what the container would: it installs the
environment the image's build stage installs (``uv sync --frozen --no-dev --no-editable``:
the package itself, no Airflow, no dev tools) into a temporary folder, reads the image's
``ENV``, ``ENTRYPOINT``/``CMD`` and ``HEALTHCHECK`` from deploy/serve.Dockerfile, and runs
that exact argv with that environment (the venv's path, loopback and a free port
substituted) against the production alias of a model trained by ``conveyor run``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.processes import free_port, stop_group
from conveyor.serving.model import open_model
from deploy_files import Stage, stages

ROOT = Path(__file__).resolve().parents[2]
BREAST_CANCER_SPEC = ROOT / "examples" / "breast_cancer" / "pipeline.yaml"
IMAGE_VENV = "/opt/conveyor/venv"
TOKEN = "s3cret-token-for-the-image-test"
CONVEYOR = [str(Path(sys.executable).parent / "conveyor")]


def _uv() -> list[str]:
    found = shutil.which("uv")
    if found:
        return [found]
    base = getattr(sys, "_base_executable", "") or sys.executable
    if subprocess.run([base, "-m", "uv", "--version"], capture_output=True,
                      check=False).returncode == 0:
        return [base, "-m", "uv"]
    reason = "uv is not installed (scripts/setup.sh installs it)"
    if os.environ.get("CONVEYOR_REQUIRE_SERVICES") == "1":  # as tests/conftest.unavailable
        pytest.fail(f"required but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def image() -> Stage:
    return stages(str(ROOT / "deploy" / "serve.Dockerfile"))[-1]


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's environment: what its build stage's ``uv sync`` installs, here."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    base = getattr(sys, "_base_executable", "") or sys.executable
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run([*_uv(), "sync", "--frozen", "--no-dev", "--no-editable", "--quiet",
                           "--python", base], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert (venv / "bin" / "conveyor").is_file()
    return venv


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory, wdbc_path: Path,
                 seed_mlflow: Callable[[Path], Path]) -> Path:
    """A home whose registry has breast_cancer_classifier v1 at ``production``."""
    home = tmp_path_factory.mktemp("served") / "home"
    seed_mlflow(home)
    env = {**os.environ, "CONVEYOR_HOME": str(home), "WDBC_PATH": str(wdbc_path)}
    for argv in (["run", str(BREAST_CANCER_SPEC), "-q"],
                 ["promote", "--spec", str(BREAST_CANCER_SPEC)]):
        done = subprocess.run([*CONVEYOR, *argv], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    return home


def _container_env(image: Stage, venv: Path, home: Path, **overrides: str) -> dict[str, str]:
    """The image's environment, as a container would see it, with this machine's paths."""
    env = image.env(inherited={"PATH": "/usr/local/bin:/usr/bin:/bin"})
    env["PATH"] = env["PATH"].replace(IMAGE_VENV, str(venv))
    env.update({"HOME": str(home.parent), "CONVEYOR_HOME": str(home), "HOST": "127.0.0.1",
                "PORT": str(free_port())})
    env.update(overrides)
    return env


def _request(url: str, body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    """Until ``url`` answers 200 eight times in a row: each worker process loads the model
    itself, and a connection may reach one still loading (503)."""
    deadline = time.monotonic() + seconds
    in_a_row = 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            in_a_row = in_a_row + 1 if _request(url)[0] == 200 else 0
        except OSError:
            in_a_row = 0
        if in_a_row >= 8:
            return
        time.sleep(0.1 if in_a_row else 0.3)
    raise AssertionError(f"{url} did not answer 200 within {seconds:.0f} s")


@pytest.fixture()
def started(image: Stage, image_venv: Path, trained_home: Path,
            tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str], Path]]:
    env = _container_env(image, image_venv, trained_home,
                         MLFLOW_TRACKING_URI=f"sqlite:///{trained_home / 'mlflow.db'}",
                         CONVEYOR_STORE=(tmp_path / "store").as_uri(),
                         CONVEYOR_SERVE_TOKEN=TOKEN)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(image.command(), env=env, cwd=tmp_path, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process, env, log
    finally:
        stop_group(process, grace=20)


def test_image_command_serves_the_production_model(
        started: tuple[subprocess.Popen[bytes], dict[str, str], Path], image: Stage,
        trained_home: Path) -> None:
    process, env, log = started
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        _wait_ready(f"{base}/ready", process, seconds=180)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log.read_text()[-3000:]}") from None
    assert env["MODEL_URI"] == "models:/breast_cancer_classifier@production"  # the image's

    # the image's HEALTHCHECK command, run as Docker would, says healthy (no token needed)
    _, healthcheck = image.healthcheck()
    assert subprocess.run(healthcheck, env=env, timeout=30, check=False).returncode == 0

    # the token variable turned auth on; the token itself is on no process's command line
    names = open_model(str(trained_home / "exports" / "breast_cancer")).feature_names
    body = {"dataframe_split": {"columns": names, "data": [[1.0] * len(names)]}}
    assert _request(f"{base}/invocations", body)[0] == 401
    status, answer = _request(f"{base}/invocations", body, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, answer
    assert json.loads(answer)["predictions"][0] in ("B", "M")
    group = os.getpgid(process.pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            assert TOKEN.encode() not in (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue

    # stopped by its pid (SIGTERM to its group), the healthcheck fails
    stop_group(process, grace=20)
    assert process.returncode is not None
    assert subprocess.run(healthcheck, env=env, capture_output=True, timeout=30,
                          check=False).returncode != 0


def test_image_command_refuses_to_start_without_a_model_uri(
        image: Stage, image_venv: Path, tmp_path: Path) -> None:
    """An empty MODEL_URI stops the entry command before the server starts, saying why."""
    env = _container_env(image, image_venv, tmp_path / "home", MODEL_URI="")
    done = subprocess.run(image.command(), env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "set MODEL_URI" in done.stderr, done.stderr
