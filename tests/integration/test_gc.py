"""``conveyor gc``: old run folders go, unless a kept run's cached steps still use them.

Real runs of the breast-cancer pipeline (local runner, MLflow on SQLite), in this order:

* A: C=1, computes every step;
* C: C=0.5, reuses A's validate and split, computes train, evaluate and gate;
* B: C=1 again, every cacheable step a hit on A's artifacts.

With ``--keep 1`` B is the newest run, A is kept because B's records point into it, and C
(with the cache entries it computed) is the one to go.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from conveyor.cli import main
from conveyor.runners.gc import plan_gc
from conveyor.store import Store

# a pipeline's folders beside its runs, never collected: the cache index, the hold-out sets
# registered versions score on, the saved schema (ADR 0046)
KEPT_FOLDERS = ("_cache", "_holdout", "_schema")


def cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(args))
    return code, out.getvalue()


def run(spec: Path, *overrides: str) -> str:
    code, out = cli("run", str(spec), *overrides, "--quiet")
    assert code == 0, out
    (run_id,) = [line.split()[1] for line in out.splitlines() if line.startswith("run ")]
    time.sleep(1.1)  # creation times have one-second resolution
    return run_id


@pytest.fixture()
def three_runs(breast_cancer_spec: Path, conveyor_home: Path) -> dict[str, str]:
    return {"A": run(breast_cancer_spec), "C": run(breast_cancer_spec, "model.params.C=0.5"),
            "B": run(breast_cancer_spec)}


def cache_entries(runs_dir: Path) -> dict[str, str]:
    """cache-index file -> the run that computed it."""
    return {str(p.relative_to(runs_dir)): json.loads(p.read_text())["cached_from"]
            for p in (runs_dir / "_cache").glob("*/*.json") if p.parent.name != "checked"}


def test_gc_keeps_what_kept_runs_use_and_deletes_the_rest(
        three_runs: dict[str, str], breast_cancer_spec: Path, conveyor_home: Path) -> None:
    runs_dir = conveyor_home / "artifacts" / "breast_cancer"
    a, b, c = three_runs["A"], three_runs["B"], three_runs["C"]
    assert {p.name for p in runs_dir.iterdir()} == {a, b, c, *KEPT_FOLDERS}
    assert c in cache_entries(runs_dir).values()

    # The plan alone (the default) deletes nothing.
    code, out = cli("gc", str(breast_cancer_spec), "--keep", "1", "--min-age-hours", "0")
    assert code == 0, out
    assert "would delete 1 run(s)" in out and "--yes" in out
    assert {p.name for p in runs_dir.iterdir()} == {a, b, c, *KEPT_FOLDERS}

    plan = plan_gc(Store(runs_dir.parent.as_uri()), "breast_cancer", keep=1,
                   min_age=timedelta(0))
    actions = {r.run_id: (r.action, r.reason) for r in plan.runs}
    assert actions[b] == ("keep", "among the newest 1")
    assert actions[a] == ("keep", f"its artifacts are used by {b}")
    assert actions[c][0] == "delete"
    assert plan.cache_entries
    for uri in plan.cache_entries:
        assert json.loads(Path(uri.removeprefix("file://")).read_text())["cached_from"] == c

    code, out = cli("gc", str(breast_cancer_spec), "--keep", "1", "--min-age-hours", "0",
                    "--yes")
    assert code == 0, out
    assert "deleted 1 run(s)" in out
    assert {p.name for p in runs_dir.iterdir()} == {a, b, *KEPT_FOLDERS}
    assert c not in cache_entries(runs_dir).values()  # no new run can take a hit on C

    # Every artifact B's manifest names still exists, and a new run reuses A's work.
    manifest = json.loads((runs_dir / b / "manifest.json").read_text())
    for ref in manifest["artifacts"].values():
        assert Path(ref["uri"].removeprefix("file://")).exists(), ref["uri"]
    code, out = cli("run", str(breast_cancer_spec))
    assert code == 0, out
    assert "cached" in out

    # C's configuration is computed again, not served from the deleted run.
    code, out = cli("run", str(breast_cancer_spec), "model.params.C=0.5")
    assert code == 0, out
    train_line = next(line for line in out.splitlines() if " train " in line)
    assert "cached" not in train_line, out


def test_young_runs_are_kept_and_keep_zero_is_refused(
        three_runs: dict[str, str], breast_cancer_spec: Path, conveyor_home: Path) -> None:
    runs_dir = conveyor_home / "artifacts" / "breast_cancer"
    code, out = cli("gc", str(breast_cancer_spec), "--keep", "1", "--yes")  # min age 24 h
    assert code == 0, out
    assert "nothing to collect" in out
    assert {p.name for p in runs_dir.iterdir()} == {*three_runs.values(), *KEPT_FOLDERS}

    code, out = cli("gc", str(breast_cancer_spec), "--keep", "0", "--yes")
    assert code == 2
    assert "--keep must be at least 1" in out
    assert {p.name for p in runs_dir.iterdir()} == {*three_runs.values(), *KEPT_FOLDERS}
