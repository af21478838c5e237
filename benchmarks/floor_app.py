"""The floor: the least a server can do to answer MLflow's scoring protocol with a model.

A raw ASGI app (no framework) that parses the JSON body with orjson, builds the DataFrame
and calls the scikit-learn pipeline's ``predict_proba``: no validation, no metrics, no
sampling, no error handling beyond a 400. ``benchmarks/serve_bench.py`` runs it under
uvicorn with the same worker count as the servers it is compared with, so the gap between
this and ``conveyor serve`` is what Conveyor's checks and bookkeeping cost.

The model folder comes from ``FLOOR_MODEL`` (an MLflow scikit-learn folder saved with skops,
as Conveyor saves them); it is loaded with skops directly, trusting the types its MLmodel
records::

    FLOOR_MODEL=$HOME/.conveyor/exports/breast_cancer/<run>/model \\
        .venv/bin/uvicorn floor_app:app --app-dir benchmarks --workers 2 --port 8090
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import skops.io
import yaml


def _load(folder: Path) -> tuple[Any, list[Any]]:
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    flavour = mlmodel["flavors"]["sklearn"]
    model = skops.io.load(folder / flavour["pickled_model"],
                          trusted=list(flavour.get("skops_trusted_types") or []))
    return model, list(model.classes_)


MODEL, CLASSES = _load(Path(os.environ["FLOOR_MODEL"]))
JSON = [(b"content-type", b"application/json")]


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Any, status: int, payload: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON})
    await send({"type": "http.response.body", "body": payload})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``GET /ready`` and ``POST /invocations`` (``dataframe_split`` only)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/ready":
        await _send(send, 200, b'{"ready":true}')
        return
    if scope["path"] != "/invocations" or scope["method"] != "POST":
        await _send(send, 404, b'{"error":"not found"}')
        return
    try:
        split = orjson.loads(await _body(receive))["dataframe_split"]
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        proba = MODEL.predict_proba(frame)
    except Exception as exc:  # the floor reports, it does not validate
        await _send(send, 400, orjson.dumps({"error": str(exc)}))
        return
    labels = [CLASSES[i] for i in proba.argmax(axis=1)]
    await _send(send, 200, orjson.dumps({"predictions": labels,
                                         "probabilities": proba.tolist()}))
