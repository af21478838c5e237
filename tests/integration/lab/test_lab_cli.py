"""``conveyor lab run`` from the user's side: a subprocess, real MLflow on SQLite."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import drop
from conveyor.processes import _group_running, stop_group

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "iris_lab"
BAD = "classificator: sklearn.ensemble.GradientBoostingClassifier\nkwargs:\n  learning_rage: 1\n"


def _env(home: Path, inbox: Path) -> dict[str, str]:
    return {**os.environ, "CONVEYOR_HOME": str(home), "IRIS_LAB_INBOX": str(inbox),
            "PYTHONUNBUFFERED": "1"}


def _lab(home: Path, inbox: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "lab", "run", str(EXAMPLES / "lab.yaml"), *args],
        env=_env(home, inbox), capture_output=True, text=True, timeout=600)


def _versions(home: Path) -> list[str]:
    from conveyor.tracking import Tracker

    client = Tracker(f"sqlite:///{home / 'mlflow.db'}", "iris_lab").client
    return sorted(str(v.version) for v in client.search_model_versions("name='iris_classifier'"))


def test_once_registers_the_dropped_files_then_exits_0(lab_home: Path, inbox: Path) -> None:
    drop(inbox, "rf_small.json", (EXAMPLES / "configs" / "rf_small.json").read_bytes())
    drop(inbox, "svc.json", (EXAMPLES / "configs" / "svc.json").read_bytes())

    done = _lab(lab_home, inbox, "--once")

    assert done.returncode == 0, done.stderr + done.stdout
    assert "trained  rf_small.json: iris_classifier" in done.stdout
    assert "2 trained, 0 rejected, 0 failed" in done.stdout
    assert _versions(lab_home) == ["1", "2"]
    again = _lab(lab_home, inbox)  # --once is the default; the same bytes train nothing
    assert again.returncode == 0, again.stderr
    assert "0 trained" in again.stdout and "2 seen before" in again.stdout
    assert _versions(lab_home) == ["1", "2"]


def test_once_exits_2_when_a_file_is_rejected(lab_home: Path, inbox: Path) -> None:
    drop(inbox, "rf_small.json", (EXAMPLES / "configs" / "rf_small.json").read_bytes())
    drop(inbox, "typo.yaml", BAD)

    done = _lab(lab_home, inbox, "--once")

    assert done.returncode == 2, done.stderr + done.stdout
    assert "rejected typo.yaml:" in done.stdout and "learning_rate" in done.stdout
    assert (inbox / "rejected" / "typo.yaml").is_file() and not (inbox / "typo.yaml").exists()
    assert _versions(lab_home) == ["1"]  # the good file trained all the same


def test_a_pipeline_spec_is_refused_with_exit_2(lab_home: Path, inbox: Path) -> None:
    spec = EXAMPLES.parent / "breast_cancer" / "pipeline.yaml"
    done = subprocess.run([sys.executable, "-m", "conveyor.cli", "lab", "run", str(spec)],
                          env=_env(lab_home, inbox), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2
    assert "is a pipeline spec, not a lab spec" in done.stderr


class _Lines:
    """The lines a process prints, read by a thread (a pipe read must not block the test)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.queue.put(line)
        self.queue.put(None)

    def until(self, text: str, timeout: float) -> None:
        """Wait for a line holding ``text``; fail after ``timeout`` seconds or at the end."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.queue.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} never shown; output:\n{''.join(self.seen)}")


def test_watch_trains_files_dropped_later_and_stops_cleanly_on_sigterm(
        lab_home: Path, inbox: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "lab", "run", str(EXAMPLES / "lab.yaml"),
         "--watch", "--interval", "0.2"],
        env=_env(lab_home, inbox), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)
    try:
        lines = _Lines(process)
        lines.until("Ctrl-C (or SIGTERM) stops", timeout=120)
        drop(inbox, "rf_small.json", (EXAMPLES / "configs" / "rf_small.json").read_bytes())
        lines.until("1 trained", timeout=300)
        drop(inbox, "typo.yaml", BAD)
        lines.until("1 rejected", timeout=300)  # a bad file does not end the watch

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
        lines.until("stopped", timeout=10)
        assert not _group_running(process.pid), "a child of the watch outlived it"
    finally:
        stop_group(process, grace=5)
    assert _versions(lab_home) == ["1"]


def _children(pid: int) -> set[int]:
    """The running processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.add(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the fitting child")
def test_sigterm_during_a_fit_stops_the_child_and_releases_the_file(
        lab_home: Path, inbox: Path) -> None:
    # fits for hours: the pass is still fitting it when SIGTERM comes
    drop(inbox, "forever.json", '{"model": "random_forest", '
                                '"params": {"n_estimators": 50000000}}')
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "lab", "run", str(EXAMPLES / "lab.yaml"),
         "--watch"], env=_env(lab_home, inbox), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = _Lines(process)
        deadline = time.monotonic() + 300
        children: set[int] = set()
        while not children and time.monotonic() < deadline and process.poll() is None:
            children = _children(process.pid)  # the fitting child, started by the pass
            time.sleep(0.05)  # a poll interval, not a wait for the clock
        assert children, "the pass never started its fitting child"

        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=120)
        lines.until("stopped", timeout=10)
        assert code == 0, "".join(lines.seen)
        assert not [pid for pid in children if _running(pid)], "the fitting child outlived"
    finally:
        stop_group(process, grace=5)
    # interrupted, not rejected: the file stays for the next pass, its claim released
    assert (inbox / "forever.json").is_file() and not (inbox / "rejected").exists()
    from conveyor.lab import load_lab, pending_files

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IRIS_LAB_INBOX", str(inbox))
        assert pending_files(load_lab(EXAMPLES / "lab.yaml")) == ["forever.json"]
