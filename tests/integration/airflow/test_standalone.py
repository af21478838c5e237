"""``conveyor airflow standalone`` as a user runs it, then stopped as a service manager does.

Real Airflow 3.3 (api-server, scheduler with the LocalExecutor, dag-processor, triggerer)
started by the real command. Checked on the running processes themselves: how many
LocalExecutor workers it forked, which addresses its processes listen on, and that SIGTERM
to ``conveyor`` leaves none of them behind.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from airflow_harness import BIN

from conveyor.processes import free_port

pytestmark = pytest.mark.timeout(900)

psutil = pytest.importorskip("psutil")
log = logging.getLogger(__name__)

_INHERITED_PREFIXES = ("AIRFLOW", "CONVEYOR_", "MLFLOW_")
WORKER_TITLE = "airflow worker -- LocalExecutor"
LOG_SERVER_TITLE = "airflow serve-logs"


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _title(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def _listening(pids: set[int]) -> list[tuple[str, int, str]]:
    """``(ip, port, process title)`` of every listening TCP socket (v4 and v6) of ``pids``."""
    found = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            found.append((conn.laddr.ip, conn.laddr.port, _title(psutil.Process(conn.pid))))
    return found


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health",
                                    timeout=5) as answer:
            health = json.loads(answer.read())
    except (OSError, ValueError):
        return False
    return all(health.get(part, {}).get("status") == "healthy"
               for part in ("scheduler", "triggerer"))


def test_standalone_bounds_its_workers_listens_on_loopback_and_stops_whole_on_sigterm(
    tmp_path: Path, conveyor_home: Path
) -> None:
    if not (BIN / "airflow").exists():
        pytest.skip("apache-airflow is not installed (uv sync --all-extras)")
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    env = {**base, "CONVEYOR_HOME": str(conveyor_home), "CONVEYOR_PIPELINES": str(pipelines)}
    output = (tmp_path / "standalone.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "conveyor"), "airflow", "standalone", "--port", str(port)], env=env,
        stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 480
        tree: list[psutil.Process] = []
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "standalone.log").read_text()[-3000:]
            tree = _tree(process.pid)
            servers = [p for p in tree if _title(p).startswith(LOG_SERVER_TITLE)]
            if _healthy(port) and len(servers) == 2 and len(
                    _listening({p.pid for p in tree})) >= 3:
                break
            time.sleep(2)
        else:
            pytest.fail("standalone not up:\n" + (tmp_path / "standalone.log").read_text()[-3000:])
        time.sleep(3)  # the scheduler forks its workers when its executor starts
        tree = _tree(process.pid)
        pids = {p.pid for p in tree}
        rss = sum(p.memory_info().rss for p in tree if p.is_running())
        log.info("standalone: %d processes, %.0f MB", len(tree), rss / 2**20)

        # One LocalExecutor worker per CPU (at least 2), not Airflow's 32.
        workers = [p for p in tree if _title(p).startswith(WORKER_TITLE)]
        cpus = len(os.sched_getaffinity(0))
        assert len(workers) == max(2, cpus), [_title(p) for p in tree]

        # Every listening socket is on 127.0.0.1: the api-server and both log servers.
        listening = _listening(pids)
        log.info("listening: %s", listening)
        assert {ip for ip, _, _ in listening} == {"127.0.0.1"}, listening
        titles = [title for _, _, title in listening]
        assert sum(t.startswith(LOG_SERVER_TITLE) for t in titles) == 2, listening
        assert any(port == p for _, p, _ in listening)

        # SIGTERM, as systemd or docker stop sends it: nothing of the tree is left.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
        time.sleep(1)
        left = []
        for pid in pids - {process.pid}:
            try:
                survivor = psutil.Process(pid)
                if survivor.status() != psutil.STATUS_ZOMBIE:
                    left.append(_title(survivor))
            except psutil.NoSuchProcess:
                continue
        assert left == [], f"{len(left)} of {len(pids)} processes left: {left[:5]}"
    finally:
        for survivor in _alive_in_session(process.pid):  # only ever our own session
            survivor.kill()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def _alive_in_session(session: int) -> list[psutil.Process]:
    found = []
    for candidate in psutil.process_iter():
        try:
            if os.getsid(candidate.pid) == session and candidate.pid != os.getpid():
                found.append(candidate)
        except (OSError, psutil.Error):
            continue
    return found
