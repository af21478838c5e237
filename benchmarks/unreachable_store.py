"""How long Conveyor takes to report an object store it cannot reach (two cases).

Moved here from two tests that asserted wall-clock limits (issue 9): the tests keep the
behaviour (exit code, one-line message naming what was tried); the time is measured here.

  (1) ``conveyor run`` with ``store.root`` on an S3 endpoint whose port is closed
      (``AWS_MAX_ATTEMPTS=1``): exit 1, "failed: ... cannot reach ..." (was: < 20 s);
  (2) ``conveyor validate`` with ``data.uri`` on an endpoint that accepts connections and
      never answers: exit 0 with a warning, not the run's minutes of retries (was: < 30 s).

Each case runs as a whole process, ``--rounds`` times; prints each time and the median.

Usage::

    .venv/bin/python benchmarks/unreachable_store.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
SPEC = ROOT / "examples" / "breast_cancer" / "pipeline.yaml"


def timed(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run([CONVEYOR, *args], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    return time.perf_counter() - started, done.returncode, done.stderr.strip()[:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as scratch, socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections (backlog) and never answers
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]  # closed once this block ends
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
        base.update(CONVEYOR_HOME=f"{scratch}/home", AWS_ACCESS_KEY_ID="k",
                    AWS_SECRET_ACCESS_KEY="s", AWS_DEFAULT_REGION="us-east-1")
        store = {**base, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}",
                 "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{closed}",
                 "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}
        data = {**base, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
                "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{silent.getsockname()[1]}"}
        spec = Path(scratch) / "pipeline.yaml"
        spec.write_text(SPEC.read_text().replace(
            "  uri: ${WDBC_PATH:-../../../shared/data/wdbc/wdbc.data}",
            "  uri: s3://nowhere/wdbc.data"))
        cases = {
            "run, store unreachable": (["run", str(SPEC), "store.root=s3://nowhere/artifacts"],
                                       store),
            "validate, data store silent": (["validate", str(spec)], data),
        }
        for name, (args, env) in cases.items():
            seconds = []
            for _ in range(rounds):
                elapsed, code, err = timed(args, env)
                seconds.append(elapsed)
                print(f"{name}: {elapsed:.1f} s, exit {code}: {err}")
            print(f"{name}: median {statistics.median(seconds):.1f} s of {rounds}")


if __name__ == "__main__":
    main()
