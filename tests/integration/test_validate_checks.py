"""``conveyor validate`` checks what a run will need: the data file and sane gate bounds.

The data file is checked on every ``validate`` (one metadata request, nothing downloaded),
including after a run has remembered that the spec passed its other checks (ADR 0011): a
file can disappear. Gate bounds outside a metric's range are spec errors for every command.
Each error is one line naming the spec file, the line and the key, with exit code 2, and
nothing is created (no store, no MLflow database).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from conveyor.cli import main
from conveyor.processes import free_port

# a spec error creates nothing, not even the MLflow database: each test starts without one
pytestmark = pytest.mark.fresh_mlflow

EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "breast_cancer"
           / "pipeline.yaml").read_text()
URI_LINE = "  uri: ${WDBC_PATH:-../../../shared/data/wdbc/wdbc.data}"


def spec_with(tmp_path: Path, old: str, new: str, name: str = "pipeline.yaml") -> Path:
    assert EXAMPLE.count(old) == 1, old
    path = tmp_path / name
    path.write_text(EXAMPLE.replace(old, new))
    return path


def line_of(path: Path, needle: str) -> int:
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_spec_error(code: int, err: str, path: Path, line: int, key: str, *fragments: str,
                      home: Path) -> None:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {path}:{line}: {key}: "), err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    assert not (home / "artifacts").exists()
    assert not (home / "mlflow.db").exists()


# --------------------------------------------------------------------------- the data file


def test_missing_data_file_names_the_resolved_path_and_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], conveyor_home: Path,
) -> None:
    path = spec_with(tmp_path, URI_LINE, "  uri: data/wdbc.data")
    code, _, err = cli(capsys, "validate", str(path))
    assert_spec_error(code, err, path, line_of(path, "uri:"), "data.uri",
                      f"data file not found: {tmp_path}/data/wdbc.data (data/wdbc.data "
                      "resolved against the spec's folder)", home=conveyor_home)


@pytest.mark.parametrize(
    ("what", "expected"),
    [("folder", "is a folder with no data files in it"), ("empty", "is empty (0 bytes)")])
def test_data_uri_must_name_a_non_empty_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], conveyor_home: Path,
    what: str, expected: str,
) -> None:
    target = tmp_path / "data"
    if what == "folder":
        target.mkdir()
    else:
        target.write_bytes(b"")
    path = spec_with(tmp_path, URI_LINE, f"  uri: {target}")
    code, _, err = cli(capsys, "validate", str(path))
    assert_spec_error(code, err, path, line_of(path, "uri:"), "data.uri", f"{target} {expected}",
                      home=conveyor_home)


def test_data_file_over_max_bytes_names_that_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], conveyor_home: Path, wdbc_path: Path,
) -> None:
    path = spec_with(tmp_path, URI_LINE, f"  uri: {wdbc_path}\n  max_bytes: 1000")
    code, _, err = cli(capsys, "validate", str(path))
    size = wdbc_path.stat().st_size
    assert_spec_error(code, err, path, line_of(path, "max_bytes:"), "data.max_bytes",
                      f"{wdbc_path} is {size:,} bytes, over the limit of 1,000",
                      home=conveyor_home)


def test_data_file_is_checked_again_after_a_run_remembered_the_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], conveyor_home: Path, wdbc_path: Path,
) -> None:
    data = tmp_path / "wdbc.data"
    data.write_bytes(wdbc_path.read_bytes())
    path = spec_with(tmp_path, URI_LINE, f"  uri: {data}")
    assert cli(capsys, "validate", str(path))[0] == 0
    code, _, err = cli(capsys, "run", str(path), "--until", "validate")
    assert code == 0, err
    assert list((conveyor_home / "artifacts").rglob("_cache/checked/*.json"))  # remembered

    data.unlink()
    code, _, err = cli(capsys, "validate", str(path))
    assert code == 2 and err.startswith(f"error: {path}:{line_of(path, 'uri:')}: data.uri: "
                                        f"data file not found: {data}"), err
    code, _, err = cli(capsys, "run", str(path))  # the run's ingest step says the same
    assert code == 2 and f"data file not found: {data} (data.uri)" in err, err


def test_data_on_s3_is_checked_without_downloading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], conveyor_home: Path, wdbc_path: Path,
    s3_bucket: str, s3_env: str,
) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_env)
    client.put_object(Bucket=s3_bucket, Key="raw/wdbc.data", Body=wdbc_path.read_bytes())
    present = spec_with(tmp_path, URI_LINE, f"  uri: s3://{s3_bucket}/raw/wdbc.data")
    code, out, err = cli(capsys, "validate", str(present))
    assert code == 0 and "is valid" in out, err

    missing = spec_with(tmp_path, URI_LINE, f"  uri: s3://{s3_bucket}/raw/gone.data", "m.yaml")
    code, _, err = cli(capsys, "validate", str(missing))
    assert_spec_error(code, err, missing, line_of(missing, "uri:"), "data.uri",
                      f"data file not found: s3://{s3_bucket}/raw/gone.data",
                      home=conveyor_home)
    assert "conveyor-test-secret" not in err


def test_unreachable_data_store_is_a_warning_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A spec is often validated where its data's store cannot be reached (CI): say so, and
    do not wait for the run's timeouts and retries (a minute per attempt, several attempts)."""
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        path = spec_with(tmp_path, URI_LINE, "  uri: s3://nowhere/wdbc.data")
        with caplog.at_level(logging.WARNING, logger="conveyor"):
            code, out, err = cli(capsys, "validate", str(path))
    assert code == 0 and "is valid" in out, err
    assert "data.uri was not checked: cannot reach s3://nowhere/wdbc.data" in caplog.text


def test_an_http_data_file_that_does_not_answer_is_a_warning_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    # a server that does not answer is a failure of the run, not a spec error (ADR 0053)
    dead = f"http://127.0.0.1:{free_port()}/wdbc.data"
    path = spec_with(tmp_path, URI_LINE, f"  uri: {dead}")
    with caplog.at_level(logging.WARNING, logger="conveyor"):
        code, out, err = cli(capsys, "validate", str(path))
    assert code == 0 and "is valid" in out, err
    assert f"data.uri was not checked: cannot reach {dead}" in caplog.text


# --------------------------------------------------------------------------- gate bounds


GATE_CASES = [
    pytest.param("  test_accuracy: 1.5", "gate.test_accuracy",
                 "1.5 is outside the range of accuracy [0, 1]: a minimum of 1.5 can never pass",
                 id="above-range"),
    pytest.param("  test_accuracy: -0.1", "gate.test_accuracy",
                 "-0.1 is outside the range of accuracy [0, 1]: a minimum of -0.1 always passes",
                 id="below-range"),
    pytest.param("  test_accuracy: {max: 1.2}", "gate.test_accuracy.max",
                 "a maximum of 1.2 always passes", id="max-above-range"),
    pytest.param("  test_accuracy: {min: 0.9, max: 0.8}", "gate.test_accuracy",
                 "min 0.9 is above max 0.8: no value can pass", id="min-above-max"),
    pytest.param("  test_accuracy: .nan", "gate.test_accuracy",
                 "expected a finite number, got nan", id="nan"),
    pytest.param("  test_accuracy: high", "gate.test_accuracy",
                 "expected a number (a minimum like 0.9), got 'high'", id="text"),
    pytest.param("  test_accuracy: true", "gate.test_accuracy",
                 "expected a number (a minimum like 0.9), got True", id="bool"),
    pytest.param("  test_accuracy: {minimum: 0.9}", "gate.test_accuracy.minimum",
                 "unknown key 'minimum'; did you mean 'min'?", id="typo"),
    pytest.param("  test_accuracy:", "gate.test_accuracy", "a gate needs min, max or both",
                 id="empty"),
    pytest.param("  test_log_loss: {max: -0.5}", "gate.test_log_loss.max",
                 "-0.5 is outside the range of log_loss [0, inf]: a maximum of -0.5 can never "
                 "pass", id="log-loss"),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(("new", "key", "message"), GATE_CASES)
def test_gate_bounds_outside_a_metric_range_are_spec_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], conveyor_home: Path,
    command: str, new: str, key: str, message: str,
) -> None:
    path = spec_with(tmp_path, "  test_accuracy: 0.95\n", new + "\n")
    if "log_loss" in new:  # log loss must be computed to be gated
        path.write_text(path.read_text().replace("[accuracy, precision, recall, f1, roc_auc]",
                                                 "[accuracy, f1, log_loss]"))
    code, _, err = cli(capsys, command, str(path))
    assert_spec_error(code, err, path, line_of(path, new.split(":")[0] + ":"), key, message,
                      home=conveyor_home)


def test_gate_bounds_inside_the_range_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], wdbc_path: Path,
) -> None:
    path = spec_with(tmp_path, "  test_accuracy: 0.95\n",
                     "  test_accuracy: 1\n  test_recall: {min: 0, max: 1.0}\n")
    path.write_text(path.read_text().replace(URI_LINE, f"  uri: {wdbc_path}"))
    code, out, err = cli(capsys, "validate", str(path))
    assert code == 0 and "is valid" in out, err


def test_gate_on_a_metric_evaluate_does_not_compute_is_a_spec_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], conveyor_home: Path,
) -> None:
    path = spec_with(tmp_path, "  test_accuracy: 0.95\n", "  test_log_loss: {max: 0.3}\n")
    code, _, err = cli(capsys, "validate", str(path))
    assert_spec_error(code, err, path, line_of(path, "test_log_loss"), "gate.test_log_loss",
                      "metric 'log_loss' is not computed", home=conveyor_home)


def test_a_remembered_spec_is_checked_again_when_scikit_learn_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], conveyor_home: Path, wdbc_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The verdict is kept per spec *and* installed versions (ADR 0049): an upgraded
    scikit-learn may refuse a parameter the old one took."""
    from conveyor.runners import executor

    path = spec_with(tmp_path, URI_LINE, f"  uri: {wdbc_path}")
    calls: list[str] = []
    checked = executor.check_spec

    def counting(*args: Any, **kwargs: Any) -> None:
        calls.append("check")
        checked(*args, **kwargs)

    monkeypatch.setattr(executor, "check_spec", counting)
    for _ in range(2):
        assert cli(capsys, "run", str(path), "--until", "validate")[0] == 0
    assert calls == ["check"]  # the second run trusted the remembered verdict
    versions = executor.checked_versions()
    assert versions["scikit-learn"] and "conveyor-ml" in versions
    monkeypatch.setattr(executor, "checked_versions",
                        lambda: {**versions, "scikit-learn": "99.0"})
    assert cli(capsys, "run", str(path), "--until", "validate")[0] == 0
    assert calls == ["check", "check"]
    assert len(list((conveyor_home / "artifacts").rglob("_cache/checked/*.json"))) == 2
