"""Runs written before ids and stamps had microseconds sort, list and age with newer ones.

Stores made by older Conveyor hold ``20261123T101500-3f9a1c`` ids and ``created_at`` to the
second; newer runs have ``conveyor.ids`` ids and stamps to the microsecond. ``conveyor runs``
(list_runs) and ``conveyor gc`` (plan_gc) read both, in one store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from conveyor.ids import ID_PATTERN, new_id
from conveyor.runners.gc import plan_gc
from conveyor.runners.history import created_at, list_runs
from conveyor.store import Store

# (run id, created_at) oldest first; two runs share the second 10:15:00
RUNS = [
    ("20261123T101459-aaaaaa", "2026-11-23T10:14:59+00:00"),
    ("20261123T101500-bbbbbb", "2026-11-23T10:15:00+00:00"),
    ("20261123T101500250000-cccccc", "2026-11-23T10:15:00.250000+00:00"),
    ("20261123T101500750000-dddddd", "2026-11-23T10:15:00.750000+00:00"),
    ("20261123T101501-eeeeee", "2026-11-23T10:15:01"),  # no zone: UTC
]


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path.as_uri())
    for run_id, stamp in reversed(RUNS):  # written in the wrong order on purpose
        store.put_json(store.uri("p", run_id, "_run.json"), {"created_at": stamp})
        store.put_json(store.uri("p", run_id, "manifest.json"), {"status": "ok"})
    return store


def test_old_and_new_ids_both_match_the_one_pattern() -> None:
    assert all(ID_PATTERN.match(run_id) for run_id, _ in RUNS)
    assert ID_PATTERN.match(new_id())


def test_runs_list_newest_first_across_both_resolutions(tmp_path: Path) -> None:
    listed = [r["run_id"] for r in list_runs(_store(tmp_path), ["p"])]
    assert listed == [run_id for run_id, _ in reversed(RUNS)]


def test_gc_keeps_the_newest_and_ages_both_resolutions(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 10, 15, 0, 500000, tzinfo=UTC)
    plan = plan_gc(_store(tmp_path), "p", keep=1, min_age=timedelta(seconds=0.4), now=now,
                   sizes=False)
    actions = {r.run_id: r.action for r in plan.runs}
    # kept: the newest, and those younger than 0.4 s; deleted: the older ones
    assert actions == {RUNS[4][0]: "keep", RUNS[3][0]: "keep", RUNS[2][0]: "keep",
                       RUNS[1][0]: "delete", RUNS[0][0]: "delete"}


def test_created_at_falls_back_to_the_manifest_and_ignores_garbage() -> None:
    assert created_at({"created_at": "2026-11-23T10:15:00.5+00:00"}, None) == \
        datetime(2026, 11, 23, 10, 15, 0, 500000, tzinfo=UTC)
    assert created_at({"created_at": "yesterday"}, {"finished_at": "2026-11-23T10:15:00"}) == \
        datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
    assert created_at(None, None) is None
