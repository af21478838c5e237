"""The DAGs-folder loader: every spec in ``CONVEYOR_PIPELINES`` becomes one DAG.

Two files go into an Airflow DAGs folder (``conveyor airflow dags-folder`` prints them):

* ``conveyor_pipelines.py`` calls :func:`publish`: one DAG per valid spec, put into the
  module's globals where Airflow's DagBag finds them. Broken specs are skipped (and logged).
* ``conveyor_spec_errors.py`` calls :func:`raise_spec_errors`: it defines no DAG and raises
  :class:`ConveyorImportError` naming every broken spec's file, line and key, which Airflow
  records as an import error of that file (UI, ``airflow dags list-import-errors``).

Why two files: Airflow 3.3 keys import errors by file, and when a file has one it marks
*every* DAG whose ``relative_fileloc`` is that file stale (``is_stale=True``,
``airflow/dag_processing/collection.py::_update_import_errors``): stale DAGs are not
scheduled. An error raised from, or recorded against, the file holding the good DAGs would
therefore hide them all. The errors file holds no DAGs, so its import error hides nothing.

Parsing stays cheap: only the spec loader (pydantic, PyYAML) and the Airflow SDK are imported
here; pandas, scikit-learn and MLflow are imported by tasks when they run.
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
from conveyor.airflow.specs import find_specs, is_lab_spec, pipelines_folder
from conveyor.errors import BadInputError

__all__ = [
    "ConveyorImportError",
    "LoadResult",
    "build_dags",
    "find_specs",
    "pipelines_folder",
    "publish",
    "raise_spec_errors",
]

log = logging.getLogger(__name__)

PROFILE_ENV = "CONVEYOR_PROFILE"
CONN_ID_ENV = "CONVEYOR_CONN_ID"


class ConveyorImportError(BadInputError):
    """One or more pipeline specs could not become DAGs (shown as an Airflow import error).

    Bad input like any :class:`~conveyor.errors.SpecError` it gathers: fixing the specs, not
    retrying, clears it.
    """


@dataclass
class LoadResult:
    """What the loader made of a folder: DAGs by id, and one message per broken spec."""

    dags: dict[str, DAG] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _profile_for(path: Path, profile: str | None) -> str | None:
    if profile and (path.parent / f"{path.stem}.{profile}{path.suffix}").is_file():
        return profile
    return None


def build_dags(
    paths: Iterable[Path], *, profile: str | None = None, conveyor_conn_id: str | None = None
) -> LoadResult:
    """Build one DAG per spec; a broken spec becomes an error message, not an exception.

    Args:
        paths: spec files.
        profile: overlay ``<stem>.<profile>.yaml`` where such a file exists.
        conveyor_conn_id: a ``conveyor`` connection for every task (store root, tracking).

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
            if _add_lab_dags(path, result, origin) or _add_collect_dag(
                    path, result, origin, conveyor_conn_id):
                continue
            loaded = load_spec(path, profile=chosen)
            dag_id = loaded.spec.name
            if dag_id in result.dags:
                result.errors[str(path)] = (
                    f"{path}: name: pipeline name {dag_id!r} is already used by "
                    f"{origin[dag_id]}; every spec in a pipelines folder needs its own name"
                )
                continue
            built = [build_dag(path, profile=chosen, loaded=loaded,
                               conveyor_conn_id=conveyor_conn_id)]
            if "monitor" in loaded.spec.present():  # a served model's drift check
                from conveyor.airflow.monitor_dags import build_monitor_dag

                built.append(build_monitor_dag(path, loaded=loaded, profile=chosen,
                                               conveyor_conn_id=conveyor_conn_id))
            for dag in built:
                result.dags[dag.dag_id] = dag
                origin[dag.dag_id] = path
        except ConveyorError as exc:
            result.errors[str(path)] = str(exc)
        except Exception as exc:
            log.exception("Conveyor spec %s could not become a DAG", path)
            result.errors[str(path)] = f"{path}: {type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - started
    log.info("Conveyor: %d DAG(s), %d broken spec(s) in %.3fs",
             len(result.dags), len(result.errors), result.seconds)
    return result


def _add_lab_dags(path: Path, result: LoadResult, origin: dict[str, Path]) -> bool:
    """A lab spec (top-level ``watch``) becomes its train and promote DAGs; else ``False``."""
    from conveyor.airflow.lab_dags import build_lab_dags
    from conveyor.spec import read_yaml

    data, _ = read_yaml(path)
    if not is_lab_spec(data):
        return False
    dags = build_lab_dags(path)
    taken = [dag.dag_id for dag in dags if dag.dag_id in result.dags]
    if taken:
        result.errors[str(path)] = (
            f"{path}: name: DAG id {taken[0]!r} is already used by {origin[taken[0]]}; "
            "every spec in a pipelines folder needs its own name")
        return True
    for dag in dags:
        result.dags[dag.dag_id] = dag
        origin[dag.dag_id] = path
    return True


def _add_collect_dag(path: Path, result: LoadResult, origin: dict[str, Path],
                     conveyor_conn_id: str | None) -> bool:
    """A collection spec (top-level ``collect``) becomes its ``<name>_collect`` DAG; else
    ``False`` (issue 12, ADR 0045)."""
    from conveyor.airflow.specs import is_collect_spec
    from conveyor.spec import read_yaml

    data, _ = read_yaml(path)
    if not is_collect_spec(data):
        return False
    from conveyor.airflow.collect_dags import build_collect_dag
    from conveyor.sources.collect import load_collection

    dag = build_collect_dag(path, collection=load_collection(path),
                            conveyor_conn_id=conveyor_conn_id)
    if dag.dag_id in result.dags:
        result.errors[str(path)] = (
            f"{path}: name: DAG id {dag.dag_id!r} is already used by {origin[dag.dag_id]}; "
            "every spec in a pipelines folder needs its own name")
        return True
    result.dags[dag.dag_id] = dag
    origin[dag.dag_id] = path
    return True


def _load(location: str | os.PathLike[str] | None) -> LoadResult:
    folder = Path(location).resolve() if location is not None else pipelines_folder()
    return build_dags(find_specs(folder), profile=os.environ.get(PROFILE_ENV) or None,
                      conveyor_conn_id=os.environ.get(CONN_ID_ENV) or None)


def publish(
    namespace: MutableMapping[str, Any], location: str | os.PathLike[str] | None = None
) -> LoadResult:
    """Put one DAG per valid spec into ``namespace`` (a DAG file's ``globals()``).

    Args:
        namespace: where Airflow's DagBag looks for DAG objects.
        location: a pipelines folder or one spec; ``CONVEYOR_PIPELINES`` by default.

    Returns:
        What was loaded. Broken specs are only logged here; :func:`raise_spec_errors`, called
        from a file of its own, makes them import errors.
    """
    result = _load(location)
    for dag_id, dag in result.dags.items():
        namespace[f"conveyor_dag__{dag_id}"] = dag
    for path, message in sorted(result.errors.items()):
        log.warning("Conveyor spec %s is not a DAG: %s", path, message)
    return result


def raise_spec_errors(location: str | os.PathLike[str] | None = None) -> LoadResult:
    """Raise one :class:`ConveyorImportError` naming every broken spec, if there is any.

    Args:
        location: a pipelines folder or one spec; ``CONVEYOR_PIPELINES`` by default.

    Returns:
        The load result, when every spec is valid.

    Raises:
        ConveyorImportError: listing ``file:line: key: message`` for each broken spec.
    """
    result = _load(location)
    if result.errors:
        raise ConveyorImportError(
            f"{len(result.errors)} Conveyor pipeline spec(s) are not DAGs:\n"
            + "\n".join(result.errors[key] for key in sorted(result.errors))
        )
    return result
