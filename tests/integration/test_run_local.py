"""The local runner end to end on the real WDBC file, with MLflow on SQLite.

The tests of this module share one CONVEYOR_HOME: the module fixture runs the pipeline twice
through the public API (the first run, then an identical one that must be cached), and later
tests add runs of their own (``until``, ``start``, overrides, a rejected gate). Assertions
about earlier runs look them up by run id, so they hold whatever else the home contains; a
fresh home per test would cost a full MLflow database migration and a full training each time.
Most tests read the :class:`conveyor.RunResult`; a few run ``conveyor`` itself end to end
(exit codes, messages), with ``--run-id`` chosen by the test.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import conveyor
from conveyor.cli import main
from conveyor.errors import GateRejectedError, SpecError
from conveyor.runners.executor import conveyor_version
from conveyor.spec import load_spec
from conveyor.store import files_digest

pytestmark = pytest.mark.integration

SPEC = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer" / "pipeline.yaml"
REGISTERED = "breast_cancer_classifier"
STEPS = ("ingest", "validate", "split", "train", "evaluate", "gate", "register", "export")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def step_line(self, step: str) -> str:
        lines = [line for line in self.out.splitlines() if line.split()[1:2] == [step]]
        assert len(lines) == 1, self.out
        return lines[0]


def cli(*args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Result(code, out.getvalue(), err.getvalue())


@dataclass
class Shared:
    home: Path
    first: conveyor.RunResult
    second: conveyor.RunResult

    @property
    def runs(self) -> Path:
        return self.home / "artifacts" / "breast_cancer"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, wdbc_path: Path) -> Shared:
    home = tmp_path_factory.mktemp("run-local") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVEYOR_HOME", str(home))
        mp.setenv("WDBC_PATH", str(wdbc_path))
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CONVEYOR_EXPORT_URI"):
            mp.delenv(name, raising=False)
        first = conveyor.run(SPEC)
        second = conveyor.run(SPEC)
    return Shared(home, first, second)


@pytest.fixture()
def home(shared: Shared, monkeypatch: pytest.MonkeyPatch, wdbc_path: Path) -> Path:
    monkeypatch.setenv("CONVEYOR_HOME", str(shared.home))
    monkeypatch.setenv("WDBC_PATH", str(wdbc_path))
    return shared.home


def client(home: Path) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db",
                        registry_uri=f"sqlite:///{home}/mlflow.db")


def mlflow_runs(home: Path, run_id: str) -> list[Any]:
    c = client(home)
    experiment = c.get_experiment_by_name("breast_cancer")
    return c.search_runs([experiment.experiment_id],
                         filter_string=f"tags.`conveyor.run_id` = '{run_id}'")


def versions_of(home: Path, run_id: str | None = None) -> list[Any]:
    found = client(home).search_model_versions(f"name = '{REGISTERED}'")
    if run_id is not None:
        found = [v for v in found if v.tags.get("conveyor.run_id") == run_id]
    return sorted(found, key=lambda v: int(v.version))


def manifest(shared: Shared, run_id: str) -> dict[str, Any]:
    return json.loads((shared.runs / run_id / "manifest.json").read_text())


def local(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


# --------------------------------------------------------------------------- first run


def test_full_run_passes_the_bar(shared: Shared) -> None:
    first = shared.first
    assert first.status == "ok" and first.exit_code == 0
    assert first.steps == dict.fromkeys(STEPS, "ok")
    assert first.metrics == manifest(shared, first.run_id)["metrics"]
    assert first.metrics["test_accuracy"] >= 0.95
    assert first.metrics["test_f1"] >= 0.93
    assert first.model_uri == f"models:/{REGISTERED}/1"
    assert first.run_uri == (shared.runs / first.run_id).as_uri()
    assert first.manifest_uri == (shared.runs / first.run_id / "manifest.json").as_uri()
    assert first.mlflow_run_id == mlflow_runs(shared.home, first.run_id)[0].info.run_id
    assert first.report_uri and local(first.report_uri).is_file()
    assert local(first.export_uri or "").name == "model"


def test_metrics_use_m_as_the_positive_class(shared: Shared, home: Path) -> None:
    """Recompute F1 from the exported model on the stored test split, with M positive."""
    import mlflow.sklearn
    from sklearn.metrics import accuracy_score, f1_score

    run = manifest(shared, shared.first.run_id)
    test = pd.read_parquet(local(run["artifacts"]["split/test"]["uri"]))
    model = mlflow.sklearn.load_model(
        str(home / "exports" / "breast_cancer" / shared.first.run_id / "model"))
    features = json.loads(local(run["artifacts"]["validate/report"]["uri"]).read_text())
    X = test[list(features["features"])]
    predicted = model.predict(X)
    assert f1_score(test["diagnosis"], predicted, pos_label="M") == pytest.approx(
        run["metrics"]["test_f1"])
    assert accuracy_score(test["diagnosis"], predicted) == pytest.approx(
        run["metrics"]["test_accuracy"])
    assert f1_score(test["diagnosis"], predicted, pos_label="B") != pytest.approx(
        run["metrics"]["test_f1"])


def test_manifest_written_last_and_hashes_match(shared: Shared) -> None:
    run_dir = shared.runs / shared.first.run_id
    data = manifest(shared, shared.first.run_id)
    assert data["status"] == "ok" and data["run_id"] == shared.first.run_id
    assert set(data["steps"]) == set(STEPS)
    written = (run_dir / "manifest.json").stat().st_mtime_ns
    others = [p for p in run_dir.rglob("*") if p.is_file() and p.name != "manifest.json"]
    assert others and all(p.stat().st_mtime_ns <= written for p in others)
    assert {"ingest/raw", "validate/table", "split/train", "split/test", "train/model",
            "evaluate/metrics", "gate/verdict", "register/registration",
            "export/manifest"} <= set(data["artifacts"])
    for name, ref in data["artifacts"].items():
        path = local(ref["uri"])
        if name == "train/model":
            index = json.loads((path / "_conveyor_dir.json").read_text())
            for rel, sha in index["files"].items():
                assert hashlib.sha256((path / rel).read_bytes()).hexdigest() == sha, rel
            assert files_digest(index["files"]) == ref["sha256"]
        else:
            content = path.read_bytes()
            assert hashlib.sha256(content).hexdigest() == ref["sha256"], name
            assert len(content) == ref["size"], name


def test_export_folder_is_complete(shared: Shared, home: Path) -> None:
    run_id = shared.first.run_id
    export = home / "exports" / "breast_cancer" / run_id
    assert {"model", "metrics.json", "manifest.json"} <= {p.name for p in export.iterdir()}
    assert (export / "model" / "MLmodel").is_file()
    exported = json.loads((export / "manifest.json").read_text())
    assert exported["run_id"] == run_id
    assert exported["registered"] == f"models:/{REGISTERED}/1"
    metrics = (export / "metrics.json").read_bytes()
    assert hashlib.sha256(metrics).hexdigest() == exported["artifacts"]["metrics.json"]["sha256"]


def test_one_mlflow_run_with_params_tags_dataset_and_model(shared: Shared, home: Path) -> None:
    import mlflow

    run_id = shared.first.run_id
    runs = mlflow_runs(home, run_id)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.params.C"] == "1.0"
    assert params["model.params.max_iter"] == "1000"
    assert params["split.test_size"] == "0.2"
    assert params["schema.target"] == "diagnosis"
    tags = run.data.tags
    loaded = load_spec(SPEC)
    assert tags["conveyor.spec_hash"] == loaded.spec_hash
    data = manifest(shared, run_id)
    raw = local(data["artifacts"]["ingest/raw"]["uri"]).read_bytes()
    assert tags["conveyor.data_hash"] == hashlib.sha256(raw).hexdigest()
    assert tags["conveyor.version"] == conveyor_version()
    assert tags["conveyor.status"] == "ok" and tags["conveyor.gate"] == "passed"
    assert tags["conveyor.registered_version"] == "1"
    assert run.data.metrics["test_f1"] == pytest.approx(data["metrics"]["test_f1"])

    inputs = run.inputs.dataset_inputs
    assert len(inputs) >= 1
    dataset = inputs[0].dataset
    assert dataset.name == "breast_cancer"
    assert tags["conveyor.data_hash"].startswith(dataset.digest)
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "raw"

    model_uri = data["steps"]["train"]["info"]["model_uri"]
    from conveyor.tracking import mlflow_scope

    with mlflow_scope(f"sqlite:///{home}/mlflow.db"):
        info = mlflow.models.get_model_info(model_uri)
    assert info.signature is not None
    inputs_schema = info.signature.inputs.input_names()
    assert "radius_mean" in inputs_schema and "diagnosis" not in inputs_schema
    assert "id" not in inputs_schema


def test_registered_version_1_carries_the_run(shared: Shared, home: Path) -> None:
    version = client(home).get_model_version(REGISTERED, "1")
    assert version.tags["conveyor.run_id"] == shared.first.run_id
    assert version.tags["conveyor.validated"] == "true"
    assert version.run_id == mlflow_runs(home, shared.first.run_id)[0].info.run_id
    model_sha = manifest(shared, shared.first.run_id)["artifacts"]["train/model"]["sha256"]
    assert version.tags["conveyor.model_sha256"] == model_sha


# --------------------------------------------------------------------------- re-runs


def test_second_identical_run_is_cached_and_reuses_v1(shared: Shared, home: Path) -> None:
    first, second = shared.first, shared.second
    assert second.run_id != first.run_id
    assert second.steps["ingest"] == "ok"
    for step in ("validate", "split", "train", "evaluate"):
        assert second.steps[step] == "cached", step
        assert second.manifest["steps"][step]["cached_from"] == first.run_id, step
    assert second.steps["gate"] == "ok"  # never cached: it renders this run's report (ADR 0041)
    # the same trained model: the same version (ADR 0016)
    assert second.model_uri == f"models:/{REGISTERED}/1"
    assert versions_of(home, second.run_id) == []
    assert mlflow_runs(home, second.run_id)[0].data.tags["conveyor.registered_version"] == "1"
    assert manifest(shared, second.run_id)["metrics"] == manifest(shared, first.run_id)["metrics"]
    assert len(mlflow_runs(home, second.run_id)) == 1


def test_rerun_of_the_same_run_id_registers_nothing_new(shared: Shared, home: Path) -> None:
    run_id = shared.first.run_id
    before = [v.version for v in versions_of(home)]
    result = cli("run", str(SPEC), "--run-id", run_id)
    assert result.code == 0, result.err
    assert "(already registered)" in result.out
    assert [v.version for v in versions_of(home)] == before
    assert [str(v.version) for v in versions_of(home, run_id)] == ["1"]
    assert len(mlflow_runs(home, run_id)) == 1
    assert mlflow_runs(home, run_id)[0].info.status == "FINISHED"


def test_until_then_from_completes_the_run(shared: Shared, home: Path) -> None:
    partial = conveyor.run(SPEC, until="evaluate")
    run_id = partial.run_id
    assert partial.status == "partial" and list(partial.steps)[-1] == "evaluate"
    assert partial.manifest_uri is None and partial.model_uri is None
    run_dir = shared.runs / run_id
    assert (run_dir / "evaluate" / "_record.json").is_file()
    assert not (run_dir / "gate").exists()
    assert not (run_dir / "manifest.json").exists()
    assert versions_of(home, run_id) == []
    assert mlflow_runs(home, run_id)[0].data.tags["conveyor.status"] == "partial"

    done = cli("run", str(SPEC), "--from", "gate", "--run-id", run_id)  # as the CLI says
    assert done.code == 0, done.err
    assert "ingest" not in done.out.split("test metrics")[0]
    for step in ("gate", "register", "export"):
        assert "✓" in done.step_line(step)
    data = manifest(shared, run_id)
    assert data["status"] == "ok" and set(data["steps"]) == set(STEPS)
    # train was a cache hit on the first run's model: that model's version, no new one
    assert data["steps"]["register"]["info"]["version"] == "1"
    assert versions_of(home, run_id) == []
    assert len(mlflow_runs(home, run_id)) == 1
    assert mlflow_runs(home, run_id)[0].data.tags["conveyor.status"] == "ok"


def test_step_reruns_one_step_of_a_run(shared: Shared, home: Path) -> None:
    partial = conveyor.run(SPEC, until="split")
    run_id = partial.run_id
    record = shared.runs / run_id / "split" / "_record.json"
    before = json.loads(record.read_text())
    assert before["status"] == "cached" and partial.steps["split"] == "cached"
    again = conveyor.run(SPEC, only="split", run_id=run_id)
    assert again.steps == {"split": "ok"} and again.status == "partial"
    after = json.loads(record.read_text())
    assert after["status"] == "ok" and after["cached_from"] is None
    assert after["outputs"]["train"]["sha256"] == before["outputs"]["train"]["sha256"]
    assert not (shared.runs / run_id / "manifest.json").exists()

    with pytest.raises(SpecError, match=f"run {run_id} has no result of step train"):
        conveyor.run(SPEC, only="gate", run_id=run_id)
    no_id = cli("run", str(SPEC), "--from", "gate")  # the same error, as the CLI shows it
    assert no_id.code == 2 and "--from needs --run-id" in no_id.err


def test_override_changes_the_spec_hash_and_retrains(shared: Shared, home: Path) -> None:
    result = conveyor.run(SPEC, ["model.params.C=0.3"])
    assert result.steps["train"] == "ok"
    assert result.steps["split"] == "cached"  # split does not depend on the model
    run = mlflow_runs(home, result.run_id)[0]
    assert run.data.params["model.params.C"] == "0.3"
    first = mlflow_runs(home, shared.first.run_id)[0]
    assert run.data.tags["conveyor.spec_hash"] != first.data.tags["conveyor.spec_hash"]
    assert (manifest(shared, result.run_id)["artifacts"]["train/model"]["sha256"]
            != manifest(shared, shared.first.run_id)["artifacts"]["train/model"]["sha256"])


def test_registering_prints_conveyor_lines_only(shared: Shared, home: Path) -> None:
    # register downloads the new version to check its digest; MLflow's tqdm bar for that
    # download used to break into the step lines on stderr
    result = cli("run", str(SPEC), "model.params.C=0.7", "--run-id", "register-output")
    assert result.code == 0, result.err
    assert "registered models:/" in result.out
    assert "register" in result.step_line("register")
    assert "Downloading artifacts" not in result.out + result.err
    assert "it/s" not in result.err, result.err


def test_library_warnings_are_counted_in_the_step_line_not_printed(shared: Shared,
                                                                   home: Path) -> None:
    # scikit-learn's ConvergenceWarning (9 lines each, once per fit: every CV fold and every
    # search trial) went to stderr between the step lines: 144 lines for a 5-trial search
    result = cli("run", str(SPEC), "model.params.max_iter=3", "evaluate.cv=3",
                 "--run-id", "fit-warnings")
    assert result.code == 0, result.err
    assert "ConvergenceWarning" not in result.err and "lbfgs" not in result.err, result.err
    said = "ConvergenceWarning: lbfgs failed to converge after 3 iteration(s) (status=1)"
    assert result.step_line("train").endswith(f"LogisticRegression · 1 warning: {said}")
    assert f"3 warnings: {said}" in result.step_line("evaluate")
    steps = manifest(shared, "fit-warnings")["steps"]
    assert steps["train"]["info"]["library_warnings"] == [
        {"category": "ConvergenceWarning", "count": 1,
         "message": "lbfgs failed to converge after 3 iteration(s) (status=1)"}]
    assert steps["evaluate"]["info"]["library_warnings"][0]["count"] == 3
    assert "library_warnings" not in steps["split"]["info"]


def test_run_id_with_another_spec_is_refused(shared: Shared, home: Path) -> None:
    run_id = shared.first.run_id
    before = (shared.runs / run_id / "manifest.json").read_bytes()
    versions = [v.version for v in versions_of(home)]
    result = cli("run", str(SPEC), "model.params.C=0.5", "--run-id", run_id)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {SPEC}: ")
    assert f"run {run_id} was started with another spec" in lines[0]
    assert (shared.runs / run_id / "manifest.json").read_bytes() == before
    assert [v.version for v in versions_of(home)] == versions


def test_gate_failure_exits_3_and_publishes_nothing(shared: Shared, home: Path) -> None:
    latest = home / "exports" / "breast_cancer" / "latest.json"
    latest_before = latest.read_bytes()
    versions = [v.version for v in versions_of(home)]
    run_id = "gate-rejected-by-the-cli"
    result = cli("run", str(SPEC), "gate.test_f1=0.999", "--run-id", run_id)
    assert result.code == 3, result.err
    assert f"run        {run_id}" in result.out
    assert "gate rejected the model" in result.out and "test_f1" in result.out
    assert "nothing was registered or exported" in result.out
    assert f"/{run_id}/gate/report.html" in result.out  # the report of a rejected run
    data = manifest(shared, run_id)
    assert data["status"] == "rejected"
    assert data["steps"]["register"]["status"] == "skipped"
    assert data["steps"]["export"]["status"] == "skipped"
    assert "test_f1 = 0.9512, needs >= 0.999" in data["steps"]["gate"]["info"]["reason"]
    assert versions_of(home, run_id) == []
    assert [v.version for v in versions_of(home)] == versions
    assert not (home / "exports" / "breast_cancer" / run_id).exists()
    assert latest.read_bytes() == latest_before
    tags = mlflow_runs(home, run_id)[0].data.tags
    assert tags["conveyor.gate"] == "rejected" and tags["conveyor.status"] == "rejected"
    # Only the gate changed: evaluate is reused (gate is not in its cache key, ADR 0027), and
    # the gate renders this run's report with its verdict before the rejection halts the run
    # (ADR 0041); it is an artifact of the MLflow run too.
    assert data["steps"]["evaluate"]["status"] == "cached"
    report = Path(data["artifacts"]["gate/report"]["uri"].removeprefix("file://"))
    assert f"/{run_id}/gate/report.html" in str(report)
    page = report.read_text()
    assert '<span class="verdict rejected">REJECTED</span>' in page
    assert "test_f1 = 0.9512, needs &gt;= 0.999" in page and f"run {run_id}" in page
    mlflow_run = mlflow_runs(home, run_id)[0]
    logged = client(home).download_artifacts(mlflow_run.info.run_id, "gate/report.html",
                                             str(home / "downloaded"))
    assert Path(logged).read_text() == page


def test_gate_rejection_is_a_result_of_the_api(shared: Shared, home: Path) -> None:
    versions = [v.version for v in versions_of(home)]
    result = conveyor.run(SPEC, ["gate.test_f1=0.999"])
    assert (result.status, result.published, result.exit_code) == ("rejected", False, 3)
    assert "test_f1 = 0.9512, needs >= 0.999" in result.reason
    assert result.model_uri is None and result.export_uri is None
    assert result.manifest_uri and local(result.manifest_uri).is_file()
    assert result.metrics["test_f1"] == pytest.approx(shared.first.metrics["test_f1"])
    with pytest.raises(GateRejectedError, match=f"run {result.run_id}: the gate rejected"):
        result.raise_for_status()
    assert shared.first.raise_for_status() is shared.first
    assert [v.version for v in versions_of(home)] == versions


# --------------------------------------------------------------------------- other commands


def test_validate_exits_0(home: Path) -> None:
    result = cli("validate", str(SPEC))
    assert result.code == 0 and "is valid" in result.out and result.err == ""


def test_runs_lists_the_runs(shared: Shared, home: Path) -> None:
    for args in (("runs",), ("runs", str(SPEC))):
        result = cli(*args, "--limit", "50")
        assert result.code == 0, result.err
        rows = {line.split("│")[2].strip(): line for line in result.out.splitlines()
                if line.count("│") >= 6}
        for run_id in (shared.first.run_id, shared.second.run_id):
            assert run_id in rows, result.out
            assert "ok" in rows[run_id] and "0.9649" in rows[run_id]


def test_sklearn_source_is_the_raw_file_in_the_same_order(wdbc_path: Path) -> None:
    """What makes the sklearn profile's metrics equal to the raw file's: same rows, same order."""
    from conveyor.sources.bundled import read_sklearn_source
    from conveyor.spec.models import SklearnSource

    columns = load_spec(SPEC).spec.data.columns
    raw = pd.read_csv(wdbc_path, header=None, names=columns).drop(columns="id")
    bundled, facts = read_sklearn_source(SklearnSource(source="sklearn", name="breast_cancer"))
    assert facts["uri"] == "sklearn://breast_cancer"
    pd.testing.assert_frame_equal(bundled, raw)


def test_sklearn_profile_gives_the_same_test_metrics(shared: Shared, home: Path) -> None:
    result = conveyor.run(SPEC, profile="sklearn")
    assert result.status == "ok"
    data = manifest(shared, result.run_id)
    first = manifest(shared, shared.first.run_id)
    test_metrics = {k: v for k, v in first["metrics"].items() if k.startswith("test_")}
    assert test_metrics
    for name, value in test_metrics.items():
        assert data["metrics"][name] == pytest.approx(value, abs=1e-9), name
    assert data["spec_hash"] != first["spec_hash"]
