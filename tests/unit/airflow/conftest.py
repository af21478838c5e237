"""Shared by the DAG-folder tests: parse specs as Airflow's DAG processor does, in a fresh
process, and report what was built and which heavy modules the parse imported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest


def parse_dag_folder(spec: Path, dag_id: str, heavy: Sequence[str]) -> dict[str, Any]:
    """Build the DAGs of ``spec`` in a new interpreter (so ``sys.modules`` starts empty).

    Returns:
        ``dags`` (sorted ids), ``errors`` (file -> message), the ``tasks`` and ``tags`` of
        ``dag_id``, and ``heavy``: the modules of ``heavy`` the parse imported.
    """
    probe = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from conveyor.airflow.loader import build_dags
        result = build_dags([Path({str(spec)!r})])
        dag = result.dags[{dag_id!r}]
        print(json.dumps({{"dags": sorted(result.dags), "errors": result.errors,
                          "tasks": sorted(dag.task_ids), "tags": sorted(dag.tags),
                          "heavy": [m for m in {tuple(heavy)!r} if m in sys.modules]}}))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture()
def dag_folder_parse() -> Callable[[Path, str, Sequence[str]], dict[str, Any]]:
    """:func:`parse_dag_folder`, for the tests of one kind of DAG."""
    return parse_dag_folder
