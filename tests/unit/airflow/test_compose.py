"""deploy/: the compose file is valid Compose and everything it names exists.

No Docker engine runs here, so the file is checked statically: against the Compose
Specification schema (vendored, see ``data/README.md``), and every reference it makes is
followed: build contexts and Dockerfiles, files the Dockerfile copies, bind mounts,
entrypoint scripts baked into the image, Airflow sub-commands (parsed by Airflow's own CLI
parser with the CeleryExecutor configured), the MLflow server's options, and variables.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
SCHEMA = Path(__file__).with_name("data") / "compose_spec.json"
CONVEYOR_IMAGE = "conveyor:local"
#: The image each Dockerfile builds: Airflow and MLflow share one, the model server has its own.
BUILT_IMAGES = {"deploy/Dockerfile": CONVEYOR_IMAGE,
                "deploy/serve.Dockerfile": "conveyor-serve:local"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _resolve(text: str) -> str:
    """Compose-style interpolation with defaults only (what an empty .env gives)."""
    return _VAR.sub(lambda m: m.group(3) if m.group(2) in (":-", "-") else "", text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _dockerfile_copies(dockerfile: Path) -> list[tuple[list[str], str]]:
    """``(sources, destination)`` of every COPY (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    copies = []
    for line in text.splitlines():
        if not line.strip().upper().startswith("COPY "):
            continue
        parts = shlex.split(line.strip())
        if any(p.startswith("--from=") for p in parts):
            continue  # from another build stage or image, not from the build context
        if parts:
            args = [p for p in parts[1:] if not p.startswith("--")]
            copies.append((args[:-1], args[-1]))
    return copies


def _in_image(path: str, dockerfile: Path, context: Path) -> Path | None:
    """The repository file that ends up at ``path`` in the image, if a COPY puts it there."""
    for sources, dest in _dockerfile_copies(dockerfile):
        for source in sources:
            target = dest if not dest.endswith("/") else dest + Path(source).name
            if target.rstrip("/") == path:
                return context / source
            if dest.endswith("/") and (context / source).is_dir() and path.startswith(dest):
                candidate = context / source / path[len(dest):]
                if candidate.exists():
                    return candidate
    return None


def test_compose_file_is_valid_against_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_check_catches_a_wrong_key(compose: dict[str, Any]) -> None:
    """The schema check can fail: an unknown service key is rejected."""
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["redis"]["restrat"] = "always"
    with pytest.raises(jsonschema.ValidationError, match="restrat"):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft201909Validator)


def test_the_stack_has_every_part(services: dict[str, dict[str, Any]]) -> None:
    assert {"postgres", "redis", "minio", "minio-init", "mlflow", "airflow-init",
            "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer", "airflow-worker"} <= set(services)
    env = services["airflow-worker"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    connection = json.loads(_resolve(env["AIRFLOW_CONN_CONVEYOR_DEFAULT"]))
    assert connection["conn_type"] == "conveyor"
    assert connection["extra"]["store_root"].startswith("s3://")


def test_every_image_is_pinned_or_built_here(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = _resolve(service.get("image", ""))
        assert image or "build" in service, f"{name}: neither image nor build"
        if "build" in service:
            expected = BUILT_IMAGES.get(service["build"]["dockerfile"])
            assert image == expected, f"{name}: {image!r} is not what its Dockerfile builds"
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: pin {image!r} to a version"


def test_build_contexts_dockerfiles_and_their_copies_exist(
    services: dict[str, dict[str, Any]]
) -> None:
    built = [s for s in services.values() if "build" in s]
    assert built
    for service in built:
        context = (DEPLOY / service["build"]["context"]).resolve()
        dockerfile = context / service["build"]["dockerfile"]
        assert dockerfile.is_file(), dockerfile
        copies = _dockerfile_copies(dockerfile)
        assert copies
        for sources, _ in copies:
            for source in sources:
                assert (context / source).exists(), f"{dockerfile} copies missing {source}"


def test_bind_mounts_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: bind mount {source} is missing"


def test_entrypoints_baked_into_the_image_exist_and_are_executable(
    services: dict[str, dict[str, Any]]
) -> None:
    checked = 0
    for name, service in services.items():
        entrypoint = service.get("entrypoint")
        if not entrypoint or "build" not in service:
            continue
        context = (DEPLOY / service["build"]["context"]).resolve()
        dockerfile = context / service["build"]["dockerfile"]
        source = _in_image(entrypoint[0], dockerfile, context)
        assert source is not None, f"{name}: no COPY puts {entrypoint[0]} into the image"
        assert source.read_text().startswith("#!"), f"{source} has no shebang"
        assert os.access(source, os.X_OK), f"{source} is not executable"
        checked += 1
    assert checked >= 1


def test_mounted_scripts_run_by_other_images_exist(services: dict[str, dict[str, Any]]) -> None:
    init = services["minio-init"]
    script = init["entrypoint"][-1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in init["volumes"]}
    assert script in mounts
    assert (DEPLOY / mounts[script]).read_text().startswith("#!/bin/sh")


def _airflow_commands(services: dict[str, dict[str, Any]]) -> list[list[str]]:
    commands = []
    for service in services.values():
        if service.get("build", {}).get("dockerfile") != "deploy/Dockerfile":
            continue
        if "command" in service and "entrypoint" not in service:
            commands.append(list(service["command"]))
        test = service.get("healthcheck", {}).get("test", [])
        if test[:2] == ["CMD", "airflow"]:
            commands.append(test[2:])
    return commands


def test_airflow_commands_exist_in_airflow_3_cli(services: dict[str, dict[str, Any]],
                                                 tmp_path: Path) -> None:
    """Each Airflow service's command parses with Airflow's own CLI parser (Celery on)."""
    commands = _airflow_commands(services)
    assert ["celery", "worker"] in commands and ["scheduler"] in commands
    probe = (
        "import json, sys\n"
        "from airflow.cli.cli_parser import get_parser\n"
        "bad = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        get_parser().parse_args(argv)\n"
        "    except SystemExit:\n"
        "        bad.append(argv)\n"
        "print(json.dumps(bad))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/a.db"})
    bad_probe = [*commands, ["celery", "wrker"]]
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(bad_probe)], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    rejected = json.loads(done.stdout.strip().splitlines()[-1])
    assert rejected == [["celery", "wrker"]], rejected  # the probe itself can say no


def test_mlflow_server_script_uses_existing_options() -> None:
    script = (DEPLOY / "mlflow-server.sh").read_text()
    used = set(re.findall(r"(--[a-z][a-z-]+)", script))
    assert "--backend-store-uri" in used
    done = subprocess.run([str(Path(sys.executable).parent / "mlflow"), "server", "--help"],
                          capture_output=True, text=True, timeout=120, check=True)
    known = set(re.findall(r"(--[a-z][a-z-]+)", done.stdout))
    assert used <= known, used - known


def test_required_variables_are_in_env_example(compose: dict[str, Any]) -> None:
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    }
    used = {m.group(1) for m in _VAR.finditer(COMPOSE.read_text())}
    required = {m.group(1) for m in _VAR.finditer(COMPOSE.read_text()) if m.group(2) == ":?"}
    assert required <= example, required - example
    assert used <= example, used - example


def test_depends_on_names_defined_services(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert dependency != name
