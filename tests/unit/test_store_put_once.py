"""Store.put_table_once: the hold-out set's write-once publish, shared by the register step
and the lab."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from conveyor.store import Store


def test_the_first_table_stays_and_later_writers_get_its_reference(tmp_path: Path) -> None:
    store = Store((tmp_path / "root").as_uri())
    uri = store.uri("lab", "_holdout", "abc.parquet")
    first = store.put_table_once(uri, pd.DataFrame({"x": [1, 2], "target": ["a", "b"]}))
    second = store.put_table_once(uri, pd.DataFrame({"x": [9], "target": ["z"]}))
    assert second == first  # the same uri, hash and size: nothing was rewritten
    assert store.get_table(second)["x"].tolist() == [1, 2]
