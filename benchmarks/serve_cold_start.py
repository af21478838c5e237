"""Start to ready of ``conveyor serve``: wall time until ``GET /ready`` answers 200, and the
CPU seconds the server process had used by then (steadier than wall time on a shared box).

    CONVEYOR_HOME=/tmp/sc .venv/bin/python benchmarks/serve_cold_start.py \
        models:/breast_cancer_classifier@production /tmp/sc/exports/breast_cancer [--runs 5]

Needs a trained and promoted model in ``CONVEYOR_HOME`` (``conveyor run`` then ``conveyor
promote``). Each run starts the installed ``conveyor`` on a free 127.0.0.1 port, polls
``/ready`` every 20 ms (60 s at most), then stops the server by its process group. Prints one
line per run and the medians per URI. Runs alternate between URIs so that a change in the
machine's load spreads over all of them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conveyor.processes import free_port, stop_group

BIN = Path(sys.executable).parent


def one_start(uri: str, timeout: float = 60.0) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the server) from spawn to the first 200 on /ready."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen([str(BIN / "conveyor"), "serve", uri, "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        while time.perf_counter() - started < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready",
                                            timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None:
                raise SystemExit(f"conveyor serve {uri} exited {process.returncode}")
            time.sleep(0.02)
        else:
            raise SystemExit(f"conveyor serve {uri}: not ready after {timeout:.0f}s")
        wall = time.perf_counter() - started
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return wall, cpu
    finally:
        stop_group(process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("uris", nargs="+", metavar="MODEL_URI")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    results: dict[str, list[tuple[float, float]]] = {uri: [] for uri in args.uris}
    for run in range(args.runs):
        for uri in args.uris:
            wall, cpu = one_start(uri)
            results[uri].append((wall, cpu))
            print(f"run {run + 1} {uri}: ready after {wall:.2f} s wall, {cpu:.2f} s CPU",
                  flush=True)
    load = os.getloadavg()[0]
    for uri, values in results.items():
        print(f"median {uri}: {statistics.median(w for w, _ in values):.2f} s wall, "
              f"{statistics.median(c for _, c in values):.2f} s CPU "
              f"({len(values)} runs, load average {load:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
