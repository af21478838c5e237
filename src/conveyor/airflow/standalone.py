"""``conveyor airflow standalone``: run ``airflow standalone`` and stop all of it again.

``airflow standalone`` starts the api-server, scheduler, dag-processor and triggerer as
children; the scheduler forks its LocalExecutor workers and a log server, the triggerer a
log server, and every task runs in a process group of its own. Airflow handles only Ctrl-C:
on SIGTERM the ``standalone`` process dies alone and every other process lives on (38
processes and 5 GB were left here). So Conveyor runs it as a child in a session of its own
and, on SIGINT, SIGTERM or SIGHUP (or when it exits by itself), stops every process of that
session and every descendant: SIGINT to ``standalone`` first (its own shutdown), SIGTERM to
all that is left, SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from types import FrameType

__all__ = ["default_parallelism", "run_supervised", "session_processes", "stop_tree"]

log = logging.getLogger(__name__)

#: How long ``airflow standalone`` gets to stop its components after Ctrl-C.
SHUTDOWN_SECONDS = 15.0
#: How long the processes left after that get between SIGTERM and SIGKILL.
GRACE_SECONDS = 20.0


def default_parallelism() -> int:
    """LocalExecutor workers for a one-machine Airflow: one per CPU, at least two.

    Airflow's default (``[core] parallelism = 32``) forks 32 workers at start whatever the
    machine; each holds a copy of the scheduler (about 150 MB).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 2
    return max(2, cpus)


def session_processes(leader: int) -> set[int]:
    """Live processes of the session ``leader`` started, and every descendant of ``leader``.

    The session catches processes that were re-parented to init when their parent died
    (and task processes, which Airflow puts in process groups of their own); the
    descendants catch a child that started a session of its own.
    """
    import psutil

    found: set[int] = set()
    with contextlib.suppress(psutil.Error):
        found.update(child.pid for child in psutil.Process(leader).children(recursive=True))
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if os.getsid(process.pid) == leader:
                found.add(process.pid)
        except (OSError, psutil.Error):
            continue
    found.discard(os.getpid())
    return found


def _alive(pids: set[int]) -> set[int]:
    import psutil

    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.Error:
            continue
    return alive


def _signal_all(pids: set[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def stop_tree(process: subprocess.Popen[bytes], *, shutdown: float = SHUTDOWN_SECONDS,
              grace: float = GRACE_SECONDS) -> int:
    """Stop ``process`` (started with ``start_new_session=True``) and everything it started.

    Returns:
        How many processes were still running after Ctrl-C's shutdown and had to be
        signalled (0 when Airflow stopped everything by itself).
    """
    leader = process.pid
    known = session_processes(leader) | {leader}
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(leader, signal.SIGINT)  # standalone's own shutdown of its components
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=shutdown)
    known |= session_processes(leader)
    left = _alive(known)
    signalled = len(left)
    if left:
        log.info("stopping %d process(es) Airflow left running", len(left))
        _signal_all(left, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while left and time.monotonic() < deadline:
            process.poll()  # reap the leader
            time.sleep(0.2)
            left = _alive(left | session_processes(leader))
        if left:
            log.warning("killing %d process(es) that ignored SIGTERM", len(left))
            _signal_all(left, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    return signalled


def run_supervised(argv: Sequence[str], env: dict[str, str]) -> int:
    """Run ``argv`` in a session of its own until it exits or this process is signalled.

    Either way, every process it started is stopped before this returns.

    Returns:
        0 when stopped by a signal (Ctrl-C, SIGTERM, SIGHUP), else the child's exit code.
    """
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, on_signal) for signum in watched}
    process = subprocess.Popen(list(argv), env=env, start_new_session=True)
    try:
        while process.poll() is None and not stopping.wait(0.5):
            pass
    finally:
        stop_tree(process)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if stopping.is_set() else (process.returncode or 0)
