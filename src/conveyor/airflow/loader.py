"""The DAGs-folder loader: every spec in ``CONVEYOR_PIPELINES`` becomes one DAG.

Drop :file:`dags/conveyor_pipelines.py` (``conveyor airflow dags-folder`` prints it) into an
Airflow DAGs folder. It calls :func:`publish`, which scans the pipelines folder and puts one
DAG per spec into the module's globals, where Airflow's DagBag finds them.

A broken spec must not hide the other DAGs, and Airflow records import errors per *file*:
raising from the loader would drop every DAG it defines. So good specs become DAGs, and the
broken ones are collected into one :class:`BrokenSpecsDag` whose ``validate()`` raises.
Airflow 3.3's ``DagBag.process_file`` validates each DAG of a file separately and records a
failing one as an import error of that file (``ParseImportError``, shown in the UI and by
``airflow dags list-import-errors``) while bagging the others. The error names each broken
spec file, line and key.

Parsing stays cheap: only the spec loader (pydantic, PyYAML) and the Airflow SDK are imported
here; steps, pandas, scikit-learn and MLflow are imported by tasks when they run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow.sdk import DAG

from conveyor.airflow.factory import build_dag

__all__ = [
    "BrokenSpecsDag",
    "ConveyorImportError",
    "LoadResult",
    "build_dags",
    "find_specs",
    "pipelines_folder",
    "publish",
]

log = logging.getLogger(__name__)

PIPELINES_ENV = "CONVEYOR_PIPELINES"
PROFILE_ENV = "CONVEYOR_PROFILE"
SPEC_SUFFIXES = (".yaml", ".yml")


class ConveyorImportError(Exception):
    """One or more pipeline specs could not become DAGs (shown as an Airflow import error)."""


class BrokenSpecsDag(DAG):
    """Carrier of the loader's spec errors: never bagged, its validation fails on purpose."""

    conveyor_errors: tuple[str, ...] = ()

    def validate(self) -> None:
        """Raise the collected spec errors so Airflow records them against the loader file."""
        raise ConveyorImportError(
            f"{len(self.conveyor_errors)} Conveyor pipeline spec(s) failed to load:\n"
            + "\n".join(self.conveyor_errors)
        )


@dataclass
class LoadResult:
    """What the loader made of a folder: DAGs by id, and one message per broken spec."""

    dags: dict[str, DAG] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def pipelines_folder(environ: MutableMapping[str, str] | None = None) -> Path:
    """``CONVEYOR_PIPELINES`` (a folder or one spec file), or ``pipelines/`` in the cwd."""
    env = os.environ if environ is None else environ
    return Path(env.get(PIPELINES_ENV) or "pipelines").expanduser().resolve()


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


def _profile_for(path: Path, profile: str | None) -> str | None:
    if profile and (path.parent / f"{path.stem}.{profile}{path.suffix}").is_file():
        return profile
    return None


def build_dags(paths: Iterable[Path], *, profile: str | None = None) -> LoadResult:
    """Build one DAG per spec; a broken spec becomes an error message, not an exception.

    Args:
        paths: spec files.
        profile: overlay ``<stem>.<profile>.yaml`` where such a file exists.

    Returns:
        The DAGs and, per broken spec file, a message naming the file, line and key.
    """
    from conveyor.errors import ConveyorError
    from conveyor.spec import load_spec

    started = time.perf_counter()
    result = LoadResult()
    origin: dict[str, Path] = {}
    for path in paths:
        chosen = _profile_for(path, profile)
        try:
            loaded = load_spec(path, profile=chosen)
            dag_id = loaded.spec.name
            if dag_id in result.dags:
                result.errors[str(path)] = (
                    f"{path}: name: pipeline name {dag_id!r} is already used by "
                    f"{origin[dag_id]}; every spec in a pipelines folder needs its own name"
                )
                continue
            result.dags[dag_id] = build_dag(path, profile=chosen, loaded=loaded)
            origin[dag_id] = path
        except ConveyorError as exc:
            result.errors[str(path)] = str(exc)
        except Exception as exc:
            log.exception("Conveyor spec %s could not become a DAG", path)
            result.errors[str(path)] = f"{path}: {type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - started
    log.info("Conveyor: %d DAG(s), %d broken spec(s) in %.3fs",
             len(result.dags), len(result.errors), result.seconds)
    return result


def publish(namespace: MutableMapping[str, Any], location: str | os.PathLike[str] | None = None) -> LoadResult:
    """Put one DAG per spec into ``namespace`` (a DAG file's ``globals()``).

    Args:
        namespace: where Airflow's DagBag looks for DAG objects.
        location: a pipelines folder or one spec; ``CONVEYOR_PIPELINES`` by default.

    Returns:
        What was loaded; broken specs are published as one :class:`BrokenSpecsDag`.
    """
    folder = Path(location).resolve() if location is not None else pipelines_folder()
    result = build_dags(find_specs(folder), profile=os.environ.get(PROFILE_ENV) or None)
    for dag_id, dag in result.dags.items():
        namespace[f"conveyor_dag__{dag_id}"] = dag
    if result.errors:
        broken = BrokenSpecsDag(dag_id="conveyor_broken_specs", schedule=None)
        broken.conveyor_errors = tuple(result.errors[key] for key in sorted(result.errors))
        namespace["conveyor_broken_specs"] = broken
    return result
