"""What a first run imports only because a library drags it in (ADR 0043)."""

from __future__ import annotations

import json
import subprocess
import sys

_TRUSTED = ("import json, sys; {imp}; "
            "from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES as names; "
            "loaded = sorted(m for m in ('pytest', 'dask') if m in sys.modules); "
            "import dask, pytest; "
            "print(json.dumps([sorted(names), loaded]))")


def _fresh(imp: str) -> tuple[list[str], list[str]]:
    done = subprocess.run([sys.executable, "-c", _TRUSTED.format(imp=imp)], capture_output=True,
                          text=True, check=True, timeout=120)
    names, loaded = json.loads(done.stdout.splitlines()[-1])
    return names, loaded


def test_skops_is_imported_without_pytest_and_dask_and_trusts_the_same_types() -> None:
    ours, ours_loaded = _fresh("from conveyor.tracking.tracker import import_skops; "
                               "import_skops()")
    plain, plain_loaded = _fresh("import skops.io")
    assert plain_loaded == ["dask", "pytest"]  # what skops' type scan drags in by itself
    assert ours_loaded == []  # ... and not through import_skops; both import fine afterwards
    assert len(ours) > 100 and ours == plain  # the same trusted scikit-learn types
