"""Where serving and monitoring meet in the Store: one definition of each location.

The server appends sampled requests under :func:`samples_uri`; ``conveyor monitor`` reads
them and writes its verdicts under :func:`monitoring_uri`; the server's status page shows the
latest verdict. Both sides import these names, never spell the paths themselves.

Sample files are Parquet, partitioned by hour::

    {store}/_serving/{model}/samples/date=YYYY-MM-DD/hour=HH/part-{stamp}-{pid}-{seq}.parquet

with the model's feature columns, then :data:`SAMPLE_COLUMNS` (prediction, one probability
column per class named ``_proba_<class>``, request id, UTC time, model version).
"""

from __future__ import annotations

import re
from datetime import datetime

__all__ = [
    "PREDICTION",
    "PROBA_PREFIX",
    "REQUEST_ID",
    "SAMPLE_COLUMNS",
    "TIME",
    "VERSION",
    "latest_verdict_uri",
    "monitoring_uri",
    "proba_column",
    "sample_partition",
    "samples_uri",
]

PREDICTION = "_prediction"
PROBA_PREFIX = "_proba_"
REQUEST_ID = "_request_id"
TIME = "_ts"
VERSION = "_version"
SAMPLE_COLUMNS = (PREDICTION, REQUEST_ID, TIME, VERSION)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _key(model: str) -> str:
    return _UNSAFE.sub("_", model).lstrip(".") or "model"


def proba_column(label: object) -> str:
    """The sample column holding the probability of class ``label``."""
    return f"{PROBA_PREFIX}{label}"


def samples_uri(store_root: str, model: str) -> str:
    """The folder of a served model's sampled requests."""
    return f"{store_root.rstrip('/')}/_serving/{_key(model)}/samples"


def sample_partition(when: datetime) -> str:
    """The hour partition a sample taken at ``when`` (UTC) belongs to."""
    return f"date={when:%Y-%m-%d}/hour={when:%H}"


def monitoring_uri(store_root: str, model: str) -> str:
    """The folder of a model's monitoring reports (one sub-folder per check)."""
    return f"{store_root.rstrip('/')}/_monitoring/{_key(model)}"


def latest_verdict_uri(store_root: str, model: str) -> str:
    """The JSON the latest ``conveyor monitor`` check of ``model`` leaves for the status page."""
    return f"{monitoring_uri(store_root, model)}/latest.json"
