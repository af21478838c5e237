"""A changed ``derive:`` section validates again: its columns are validated and leave the
table for the model's inputs, so a cached result from before would carry stale features."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

SPEC = """\
name: cfg
data: {{source: file, uri: {uri}}}
schema: {{target: y}}
derive: {{{derive}}}
model: {{estimator: logistic_regression}}
gate: {{}}
"""


def test_a_new_derived_column_is_not_a_cache_hit(tmp_path: Path,
                                                  seed_mlflow: Callable[[Path], Path]) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "d.csv"
    pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200),
                  "y": rng.choice(["p", "q"], 200)}).to_csv(data, index=False)
    spec, home = tmp_path / "p.yaml", tmp_path / "home"
    seed_mlflow(home)
    env = dict(os.environ, CONVEYOR_HOME=str(home))
    outputs = []
    for derive in ("s: a + b", "s: a + b, t: a * 2"):
        spec.write_text(SPEC.format(uri=data, derive=derive))
        done = subprocess.run([sys.executable, "-m", "conveyor.cli", "run", str(spec),
                               "--until", "validate"], env=env, capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout + done.stderr)
    second = next(line for line in outputs[1].splitlines() if "validate" in line)
    assert "cached" not in second, outputs[1]
    reports = sorted(home.rglob("cfg/*/validate/report.json"), key=lambda p: p.stat().st_mtime)
    assert json.loads(reports[-1].read_text())["derived"] == {"s": "numeric", "t": "numeric"}
