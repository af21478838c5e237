"""The model server's HTTP application: a raw ASGI app (no framework), run by uvicorn.

Endpoints (docs/serving.md): ``POST /invocations`` (MLflow's scoring protocol), ``POST
/predict`` (typed), ``GET /openapi.json``, ``/health``, ``/ready``, ``/model``, ``/metrics``
(Prometheus), ``/report`` (the model's evaluation report) and ``/`` (a status page).

The request path is short on purpose: auth, content type, body read with a byte limit, orjson,
a decoder that builds the batch in the signature's order (a float64 array for an all-numeric
signature), the model, metrics, a non-blocking sample offer, orjson out. Why no framework:
docs/decisions/0032.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import orjson

from conveyor.serving import protocol
from conveyor.serving.protocol import Limits, RequestError, Schema

__all__ = ["CONFIG_ENV", "App", "ServerConfig", "app_from_env"]

log = logging.getLogger(__name__)

#: Where a worker process finds its :class:`ServerConfig` (JSON) with ``--workers N``.
CONFIG_ENV = "CONVEYOR_SERVE_CONFIG"
_JSON = [(b"content-type", b"application/json")]
_THREAD_ROWS = 2_000  # a batch this large is scored off the event loop


@dataclass(frozen=True)
class ServerConfig:
    """Everything a server process needs, explicit (workers are fresh processes).

    Attributes:
        model_uri: ``models:/name@alias``, ``models:/name/N`` or a folder URI.
        tracking_uri: the MLflow tracking URI for ``models:/``.
        store_root: the Store root samples go to and verdicts are read from.
        token_env: the environment variable holding the bearer token, if auth is on.
        poll_seconds: how often the alias is checked.
        max_rows: rows per request.
        max_body_bytes: bytes per request body.
        sample_rate: the share of requests sampled for monitoring.
    """

    model_uri: str
    tracking_uri: str | None = None
    store_root: str | None = None
    token_env: str | None = None
    poll_seconds: float = 10.0
    max_rows: int = Limits.max_rows
    max_body_bytes: int = Limits.max_body_bytes
    sample_rate: float = 0.1

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        return cls(**orjson.loads(text))


def app_from_env() -> App:
    """The app of a worker process started by uvicorn with ``--workers N`` (a factory)."""
    return App(ServerConfig.from_json(os.environ[CONFIG_ENV]))


# ---------------------------------------------------------------------- metrics


class _Metrics:
    """The server's Prometheus metrics; multi-process aware when uvicorn runs N workers."""

    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )

        disable_created_metrics()  # a *_created series per label set: noise for this server
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        self.requests = Counter("conveyor_requests", "HTTP requests answered",
                                ["endpoint", "status"], registry=self.registry)
        self.errors = Counter("conveyor_request_errors", "requests answered with 4xx or 5xx",
                              ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram(
            "conveyor_request_seconds", "time from request to response", ["endpoint"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                     5), registry=self.registry)
        self.rows = Counter("conveyor_prediction_rows", "rows scored", registry=self.registry)
        self.predictions = Counter("conveyor_predictions", "predictions by class", ["label"],
                                   registry=self.registry)
        self.info = Gauge("conveyor_model_info", "the model version being served (1)",
                          ["name", "version", "run_id"], registry=self.registry,
                          multiprocess_mode="livemax")
        self._children: dict[tuple[str, Any], Any] = {}
        self._shown: tuple[str, str, str] | None = None

    def child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def model(self, name: str, version: str, run_id: str) -> None:
        labels = (name, version, run_id)
        if labels == self._shown:
            return
        if self._shown is not None:
            self.info.labels(*self._shown).set(0)
        self.info.labels(*labels).set(1)
        self._shown = labels

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


# ---------------------------------------------------------------------- the app


class _Disconnected(Exception):
    """The client went away before its body arrived."""


class App:
    """The ASGI application serving one model URI.

    Args:
        config: what to serve and how.
        holder: a ready :class:`~conveyor.serving.runtime.ModelHolder` (tests, embedding);
            default: one made and loaded at startup, in the background (``/ready`` is 503
            until the model is loaded).
    """

    def __init__(self, config: ServerConfig, holder: Any = None) -> None:
        self.config = config
        self.limits = Limits(max_rows=config.max_rows, max_body_bytes=config.max_body_bytes)
        self.holder = holder
        self.metrics = _Metrics()
        self.sampler: Any = None
        self._token: bytes | None = None
        if config.token_env:
            token = os.environ.get(config.token_env, "")
            if not token:
                from conveyor.errors import BadInputError

                raise BadInputError(f"--token-env {config.token_env}: that environment "
                                    "variable is empty or not set")
            self._token = b"Bearer " + token.encode()
        self._schemas: dict[int, Schema] = {}
        self._stop = threading.Event()
        self._up = False  # the model loaded, and the poller and the sampler started
        self._loader: threading.Thread | None = None
        self.started = time.time()
        self._routes: dict[tuple[str, str], Callable[..., Awaitable[None]]] = {
            ("POST", "/invocations"): self._invocations,
            ("POST", "/predict"): self._predict,
            ("GET", "/health"): self._health,
            ("GET", "/ready"): self._ready,
            ("GET", "/ping"): self._ready,  # MLflow's scoring server's readiness probe
            ("GET", "/model"): self._model,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/openapi.json"): self._openapi,
            ("GET", "/report"): self._report,
            ("GET", "/"): self._status_page,
        }
        self._paths = {path for _, path in self._routes}

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.startup()
                except Exception as exc:  # noqa: BLE001 - reported by uvicorn, which then exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def startup(self) -> None:
        """Start loading the model in the background (the port is already bound)."""
        if self.holder is not None and self.holder.current is not None:
            self._started_model()
            return
        self._loader = threading.Thread(target=self._load, name="conveyor-model-loader",
                                        daemon=True)
        self._loader.start()

    def _load(self) -> None:
        from conveyor.serving.runtime import ModelHolder

        if self.holder is None:
            self.holder = ModelHolder(self.config.model_uri,
                                      tracking_uri=self.config.tracking_uri,
                                      poll_seconds=self.config.poll_seconds)
        while not self._stop.is_set():
            try:
                self.holder.load_now()
                break
            except Exception as exc:  # noqa: BLE001 - the registry may be down: retry, not ready
                log.error("cannot load %s yet (retrying in %ss): %s", self.config.model_uri,
                          self.config.poll_seconds, exc)
                self._stop.wait(self.config.poll_seconds)
        else:
            return
        self._started_model()

    def _started_model(self) -> None:
        model = self.holder.current
        self.holder.start()
        if self.config.store_root and self.config.sample_rate > 0:
            from conveyor.serving.sampling import Sampler

            try:
                self.sampler = Sampler(self.config.store_root, model.identity.name,
                                       rate=self.config.sample_rate)
            except Exception as exc:  # noqa: BLE001 - sampling is for monitoring; serving goes on
                log.error("request sampling is off: %s", exc)
        self._up = True
        log.info("serving %s (version %s)", model.identity.name, model.identity.version)

    def shutdown(self) -> None:
        """Stop polling and flush the samples (in-flight requests are done by now)."""
        self._stop.set()
        if self.holder is not None:
            self.holder.stop()
        if self.sampler is not None:
            self.sampler.close()

    # ------------------------------------------------------------------ HTTP

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        path = scope["path"]
        handler = self._routes.get((scope["method"], path))
        endpoint = path if path in self._paths else "other"
        try:
            if handler is None:
                if path in self._paths:
                    raise RequestError(405, f"{scope['method']} is not allowed on {path}")
                raise RequestError(404, f"no endpoint {path[:100]!r}; see /openapi.json")
            status = await handler(scope, receive, send)
        except RequestError as exc:
            status = exc.status
            headers = list(_JSON)
            if status == 401:
                headers.append((b"www-authenticate", b"Bearer"))
            if status == 413:  # the rest of the body is not read: end the connection
                headers.append((b"connection", b"close"))
            await _respond(send, status, orjson.dumps({"error": exc.message}), headers)
        except _Disconnected:
            status = 499
        except Exception:  # a bug: logged here with its traceback, never sent to the client
            log.exception("error answering %s %s", scope["method"], path)
            status = 500
            await _respond(send, 500, b'{"error":"internal error; see the server log"}',
                           _JSON)
        metrics = self.metrics
        code = str(status)
        metrics.child(metrics.requests, endpoint, code).inc()
        if status >= 400:
            metrics.child(metrics.errors, endpoint, code).inc()
        metrics.child(metrics.latency, endpoint).observe(time.perf_counter() - started)

    def _check_auth(self, scope: dict[str, Any]) -> None:
        if self._token is None:
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        if not hmac.compare_digest(given, self._token):
            raise RequestError(401, "missing or wrong bearer token (Authorization: Bearer ...)")

    async def _body(self, scope: dict[str, Any], receive: Any, allowed: tuple[bytes, ...]
                    ) -> tuple[bytes, bytes]:
        """Check the content type, then read the body, counting bytes as they arrive."""
        kind = b""
        length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                kind = value.split(b";", 1)[0].strip().lower()
            elif name == b"content-length":
                length = value
        if kind not in allowed:
            raise RequestError(415, f"content type {kind.decode('latin-1')[:60] or '(none)'!r} "
                               "is not accepted; send "
                               + " or ".join(a.decode() for a in allowed))
        limit = self.limits.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            raise RequestError(413, f"body of {int(length)} bytes is over the limit of "
                               f"{limit} bytes (--max-body-bytes)")
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise RequestError(413, f"body over the limit of {limit} bytes "
                                   "(--max-body-bytes)")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return kind, chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _serving(self) -> Any:
        model = self.holder.current if self.holder is not None else None
        if model is None:
            raise RequestError(503, "no model loaded yet; see /ready")
        return model

    def _schema(self, model: Any) -> Schema:
        schema = self._schemas.get(id(model))
        if schema is None:
            self._schemas.clear()  # one model at a time: the previous one's is dropped
            schema = self._schemas[id(model)] = Schema(model.features,
                                                       max_rows=self.limits.max_rows)
            schema.model = model  # keeps id(model) from being reused while cached
        return schema

    async def _score(self, model: Any, X: Any, scope: dict[str, Any]) -> Any:
        rows = len(X)
        try:
            if rows > _THREAD_ROWS:
                prediction = await asyncio.to_thread(model.predict, X)
            else:
                prediction = model.predict(X)
        except ValueError as exc:  # scikit-learn refused the values (a NaN it cannot impute)
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "refused"
            raise RequestError(400, f"the model cannot score this batch: {first}") from None
        identity = model.identity
        metrics = self.metrics
        metrics.model(identity.name, str(identity.version), str(identity.run_id))
        metrics.rows.inc(rows)
        labels = prediction.labels
        if model.classes is not None:
            values, counts = np.unique(labels, return_counts=True) if rows > 1 else (labels, (1,))
            for value, count in zip(values, counts, strict=True):
                metrics.child(metrics.predictions, str(value)).inc(int(count))
        if self.sampler is not None:  # never blocks, never raises (a queue append at most)
            self.sampler.offer(X, model.feature_names, prediction, identity.version,
                               _request_id(scope))
        return prediction

    async def _invocations(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        self._check_auth(scope)
        model = self._serving()
        kind, body = await self._body(scope, receive, (b"application/json", b"text/csv"))
        schema = self._schema(model)
        if kind == b"text/csv":
            X = protocol.decode_csv(schema, body)
        else:
            X = protocol.decode_invocations(schema, protocol.parse_json(body))
        prediction = await self._score(model, X, scope)
        await _respond(send, 200, orjson.dumps({"predictions": _list(prediction.labels)}),
                       _JSON)
        return 200

    async def _predict(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        self._check_auth(scope)
        model = self._serving()
        _, body = await self._body(scope, receive, (b"application/json",))
        X = protocol.decode_predict(self._schema(model), protocol.parse_json(body))
        prediction = await self._score(model, X, scope)
        identity = model.identity
        out: dict[str, Any] = {"model": identity.name, "version": identity.version,
                               "predictions": _list(prediction.labels)}
        if prediction.proba is not None and model.classes is not None:
            out["classes"] = list(model.classes)
            out["probabilities"] = np.asarray(prediction.proba, dtype=np.float64)
        await _respond(send, 200, orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY), _JSON)
        return 200

    # ------------------------------------------------------------------ reading

    async def _health(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        await _respond(send, 200, b'{"status":"alive"}', _JSON)
        return 200

    async def _ready(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        model = self.holder.current if self.holder is not None else None
        if model is None or not self._up:
            raise RequestError(503, "not ready: the model is still loading")
        await _respond(send, 200, orjson.dumps({"status": "ready",
                                                "version": model.identity.version}), _JSON)
        return 200

    def model_card(self, model: Any) -> dict[str, Any]:
        """What ``GET /model`` answers: the model being served, and where it came from."""
        identity = model.identity
        tags = dict(identity.tags or {})
        return {
            "name": identity.name, "version": identity.version, "alias": identity.alias,
            "run_id": identity.run_id, "uri": identity.uri, "source": identity.location,
            "sha256": identity.sha256, "metrics": dict(identity.metrics),
            "loaded_at": getattr(model, "loaded_at", None) or getattr(
                getattr(model, "loaded", None), "loaded_at", None),
            "gate": _gate(identity.kind, tags),
            "features": [{"name": f.name, "type": f.dtype, "required": f.required}
                         for f in model.features],
            "classes": list(model.classes) if model.classes is not None else None,
            "predict_path": "compiled" if getattr(model, "compiled", False) else
            "scikit-learn" + (f" ({model.fallback_reason})"
                              if getattr(model, "fallback_reason", "") else ""),
            "last_refused": (getattr(self.holder, "status", None) or {}).get("last_refused"),
        }

    async def _model(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        await _respond(send, 200, orjson.dumps(self.model_card(self._serving())), _JSON)
        return 200

    async def _metrics(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        body = await asyncio.to_thread(self.metrics.render)
        await _respond(send, 200, body, [(b"content-type",
                                          b"text/plain; version=0.0.4; charset=utf-8")])
        return 200

    async def _openapi(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        model = self._serving()
        await _respond(send, 200, orjson.dumps(openapi(model, self._schema(model))), _JSON)
        return 200

    def _report_uri(self, model: Any) -> str | None:
        identity = model.identity
        tags = identity.tags or {}
        pipeline = tags.get("conveyor.pipeline") or identity.name
        run_id = tags.get("conveyor.run_id") or identity.run_id
        if not (self.config.store_root and run_id):
            return None
        # the gate renders the run's report (ADR 0041); runs from before it: evaluate's
        return f"{self.config.store_root.rstrip('/')}/{pipeline}/{run_id}/gate/report.html"

    async def _report(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        uri = self._report_uri(self._serving())
        body = await asyncio.to_thread(_read_store, uri, raw=True) if uri else None
        if body is None and uri:
            body = await asyncio.to_thread(
                _read_store, uri.replace("/gate/report.html", "/evaluate/report.html"), raw=True)
        if body is None:
            raise RequestError(404, "no evaluation report found for this model")
        await _respond(send, 200, body, [(b"content-type", b"text/html; charset=utf-8")])
        return 200

    async def _status_page(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        model = self.holder.current if self.holder is not None else None
        verdict = None
        if model is not None and self.config.store_root:
            from conveyor.serving.layout import latest_verdict_uri

            verdict = await asyncio.to_thread(
                _read_store, latest_verdict_uri(self.config.store_root, model.identity.name))
        from conveyor.serving.status_page import render

        card = self.model_card(model) if model is not None else None
        report = bool(model is not None and self._report_uri(model))
        page = render(card, verdict, report=report, uptime=time.time() - self.started)
        await _respond(send, 200, page.encode(), [(b"content-type", b"text/html; charset=utf-8")])
        return 200


def openapi(model: Any, schema: Schema) -> dict[str, Any]:
    """The OpenAPI document of ``/predict`` (and the rest) for ``model``'s signature."""
    identity = model.identity
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    label = {"type": "string"} if model.classes and isinstance(model.classes[0], str) else {
        "type": "number"}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{identity.name} (Conveyor model server)",
                 "version": str(identity.version)},
        "paths": {
            "/predict": {"post": {
                "summary": "Predict for rows of features",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/PredictRequest"}}}},
                "responses": {"200": {"description": "predictions", "content": {
                    "application/json": {"schema": {
                        "$ref": "#/components/schemas/PredictResponse"}}}},
                    "400": error, "401": error, "413": error, "415": error, "503": error}}},
            "/invocations": {"post": {
                "summary": "MLflow scoring protocol (dataframe_split, dataframe_records, "
                           "instances, inputs, text/csv)",
                "responses": {"200": {"description": '{"predictions": [...]}'},
                              "400": error, "413": error, "415": error}}},
            "/health": {"get": {"responses": {"200": {"description": "alive"}}}},
            "/ready": {"get": {"responses": {"200": {"description": "a model is loaded"},
                                             "503": error}}},
            "/model": {"get": {"responses": {"200": {"description": "the model card"}}}},
            "/metrics": {"get": {"responses": {"200": {"description": "Prometheus text"}}}},
        },
        "components": {"schemas": {
            "Row": schema.json_schema(),
            "PredictRequest": {"type": "object", "properties": {
                "records": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}},
                "rows": {"type": "array", "items": {"oneOf": [
                    {"$ref": "#/components/schemas/Row"},
                    {"type": "array", "description": "values in this order: "
                     + ", ".join(schema.names)}]}}}},
            "PredictResponse": {"type": "object", "properties": {
                "model": {"type": "string"}, "version": {"type": "string"},
                "predictions": {"type": "array", "items": label},
                "classes": {"type": "array", "items": label},
                "probabilities": {"type": "array", "items": {
                    "type": "array", "items": {"type": "number"}}}}},
            "Error": {"type": "object", "properties": {"error": {"type": "string"}},
                      "required": ["error"]},
        }},
    }


def _gate(kind: str, tags: dict[str, str]) -> str:
    validated = tags.get("conveyor.validated")
    if validated == "true":
        return "passed"
    if validated == "false":
        return "not validated"
    if kind == "folder":
        return "passed (exported)"
    return "not recorded"


def _read_store(uri: str, *, raw: bool = False) -> Any:
    """A small file from the Store (verdict, report), or ``None`` when absent or unreadable."""
    from conveyor.store import Store

    try:
        store = Store(uri.rpartition("/")[0])
        if not store.exists(uri):
            return None
        data = store.get_bytes(uri)
        return data if raw else orjson.loads(data)
    except Exception as exc:  # noqa: BLE001 - a status page: absent and unreadable alike
        log.warning("cannot read %s: %s", uri, exc)
        return None


def _request_id(scope: dict[str, Any]) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and 0 < len(value) <= 64 and value.isascii():
            return value.decode("ascii")
    return uuid.uuid4().hex


def _list(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
                   ) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

