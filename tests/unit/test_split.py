"""The split step's pure function: a seeded, stratified hold-out split."""

from __future__ import annotations

import pandas as pd
import pytest

from conveyor.errors import DataError
from conveyor.modeling.training import split_table
from conveyor.spec.models import SplitSpec


def table(n_a: int = 80, n_b: int = 20) -> pd.DataFrame:
    labels = ["a"] * n_a + ["b"] * n_b
    return pd.DataFrame({"x": range(len(labels)), "y": labels},
                        index=range(1000, 1000 + len(labels)))


def test_stratified_split_keeps_the_class_shares_in_both_parts() -> None:
    train, test = split_table(table(), "y", SplitSpec(test_size=0.25, stratify=True, seed=1))
    assert (len(train), len(test)) == (75, 25)
    assert test["y"].value_counts().to_dict() == {"a": 20, "b": 5}
    assert train["y"].value_counts().to_dict() == {"a": 60, "b": 15}
    assert sorted([*train["x"], *test["x"]]) == list(range(100))  # every row once


def test_parts_are_reindexed_from_zero() -> None:
    train, test = split_table(table(), "y", SplitSpec())
    assert list(train.index) == list(range(80)) and list(test.index) == list(range(20))


def test_the_seed_decides_the_split() -> None:
    first = split_table(table(), "y", SplitSpec(seed=7))[1]["x"].tolist()
    again = split_table(table(), "y", SplitSpec(seed=7))[1]["x"].tolist()
    other = split_table(table(), "y", SplitSpec(seed=8))[1]["x"].tolist()
    assert first == again and first != other


def test_unstratified_split_may_change_the_shares() -> None:
    shares = {split_table(table(), "y", SplitSpec(stratify=False, seed=seed))[1]["y"]
              .value_counts().get("b", 0) for seed in range(10)}
    assert shares != {4}  # stratified it would always be 4 of 20


def test_too_few_rows_of_a_class_is_a_data_error() -> None:
    with pytest.raises(DataError) as caught:
        split_table(table(9, 1), "y", SplitSpec(test_size=0.2))
    message = str(caught.value)
    assert message.startswith("cannot split 10 rows with split.test_size=0.2: ")
    assert "least populated class" in message
