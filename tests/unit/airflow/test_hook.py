"""The ``conveyor`` connection: extras become spec overrides; an unknown extra is bad input."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("airflow")

from conveyor.airflow.hooks import ConveyorHook
from conveyor.errors import BadInputError


def connection(monkeypatch: pytest.MonkeyPatch, extra: dict[str, str]) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CONVEYOR_DEFAULT",
                       json.dumps({"conn_type": "conveyor", "extra": extra}))


def test_extras_become_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    connection(monkeypatch, {"store_root": "s3://bucket/c", "tracking_uri": "http://m:5000"})
    assert sorted(ConveyorHook().spec_overrides()) == [
        "store.root=s3://bucket/c", "tracking.uri=http://m:5000"]


def test_an_unknown_extra_is_bad_input_naming_the_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    connection(monkeypatch, {"store_root": "s3://bucket/c", "tracking_url": "http://m:5000"})
    with pytest.raises(BadInputError, match=r"connection 'conveyor_default': unknown extras "
                                            r"\['tracking_url'\]"):
        ConveyorHook().spec_overrides()
