"""Local helper processes: free ports on 127.0.0.1, stopping a whole process group, and
giving a finished step's memory back to the system.

Used wherever Conveyor (or its tests and scripts) starts long-running servers of its own:
the embedded Airflow, the screenshot script's Chromium, test services.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["free_port", "pid_running", "release_memory", "stop_group"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat(path: Path) -> list[str] | None:
    """``state ppid pgrp ...`` from a ``/proc/<pid>/stat`` file; ``None`` if unreadable."""
    try:
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        return path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


_ENDED = ("Z", "X")  # a zombie (ended, not yet reaped by its parent) or dead


def pid_running(pid: int) -> bool:
    """Whether process ``pid`` still runs: it exists, and is not a zombie.

    Someone else's process (``PermissionError``) counts as running; without ``/proc``
    (macOS) existing is all that is known.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    fields = _stat(proc / str(pid) / "stat")
    return fields is None or fields[0] not in _ENDED


def _group_running(group: int) -> bool:
    """Whether a process of ``group`` still runs (zombies, ended but not reaped, do not)."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        fields = _stat(stat)
        if fields is not None and int(fields[2]) == group and fields[0] not in _ENDED:
            return True
    return False


def stop_group(process: subprocess.Popen[bytes], grace: float = 30) -> None:
    """End every process of the group ``process`` leads, its children's children included.

    ``process`` must have been started with ``start_new_session=True``, so that the group
    is ours alone. SIGTERM first; whatever is left after ``grace`` seconds gets SIGKILL.
    Waiting for the leader alone is not enough: seen here, ``airflow standalone`` exited on
    SIGTERM while its scheduler (waiting on LocalExecutor workers) ignored it and lived on,
    re-parented to init.
    """
    group = process.pid
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        process.poll()
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the leader: a zombie leader still counts as a group member
        if not _group_running(group):
            # The leader may have ended between poll() and the scan (seen under load, when
            # the whole group died at once): it is a zombie now, so this wait is immediate.
            process.wait(timeout=30)
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    process.wait(timeout=30)


def release_memory() -> None:
    """Hand the memory this process has freed back to the system (ADR 0050).

    A step of a local run lets its tables go when it returns, but the allocators keep the
    pages for reuse: Arrow's pool (mimalloc) keeps what Parquet decoding used, glibc's
    malloc what pandas and numpy used (arrays under its adaptive threshold of up to 32 MiB
    live in its heap). The next step's arrays then come on top of them. Called between
    steps; costs a few milliseconds, and nothing where the allocator is another.
    """
    gc.collect(generation=1)  # young cycles only: a full collection takes ~0.1 s here
    arrow = sys.modules.get("pyarrow")  # never imported for this
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (AttributeError, OSError):  # not glibc (musl has no malloc_trim)
            pass


def restore_environ(saved: dict[str, str | None]) -> None:
    """Put the variables of ``saved`` (name -> value, ``None`` for unset) back in
    ``os.environ``: each is set to its value, or removed if it was not set."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
