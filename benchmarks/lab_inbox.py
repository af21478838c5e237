"""The lab's per-file time: process the iris example inbox once, in a fresh home.

Usage: ``.venv/bin/python benchmarks/lab_inbox.py [--repeat N] [--fit-only]``. Each repeat
copies ``examples/iris_lab/configs/*`` into a new inbox, runs
:func:`conveyor.lab.process_inbox` once for a lab of a new name (so every config trains and
registers again) in one temporary ``CONVEYOR_HOME`` (SQLite MLflow) and prints the wall time
of the pass and per file. The first repeat includes MLflow's schema creation; compare the
later ones.

``--fit-only`` times, in this process and in CPU seconds (steadier on a busy machine than wall
time), only what the child does per file: split, then fit and score every example config
(:func:`conveyor.lab.worker.fit_config`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_pass(home: Path, index: int) -> tuple[float, int]:
    """Train the example configs once, as a new lab in ``home`` (fresh names: nothing cached)."""
    import dataclasses

    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        inbox = Path(tmp) / "inbox"
        inbox.mkdir(parents=True)
        for path in (ROOT / "examples" / "iris_lab" / "configs").iterdir():
            shutil.copy(path, inbox / path.name)
            os.utime(inbox / path.name, (time.time() - 60, time.time() - 60))
        os.environ["CONVEYOR_HOME"] = str(home)
        os.environ["IRIS_LAB_INBOX"] = str(inbox)
        cwd = os.getcwd()
        os.chdir(home)  # MLflow may write ./mlruns
        try:
            from conveyor.lab import load_lab, process_inbox

            lab = load_lab(ROOT / "examples" / "iris_lab" / "lab.yaml")
            # another lab name per pass: its own ledger and registration keys, so every
            # config is fitted, logged and registered again (the same name would find them)
            lab = dataclasses.replace(
                lab, spec=lab.spec.model_copy(update={"name": f"bench{index}"}))
            started = time.perf_counter()
            result = process_inbox(lab)
            seconds = time.perf_counter() - started
        finally:
            os.chdir(cwd)
        return seconds, len(result.versions)


def fit_only(repeat: int) -> None:
    from conveyor.lab.configs import parse_config_bytes
    from conveyor.lab.spec import load_lab
    from conveyor.lab.train import lab_split
    from conveyor.lab.worker import fit_config

    os.environ.setdefault("IRIS_LAB_INBOX", "unused")
    lab = load_lab(ROOT / "examples" / "iris_lab" / "lab.yaml")
    paths = sorted((ROOT / "examples" / "iris_lab" / "configs").iterdir())
    configs = [parse_config_bytes(p.read_bytes(), p.name) for p in paths]
    times = []
    for _ in range(repeat):
        started = time.process_time()
        split = lab_split(lab)
        for file in configs:
            for config in file:
                fit_config(config, split, lab.spec.preprocess)
        times.append(time.process_time() - started)
    times.sort()
    print(f"fit-only: {len(paths)} files, median {times[len(times) // 2]:.3f} CPU s per pass "
          f"({times[len(times) // 2] / len(paths):.3f} per file), best {times[0]:.3f}, "
          f"{repeat} passes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fit-only", action="store_true")
    args = parser.parse_args()
    if args.fit_only:
        fit_only(args.repeat)
        return
    files = len(list((ROOT / "examples" / "iris_lab" / "configs").iterdir()))
    with tempfile.TemporaryDirectory(prefix="lab-bench-home-") as home:
        for i in range(args.repeat):
            seconds, versions = one_pass(Path(home), i)
            print(f"pass {i + 1}: {seconds:.2f} s for {files} files ({versions} versions), "
                  f"{seconds / files:.2f} s per file")


if __name__ == "__main__":
    main()
