"""``conveyor.processes.stop_group``: nothing of a started group outlives it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conveyor.processes import free_port, pid_running, stop_group

# The leader starts a child that ignores SIGTERM (as Airflow's scheduler did, waiting on its
# executor's workers), writes the child's pid, and exits on SIGTERM itself.
LEADER = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
open(sys.argv[1], "w").write(str(child.pid))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(
        f"/proc/{pid}").exists() else "X"
    return state not in ("Z", "X")


def test_a_child_that_ignores_sigterm_is_killed_with_its_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    leader = subprocess.Popen([sys.executable, "-c", LEADER, str(pid_file)],
                              start_new_session=True)
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child)

    stop_group(leader, grace=1.0)

    assert leader.returncode is not None
    deadline = time.monotonic() + 5  # init reaps the re-parented child
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the SIGTERM-ignoring child outlived stop_group"


def test_free_port_is_bindable_on_loopback() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        assert sock.getsockname()[1] == port


def test_pid_running_counts_a_zombie_as_ended() -> None:
    assert pid_running(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped: a zombie
        os.kill(child.pid, 0)  # the pid still exists ...
        assert not pid_running(child.pid)  # ... but nothing runs there
    finally:
        child.wait()
