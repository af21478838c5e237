"""The child process that reads and fits a lab file: time limit, deaths, start-up, cleanup."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from conveyor.errors import ConveyorRuntimeError
from conveyor.lab.configs import ConfigError, parse_config_bytes
from conveyor.lab.spec import Lab, LabSpec
from conveyor.lab.train import lab_split
from conveyor.lab.worker import FitError, FitWorker, TimeLimitError, read_configs

TREE = b"model: decision_tree\nparams: {max_depth: 3, random_state: 0}\n"
FOREVER = b"model: random_forest\nparams: {n_estimators: 50000000}\n"


@pytest.fixture(scope="module")
def lab() -> Lab:
    return Lab.from_spec(LabSpec.model_validate({"name": "unit", "watch": {"folder": "in"}}))


def gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_parser_failing_in_its_own_way_is_a_config_error_naming_the_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def parser_bug(data: bytes, filename: str) -> list[object]:
        raise ValueError("day is out of range for month")

    monkeypatch.setattr("conveyor.lab.configs.parse_config_bytes", parser_bug)
    with pytest.raises(ConfigError) as caught:
        read_configs(b"description: 2024-02-30\n", "dated.yaml")
    assert caught.value.file == "dated.yaml"
    assert str(caught.value) == ("dated.yaml: cannot read this config: ValueError: day is out "
                                 "of range for month")


def test_an_endless_fit_is_stopped_for_real_and_the_next_file_gets_a_new_child(
        lab: Lab) -> None:
    split = lab_split(lab)
    (forever,) = parse_config_bytes(FOREVER, "forever.yaml")
    (tree,) = parse_config_bytes(TREE, "tree.yaml")
    with FitWorker(time_limit=2) as worker:
        worker.start()
        worker.start_file("forever.yaml")
        assert worker.read(FOREVER, "forever.yaml") == [forever]
        first = worker.pid
        started = time.monotonic()
        with pytest.raises(TimeLimitError) as caught:
            worker.fit(forever, split, lab.spec.preprocess)
        assert time.monotonic() - started < 10
        assert str(caught.value).startswith("forever.yaml: took longer than 2 s")
        assert "while fitting config 'forever' (RandomForestClassifier)" in str(caught.value)
        assert first is not None and gone(first)  # killed with its whole process group

        worker.start_file("tree.yaml")
        fitted = worker.fit(tree, split, lab.spec.preprocess)
        assert fitted.metrics["test_accuracy"] > 0.85
        assert len(fitted.model.predict(split.X_test)) == len(split.X_test)
        assert worker.pid not in (None, first)
        second = worker.pid
    assert second is not None and gone(second)  # close() leaves nothing behind


def test_a_child_killed_mid_fit_rejects_that_file_only(lab: Lab) -> None:
    split = lab_split(lab)
    (forever,) = parse_config_bytes(FOREVER, "forever.yaml")
    with FitWorker(time_limit=60) as worker:
        worker.start()
        worker.start_file("forever.yaml")
        worker.read(FOREVER, "forever.yaml")  # the child is up and serving
        pid = worker.pid
        assert pid is not None
        killer = threading.Timer(1.0, os.kill, (pid, signal.SIGKILL))  # the OOM killer
        killer.start()
        with pytest.raises(FitError, match=r"forever.yaml: the training process died while "
                                           r"fitting config 'forever'.*signal 9"):
            worker.fit(forever, split, lab.spec.preprocess)
        killer.join()
        worker.start_file("tree.yaml")
        assert worker.read(TREE, "tree.yaml")[0].name == "tree"


def test_a_child_that_cannot_start_is_a_retryable_failure() -> None:
    with FitWorker(time_limit=5, startup_timeout=0.001) as worker, \
            pytest.raises(ConveyorRuntimeError, match="did not start"):
        worker.start_file("tree.yaml")
        worker.read(TREE, "tree.yaml")
