"""The contract every step keeps, checked on each step of the breast-cancer pipeline.

- it writes every declared output, and its record lists each with the sha256 of the bytes
  actually stored;
- its record is written after its outputs and names the cache key it ran under;
- it may run twice (Airflow runs tasks at least once): a forced second run of the same step in
  the same run overwrites its outputs with identical content and adds no registry version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.runners import LocalRunner, execute_step, open_run
from conveyor.spec import load_spec
from conveyor.steps import STEP_NAMES, pipeline_steps


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, wdbc_path: Path,
                 seed_mlflow: Callable[[Path], Path]):
    home = tmp_path_factory.mktemp("contract-home")
    seed_mlflow(home)
    patch = pytest.MonkeyPatch()
    patch.setenv("CONVEYOR_HOME", str(home))
    patch.setenv("WDBC_PATH", str(wdbc_path))
    patch.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        loaded = load_spec(Path(__file__).parents[2] / "examples/breast_cancer/pipeline.yaml")
        summary = LocalRunner(loaded).run()
        yield loaded, summary
    finally:
        patch.undo()


@pytest.fixture()
def same_home(finished_run, monkeypatch: pytest.MonkeyPatch, wdbc_path: Path):
    loaded, summary = finished_run
    run_uri = summary.manifest_ref.uri
    home = Path(run_uri.removeprefix("file://")).parents[3]
    monkeypatch.setenv("CONVEYOR_HOME", str(home))
    monkeypatch.setenv("WDBC_PATH", str(wdbc_path))
    return loaded, summary


def _versions(loaded) -> list[str]:
    from conveyor.tracking import Tracker

    client = Tracker(loaded.spec.tracking.uri, "breast_cancer").client
    found = client.search_model_versions(f"name = '{loaded.spec.registry.name}'")
    return sorted(str(v.version) for v in found)


def _bytes_of(store, ref) -> bytes:
    if store.exists(f"{ref.uri}/_conveyor_dir.json"):
        return store.get_bytes(f"{ref.uri}/_conveyor_dir.json")
    return store.get_bytes(ref.uri)


@pytest.mark.parametrize("step", STEP_NAMES)
def test_step_writes_its_declared_outputs_with_true_hashes(same_home, step: str) -> None:
    loaded, summary = same_home
    run = open_run(loaded, summary.run_id)
    record = run.read_record(step)
    declared = next(s for s in pipeline_steps() if s.name == step).outputs
    assert record is not None and record.status == "ok"
    assert set(declared) <= set(record.outputs)
    assert len(record.cache_key) == 64
    for ref in record.outputs.values():
        if run.store.exists(f"{ref.uri}/_conveyor_dir.json"):  # a model folder
            run.store.get_dir(ref, Path(run.store.root.removeprefix("file://")).parent / "x")
        else:
            assert hashlib.sha256(run.store.get_bytes(ref.uri)).hexdigest() == ref.sha256
    # the record is written after the outputs: its mtime is not older than any output's
    record_path = Path(run.record_uri(step).removeprefix("file://"))
    for ref in record.outputs.values():
        output_path = Path(ref.uri.removeprefix("file://"))
        if output_path.is_file():
            assert output_path.stat().st_mtime <= record_path.stat().st_mtime


@pytest.mark.parametrize("step", [s for s in STEP_NAMES if s not in ("export",)])
def test_step_run_twice_gives_the_same_outputs(same_home, step: str) -> None:
    loaded, summary = same_home
    run = open_run(loaded, summary.run_id)
    before = run.read_record(step)
    if step == "register":
        # train's re-run (the case before) made a new model: MLmodel records its creation
        # time. A new model is a new version by design (ADR 0016); the contract is about the
        # same inputs twice, so register once on the current model first.
        before = execute_step(run, step, force=True)
    versions_before = _versions(loaded)
    again = execute_step(run, step, force=True)
    assert again.status == before.status
    assert set(again.outputs) == set(before.outputs)
    for name, ref in again.outputs.items():
        assert ref.uri == before.outputs[name].uri  # keyed by run and step: overwritten
        if name == "model" or name == "report" or ref.uri.endswith(".png"):
            continue  # MLmodel records its creation time; plots embed renderer metadata
        if (step, name) == ("validate", "html"):
            # the page of validate's report: the first run's completion saved the pipeline's
            # schema (ADR 0046), so the re-run says it compared the table with it
            assert "compared with the saved schema" in Path(
                ref.uri.removeprefix("file://")).read_text()
            continue
        assert ref.sha256 == before.outputs[name].sha256, f"{step}.{name} changed on re-run"
    if step == "register":
        assert again.info["version"] == before.info["version"]
        assert again.info["created"] is False
    assert _versions(loaded) == versions_before  # no second version, whatever the step


def test_a_second_identical_run_is_served_from_the_cache(same_home) -> None:
    loaded, summary = same_home
    versions_before = _versions(loaded)
    second = LocalRunner(loaded).run()
    statuses = {name: record.status for name, record in second.records.items()}
    assert statuses["ingest"] == "ok"  # the source is always read: it may have changed
    for name in ("validate", "split", "train", "evaluate"):
        assert statuses[name] == "cached", statuses
        assert second.records[name].cached_from == summary.run_id
    assert statuses["gate"] == "ok"  # never cached: it renders this run's report (ADR 0041)
    assert statuses["register"] == "ok"
    # the same trained model: its version is reused, not registered again (ADR 0016)
    current = open_run(loaded, summary.run_id).read_record("register")
    assert second.records["register"].info["version"] == current.info["version"]
    assert second.records["register"].info["created"] is False
    assert _versions(loaded) == versions_before
    assert second.manifest["metrics"] == summary.manifest["metrics"]
