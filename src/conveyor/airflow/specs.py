"""Which specs a pipelines folder holds and which DAG ids they give, without importing Airflow.

The DAGs-folder loader (:mod:`conveyor.airflow.loader`) turns these files into DAGs inside
Airflow; ``conveyor airflow test`` reads the same files in the ``conveyor`` process to name
a DAG's spec, or the DAGs a folder offers, before it starts Airflow (importing the Airflow
SDK costs about 3 s).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

__all__ = [
    "LAB_KEY",
    "MONITOR_KEY",
    "PIPELINES_ENV",
    "SPEC_SUFFIXES",
    "dag_ids_of",
    "env_seconds",
    "find_specs",
    "is_collect_spec",
    "is_lab_spec",
    "pipelines_folder",
    "spec_dags",
]

log = logging.getLogger(__name__)

PIPELINES_ENV = "CONVEYOR_PIPELINES"
SPEC_SUFFIXES = (".yaml", ".yml")
#: The top-level key that makes a YAML file a lab spec (pipeline specs have no ``watch``).
LAB_KEY = "watch"
#: The top-level key that gives a pipeline spec its ``<name>_monitor`` DAG too.
MONITOR_KEY = "monitor"
#: The suffixes of a lab's two DAG ids (``<lab>_train``, ``<lab>_promote``).
LAB_DAG_SUFFIXES = ("_train", "_promote")
#: The lab sensor pokes every ``CONVEYOR_LAB_POKE_SECONDS`` (10) and gives up, skipping the
#: run, after ``CONVEYOR_LAB_SENSOR_TIMEOUT`` seconds (300); read when the DAG file is parsed.
POKE_ENV, TIMEOUT_ENV = "CONVEYOR_LAB_POKE_SECONDS", "CONVEYOR_LAB_SENSOR_TIMEOUT"
SENSOR_POKE_SECONDS = 10.0
SENSOR_TIMEOUT_SECONDS = 300.0


def env_seconds(env: str, default: float) -> float:
    """A number of seconds from the environment variable ``env`` (0 < s <= 1 day), or default.

    Raises:
        SpecError: the value is not such a number.
    """
    from conveyor.errors import SpecError

    value = os.environ.get(env, "").strip()
    try:
        seconds = float(value) if value else default
    except ValueError:
        raise SpecError(f"{env} must be a number of seconds, got {value!r}") from None
    if not 0 < seconds <= 24 * 3600:
        raise SpecError(f"{env} must be between 0 and 86400 seconds, got {value!r}")
    return seconds


def pipelines_folder(environ: MutableMapping[str, str] | None = None) -> Path:
    """``CONVEYOR_PIPELINES`` (a folder or one spec file), or ``pipelines/`` in the cwd."""
    env = os.environ if environ is None else environ
    return Path(env.get(PIPELINES_ENV) or "pipelines").expanduser().resolve()


def is_lab_spec(data: Any) -> bool:
    """Whether parsed YAML is a lab spec rather than a pipeline spec."""
    return isinstance(data, Mapping) and LAB_KEY in data


#: The top-level key that makes a YAML file a collection spec (issue 12, ADR 0045).
COLLECT_KEY = "collect"


def is_collect_spec(data: Any) -> bool:
    """Whether parsed YAML is a collection spec (``collect:``) rather than a pipeline spec."""
    return isinstance(data, Mapping) and COLLECT_KEY in data and LAB_KEY not in data


def _is_overlay(path: Path) -> bool:
    """``churn.s3.yaml`` is a profile overlay of ``churn.yaml`` when that file exists beside it."""
    stem = path.name[: -len(path.suffix)]
    if "." not in stem:
        return False
    base = stem.split(".", 1)[0]
    return any((path.parent / f"{base}{suffix}").is_file() for suffix in SPEC_SUFFIXES)


def find_specs(location: Path) -> list[Path]:
    """Spec files of a pipelines folder, sorted.

    A folder holds specs at its top level and one level down (``<scenario>/pipeline.yaml``,
    as in ``examples/``); deeper files (a watched folder of configs, test data) are not specs.
    Profile overlays, hidden files and files starting with ``_`` are skipped.
    """
    if location.is_file():
        return [location]
    if not location.is_dir():
        log.warning("Conveyor pipelines folder %s does not exist; no DAGs", location)
        return []
    found: list[Path] = []
    for pattern in ("*", "*/*"):
        for path in location.glob(pattern):
            relative = path.relative_to(location).parts
            if (
                path.suffix.lower() in SPEC_SUFFIXES
                and path.is_file()
                and not any(part.startswith((".", "_")) for part in relative)
                and not _is_overlay(path)
            ):
                found.append(path)
    return sorted(found)


def dag_ids_of(data: Any) -> list[str]:
    """The DAG ids a parsed spec gives: its ``name``, or a lab's train and promote DAGs."""
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        return []
    name = data["name"]
    if is_lab_spec(data):
        return [f"{name}{suffix}" for suffix in LAB_DAG_SUFFIXES]
    if is_collect_spec(data):  # a scheduled collection (conveyor.airflow.collect_dags)
        return [f"{name}_collect"]
    if MONITOR_KEY in data:  # a served model's drift check (conveyor.airflow.monitor_dags)
        return [name, f"{name}_monitor"]
    return [name]


def spec_dags(location: Path) -> tuple[dict[str, Path], dict[Path, str]]:
    """DAG id -> spec file for every spec of ``location``, and the specs that cannot be read.

    Only the YAML is read (the loader's safe reader, with its limits), not validated: a spec
    with a wrong key still names its DAG, so that the error Airflow recorded for it can be
    shown. A file that is not YAML at all maps to its error message.
    """
    from conveyor.errors import ConveyorError
    from conveyor.spec import read_yaml

    dags: dict[str, Path] = {}
    unreadable: dict[Path, str] = {}
    for path in find_specs(location):
        try:
            data, _ = read_yaml(path)
        except ConveyorError as exc:
            unreadable[path] = str(exc)
            continue
        for dag_id in dag_ids_of(data):
            dags.setdefault(dag_id, path)
    return dags, unreadable
