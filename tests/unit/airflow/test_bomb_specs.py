"""A YAML bomb in a pipelines folder is an import error naming the file, not a hung DAG parse.

The loader runs in a fresh interpreter under a wall-clock timeout and an address-space limit,
as Airflow's DAG processor would run it; the good spec beside the bomb still becomes a DAG.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("airflow.sdk")

REPO = Path(__file__).resolve().parents[3]
SPEC = REPO / "examples" / "breast_cancer" / "pipeline.yaml"
MEMORY_LIMIT = 1536 * 1024 * 1024
TIMEOUT = 120.0  # wall seconds, generous for a loaded machine


def merge_bomb(levels: int = 9, fan: int = 9) -> str:
    node = "&a0 {k: 1}"
    for level in range(1, levels + 1):
        node = f"&a{level} {{<<: [{node}" + f", *a{level - 1}" * (fan - 1) + "]}"
    return node


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


PROBE = textwrap.dedent("""
    import json, sys
    from conveyor.airflow.loader import ConveyorImportError, publish, raise_spec_errors
    namespace = {}
    published = publish(namespace, sys.argv[1])
    try:
        raise_spec_errors(sys.argv[1])
        error = None
    except ConveyorImportError as exc:
        error = str(exc)
    print(json.dumps({"dags": sorted(published.dags), "error": error}))
""")


def test_a_merge_key_bomb_spec_is_an_import_error_not_a_hang(tmp_path: Path) -> None:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    text = SPEC.read_text()
    (folder / "good.yaml").write_text(text.replace("name: breast_cancer", "name: good", 1))
    bomb = folder / "bomb.yaml"
    bomb.write_text("name: bomb\nmodel:\n  params: {<<: [" + merge_bomb() + "]}\n")
    assert bomb.stat().st_size < 600

    started = _cpu_seconds()
    try:
        done = subprocess.run([sys.executable, "-c", PROBE, str(folder)], capture_output=True,
                              text=True, timeout=TIMEOUT, preexec_fn=limit_memory, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"parsing the pipelines folder still running after {TIMEOUT:.0f}s")
    seconds = _cpu_seconds() - started  # CPU time: it does not grow on a busy machine
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["dags"] == ["good"]
    error = report["error"]
    assert error is not None and error.startswith("1 Conveyor pipeline spec(s) are not DAGs:")
    assert f"{bomb}:3: model.params.<<" in error
    assert "expand this spec to more than 20000 values" in error
    assert len(error) < 600
    assert seconds < 15  # about 4 here, nearly all of it importing Airflow

