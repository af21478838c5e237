"""Where the time of ``conveyor run`` goes: cProfile and ``-X importtime`` of a first and a
cached run of the breast-cancer example, each in a fresh process.

Usage::

    .venv/bin/python benchmarks/profile_breast_cancer.py [--top 25] [--keep DIR] [--warm-bytecode]

Prints the slowest imports (self + children, top level packages) and the functions with the
largest cumulative time, for the first run (fresh CONVEYOR_HOME, the MLflow template already
built in a private CONVEYOR_CACHE_DIR) and the cached re-run.
With ``--keep DIR`` the ``.prof`` files stay in DIR (open them with ``python -m pstats`` or
snakeviz). ``--warm-bytecode``: as in run_breast_cancer.py, a private pre-warmed
``PYTHONPYCACHEPREFIX``, so compiling sources does not dominate the profile.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "breast_cancer" / "pipeline.yaml"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "wdbc" / "wdbc.data"
_SCRUB = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CONVEYOR_EXPORT_URI", "CONVEYOR_HOME",
          "CONVEYOR_CACHE_DIR")
# functions worth naming in a report: the project's own and the big library entry points
_INTERESTING = re.compile(
    r"conveyor/|mlflow/(sklearn|models|store/db|tracking/client|pyfunc)|alembic/command|"
    r"sklearn/(linear_model/_logistic|base)|matplotlib/figure|skops/io/_persist|"
    r"importlib._bootstrap>:\d+\(_find_and_load\)$"
)


def _run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started, done.stderr


_HEAVY = ("numpy", "pandas", "pyarrow", "scipy", "sklearn", "matplotlib", "mlflow",
          "sqlalchemy", "alembic", "skops", "pydantic", "yaml", "fsspec", "rich")


def heavy_imports(stderr: str) -> list[tuple[float, str, str]]:
    """(seconds, package, who imported it first) for big packages, from -X importtime.

    A package's time is the sum of the cumulative times of its outermost modules (those not
    imported by another module of the same package), so it includes the dependencies it
    pulled in first (sklearn includes scipy when scipy was not loaded before): rows overlap.
    """
    lines = [m for line in stderr.splitlines()
             if (m := re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line))]
    stack: list[tuple[int, str]] = []
    total: dict[str, float] = {}
    by: dict[str, str] = {}

    def package(name: str) -> str:
        return name.split(".", 1)[0]

    # importtime prints a module after its children: walk backwards to see parents first
    for match in reversed(lines):
        depth, name = len(match.group(3)) // 2, match.group(4)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        ancestors = [n for _, n in stack]
        stack.append((depth, name))
        pkg = package(name)
        if pkg not in _HEAVY or any(package(a) == pkg for a in ancestors):
            continue
        total[pkg] = total.get(pkg, 0.0) + int(match.group(2)) / 1e6
        by[pkg] = ancestors[-1] if ancestors else "<program>"  # the earliest import wins
    return sorted(((t, p, by[p]) for p, t in total.items()), reverse=True)


def top_functions(path: Path, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("cumulative").print_stats(_INTERESTING, top)
    text = out.getvalue()
    return text[text.find("   ncalls"):] if "   ncalls" in text else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("WDBC_PATH",
                                                                          DEFAULT_DATA)))
    parser.add_argument("--keep", type=Path, help="keep the .prof files in this folder")
    parser.add_argument("--warm-bytecode", action="store_true",
                        help="use a private, pre-warmed .pyc cache")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="conveyor-profile-"))
    out_dir = args.keep or work
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(WDBC_PATH=str(args.data.resolve()), CONVEYOR_HOME=str(work / "home"),
               CONVEYOR_CACHE_DIR=str(work / "cache"))
    run = ["-m", "conveyor.cli", "run", str(SPEC), "--quiet"]
    # the MLflow template is built once per MLflow version (ADR 0043): not part of a fresh home
    _run([sys.executable, "-c", "from conveyor.tracking.template import ensure_template; "
          "ensure_template()"], env, work)
    if args.warm_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        _run([sys.executable, *run], {**env, "CONVEYOR_HOME": str(work / "warm")}, work)

    for label in ("first", "cached"):
        prof = out_dir / f"{label}.prof"
        elapsed, _ = _run([sys.executable, "-m", "cProfile", "-o", str(prof), *run], env, work)
        print(f"\n=== {label} run under cProfile: {elapsed:.2f}s wall ===")
        print(top_functions(prof, args.top))

    # import cost, measured on a further (cached) run so the profiler does not inflate it
    elapsed, stderr = _run([sys.executable, "-X", "importtime", *run], env, work)
    print(f"=== imports of a cached run ({elapsed:.2f}s wall, -X importtime) ===")
    for seconds, package, parent in heavy_imports(stderr):
        print(f"  {seconds:6.2f}s  {package:<11} first imported by {parent}")
    print("  (cumulative: a package's time includes what it imported first)")
    if args.keep is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
