"""Where a run's memory goes, step by step: the resident memory when each step starts and its
peak while it runs, in this process (ADR 0050).

The peak is the kernel's ``VmHWM``, reset at each step's start by writing ``5`` to
``/proc/self/clear_refs`` (Linux), so a step's figure is its own, not the run's so far.
scale_rows.py samples a whole ``conveyor run`` from outside every 0.1 s instead; this one
also shows what a step leaves behind (the next step's start).

Usage::

    .venv/bin/python benchmarks/scale_rows.py --rows 1000000 --rounds 1 --keep /tmp/scale
    CONVEYOR_CACHE_DIR=/tmp/scale/cache \\
        .venv/bin/python benchmarks/step_memory.py /tmp/scale/rows-1000000.yaml
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _status() -> dict[str, int]:
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) // 1024
    return found


def main() -> int:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    home = Path(tempfile.mkdtemp(prefix="conveyor-step-memory-"))
    os.environ["CONVEYOR_HOME"] = str(home)
    import conveyor

    started: dict[str, tuple[float, int]] = {}

    def on_event(kind: str, step: str, record: Any) -> None:
        if kind == "start":
            Path("/proc/self/clear_refs").write_text("5")
            started[step] = (time.perf_counter(), _status()["VmRSS"])
            return
        at, rss = started[step]
        now = _status()
        print(f"{step:<9} start {rss:6,} MiB  peak {now['VmHWM']:6,} MiB  "
              f"end {now['VmRSS']:6,} MiB  {time.perf_counter() - at:6.2f} s", flush=True)

    try:
        result = conveyor.run(conveyor.load_spec(sys.argv[1]), on_event=on_event,
                              use_cache=False)
        print(result.status, {k: v for k, v in result.metrics.items() if k.startswith("test_")})
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
