"""The lab's per-file time: process the iris example inbox once, in a fresh home.

Usage: ``.venv/bin/python benchmarks/lab_inbox.py [--repeat N]``. Each repeat copies
``examples/iris_lab/configs/*`` into a new inbox under a new ``CONVEYOR_HOME`` (a new SQLite
MLflow), runs :func:`conveyor.lab.process_inbox` once and prints the wall time of the pass and
per file. The first repeat includes MLflow's schema creation; compare the later ones.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_pass() -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        home = Path(tmp) / "home"
        inbox = Path(tmp) / "inbox"
        inbox.mkdir(parents=True)
        for path in (ROOT / "examples" / "iris_lab" / "configs").iterdir():
            shutil.copy(path, inbox / path.name)
            os.utime(inbox / path.name, (time.time() - 60, time.time() - 60))
        os.environ["CONVEYOR_HOME"] = str(home)
        os.environ["IRIS_LAB_INBOX"] = str(inbox)
        cwd = os.getcwd()
        os.chdir(tmp)  # MLflow may write ./mlruns
        try:
            from conveyor.lab import load_lab, process_inbox

            lab = load_lab(ROOT / "examples" / "iris_lab" / "lab.yaml")
            started = time.perf_counter()
            result = process_inbox(lab)
            seconds = time.perf_counter() - started
        finally:
            os.chdir(cwd)
        return seconds, len(result.versions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = len(list((ROOT / "examples" / "iris_lab" / "configs").iterdir()))
    for i in range(args.repeat):
        seconds, versions = one_pass()
        print(f"pass {i + 1}: {seconds:.2f} s for {files} files ({versions} versions), "
              f"{seconds / files:.2f} s per file")


if __name__ == "__main__":
    main()
