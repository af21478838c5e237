"""The model a server answers with, and the holder that swaps it when its alias moves.

:func:`build_serving_model` turns a verified :class:`~conveyor.serving.model.LoadedModel`
into a :class:`ServingModel`: it compiles a fast predict path when the pipeline allows
(:mod:`conveyor.serving.fastpath`), scores the model's own check rows (its
``input_example.json``) through scikit-learn and through the compiled path, keeps the compiled
path only if both agree to 1e-9, and refuses a model scikit-learn itself cannot score.

:class:`ModelHolder` owns ``.current``: it polls :func:`~conveyor.serving.model.resolve`
and, when the URI names another version, loads, verifies, builds and warms it beside the
one serving, then swaps ``.current`` in one assignment. Requests that already hold the old
model finish on it. A version that fails is refused and recorded in ``.status``; an
unreachable registry keeps the current model (ADR 0033).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from conveyor.errors import BadInputError, ConveyorError
from conveyor.ids import now_iso
from conveyor.modeling.threshold import decision_threshold, label_index
from conveyor.serving.fastpath import FastpathDeclined, Predictor, compile_predictor
from conveyor.serving.model import (
    Feature,
    LoadedModel,
    ModelIdentity,
    ModelRefusedError,
    Prediction,
    load,
    resolve,
)

__all__ = [
    "EQUALITY_TOLERANCE",
    "ModelHolder",
    "ServedPrediction",
    "ServingModel",
    "build_serving_model",
]

log = logging.getLogger(__name__)

EQUALITY_TOLERANCE = 1e-9
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer", "boolean"})
EventCallback = Callable[[str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class ServedPrediction(Prediction):
    """A :class:`Prediction` that also names its classes (``proba``'s columns) and version."""

    classes: tuple[Any, ...] | None = None
    version: str | None = None


class ServingModel:
    """A loaded model ready to answer: checked, warmed, and compiled when possible.

    Attributes:
        loaded: the verified model.
        identity: which model this is (name, version, sha256, ...).
        features: the signature's columns, in order.
        feature_names: their names.
        classes: the class labels (``None`` for a regressor).
        numeric: every feature is numeric or boolean: :meth:`predict` takes a float64 array.
        check_rows: the model's input example, one mapping per row.
        compiled: whether predictions go through the compiled path.
        fallback_reason: why the compiled path is not used (empty when it is).
    """

    def __init__(self, loaded: LoadedModel, check_rows: list[dict[str, Any]],
                 predictor: Predictor | None, fallback_reason: str) -> None:
        self.loaded = loaded
        self.identity: ModelIdentity = loaded.identity
        self.features: tuple[Feature, ...] = loaded.features
        self.feature_names: list[str] = loaded.feature_names
        self.classes = loaded.classes
        self.numeric = all(f.dtype in NUMERIC_TYPES for f in self.features)
        self.check_rows = check_rows
        self._predictor = predictor
        self.fallback_reason = fallback_reason
        self._labels = None if self.classes is None else np.asarray(self.classes, dtype=object)
        self._decided = decision_threshold(loaded.estimator)
        self._version = loaded.identity.version

    @property
    def compiled(self) -> bool:
        return self._predictor is not None

    def __repr__(self) -> str:
        return (f"ServingModel({self.identity.name!r}, version={self.identity.version!r}, "
                f"compiled={self.compiled})")

    def predict(self, X: Any) -> ServedPrediction:
        """Predict for ``X``: a float64 array ``(n, len(feature_names))`` in signature order
        when :attr:`numeric`, else a DataFrame holding the feature columns (a DataFrame of
        numeric columns also takes the compiled path).

        Raises:
            ValueError: scikit-learn refused the input (a NaN where the model has no imputer).
        """
        if self._predictor is not None:
            array = X if isinstance(X, np.ndarray) else self._numeric_array(X)
            if array is not None:
                try:
                    proba = self._predictor(array)
                except FastpathDeclined:
                    pass
                else:
                    return self._answer(proba)
        return self._sklearn(X)

    def _numeric_array(self, frame: Any) -> np.ndarray | None:
        """A DataFrame whose feature columns are all numeric or boolean, as float64 (else
        ``None``: scikit-learn converts other dtypes by rules of its own)."""
        try:
            columns = frame[self.feature_names]
        except (KeyError, TypeError, IndexError):
            return None
        if not all(dtype.kind in "fiub" for dtype in columns.dtypes):
            return None
        return np.ascontiguousarray(columns.to_numpy(dtype=np.float64))

    def predict_sklearn(self, X: Any) -> ServedPrediction:
        """Predict through scikit-learn only (what the compiled path is checked against)."""
        return self._sklearn(X)

    def _answer(self, proba: np.ndarray) -> ServedPrediction:
        # the arg-max, or the decision threshold saved inside the model (ADR 0041)
        labels = self._labels[label_index(proba, self._labels, self._decided)]  # type: ignore[index]
        return ServedPrediction(labels=labels, proba=proba, classes=self.classes,
                                version=self._version)

    def _sklearn(self, X: Any) -> ServedPrediction:
        frame = self._frame(X)
        result = self.loaded.predict(frame)
        if result.proba is not None:
            return ServedPrediction(labels=result.labels, proba=np.asarray(result.proba),
                                    classes=self.classes, version=self._version)
        return ServedPrediction(labels=result.labels, proba=None, classes=None,
                                version=self._version)

    def _frame(self, X: Any) -> Any:
        import pandas as pd

        if isinstance(X, np.ndarray):
            return pd.DataFrame(X, columns=self.feature_names, copy=False)
        return X

    def as_array(self, rows: Any) -> np.ndarray:
        """A DataFrame (or list of mappings) of numeric features as the float64 array
        :meth:`predict` takes."""
        import pandas as pd

        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        return np.ascontiguousarray(frame[self.feature_names].to_numpy(dtype=np.float64))


# ----------------------------------------------------------------------------- build


def read_check_rows(loaded: LoadedModel) -> list[dict[str, Any]]:
    """The rows of the model's ``input_example.json`` (pandas ``split`` or ``records``)."""
    path = loaded.folder / "input_example.json"
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelRefusedError(f"{loaded.identity.uri}: input_example.json is not JSON: "
                                f"{exc}") from exc
    if isinstance(data, dict) and "columns" in data and "data" in data:
        columns = [str(c) for c in data["columns"]]
        return [dict(zip(columns, row, strict=False)) for row in data["data"]]
    if isinstance(data, dict) and isinstance(data.get("dataframe_records"), list):
        data = data["dataframe_records"]
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return [dict(r) for r in data]
    raise ModelRefusedError(f"{loaded.identity.uri}: input_example.json holds no rows "
                            "(expected pandas split or records orientation)")


def _check_frame(loaded: LoadedModel, rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    frame = pd.DataFrame(rows)
    missing = [n for n in loaded.feature_names if n not in frame.columns]
    if missing:
        raise ModelRefusedError(f"{loaded.identity.uri}: its input example lacks the "
                                f"signature's columns {missing[:5]}")
    return frame[loaded.feature_names]


def build_serving_model(loaded: LoadedModel, *, compile: bool = True) -> ServingModel:
    """Check, warm and (when possible) compile ``loaded``.

    The check rows are scored through scikit-learn; a model that fails there is refused. The
    compiled path is kept only when it agrees with scikit-learn to 1e-9 on the check rows, on
    the first row alone, and on the rows with NaN holes (where scikit-learn must raise
    exactly when the compiled path declines).

    Args:
        loaded: a verified model from :func:`conveyor.serving.model.load`.
        compile: try the compiled path (``False``: scikit-learn only).

    Raises:
        ModelRefusedError: scikit-learn cannot score the model's own check rows.
    """
    rows = read_check_rows(loaded)
    probe = ServingModel(loaded, rows, None, "")
    frame = _check_frame(loaded, rows) if rows else None
    reference = None
    if frame is not None:
        try:
            reference = probe.predict_sklearn(frame)
        except Exception as exc:  # whatever the model raises, it cannot serve
            raise ModelRefusedError(
                f"{loaded.identity.uri} (version {loaded.identity.version}) cannot score its "
                f"check rows: {type(exc).__name__}: {exc}") from exc
    predictor, reason = None, ""
    if not compile:
        reason = "disabled"
    elif not probe.numeric:
        reason = "non-numeric features"
    elif loaded.classes is None:
        reason = "not a classifier"
    elif frame is None or reference is None:
        reason = "no check rows to verify it against"
    else:
        predictor = compile_predictor(loaded.estimator, loaded.feature_names)
        if predictor is None:
            reason = "pipeline not supported by the compiled path"
        else:
            reason = _disagreement(probe, predictor, frame, reference)
            if reason:
                log.warning("%s: compiled predict path dropped: %s", loaded.identity.uri,
                            reason)
                predictor = None
    model = ServingModel(loaded, rows, predictor, reason)
    if frame is not None and model.numeric:
        model.predict(model.as_array(frame))  # warm the path requests take
    return model


def _disagreement(probe: ServingModel, predictor: Predictor, frame: Any,
                  reference: ServedPrediction) -> str:
    """Why ``predictor`` cannot stand in for scikit-learn (empty when it can)."""
    X = probe.as_array(frame)
    try:
        cases = [(X, np.asarray(reference.proba)),
                 (X[:1].copy(), np.asarray(reference.proba)[:1])]
        for data, expected in cases:
            got = predictor(np.ascontiguousarray(data))
            if got.shape != expected.shape:
                return f"shape {got.shape} where scikit-learn gives {expected.shape}"
            gap = float(np.max(np.abs(got - expected))) if got.size else 0.0
            if not gap <= EQUALITY_TOLERANCE:
                return f"differs from scikit-learn by {gap:.3g} (> {EQUALITY_TOLERANCE})"
        holes = X.copy()
        holes[np.arange(len(holes)), np.arange(len(holes)) % holes.shape[1]] = np.nan
        try:
            expected = np.asarray(probe.predict_sklearn(holes).proba)
        except Exception:  # noqa: BLE001 - scikit-learn refuses NaN here: the compiled path must decline
            try:
                predictor(holes)
            except FastpathDeclined:
                return ""
            return "answers NaN inputs scikit-learn refuses"
        try:
            got = predictor(holes)
        except FastpathDeclined:
            return ""  # such requests go to scikit-learn
        gap = float(np.max(np.abs(got - expected))) if got.size else 0.0
        if not gap <= EQUALITY_TOLERANCE:
            return f"differs from scikit-learn on NaN inputs by {gap:.3g}"
    except Exception as exc:  # noqa: BLE001 - a compiled path that crashes is simply not used
        return f"failed: {type(exc).__name__}: {exc}"
    return ""


# ----------------------------------------------------------------------------- holder


class ModelHolder:
    """The model a server answers with, reloaded when its URI starts naming another one.

    Args:
        uri: what to serve (``models:/name@production``, an export folder, ...).
        tracking_uri: the MLflow tracking URI for ``models:/`` URIs.
        poll_seconds: how often :meth:`start`'s thread asks which version the URI names.
        on_event: called as ``on_event(kind, info)`` with ``kind`` ``loaded`` (first model),
            ``swapped``, ``refused`` or ``poll_failed``; it must not raise (it is logged).
        retry_refused_seconds: a refused version is tried again after this long (its files
            may have been repaired, or the failure was a transient download error).
        compile: use the compiled predict path where it is proven equal (``False``: always
            scikit-learn, an operator's escape hatch).

    Attributes:
        current: the :class:`ServingModel` answering now (``None`` before the first load).
        status: a copy of ``uri``, ``version``, ``loaded_at``, ``compiled``, ``last_poll``,
            ``polls``, ``last_refused`` (``{"version", "reason", "at"}`` or ``None``) and
            ``last_error`` (why the last poll failed; ``None`` when it did not).
    """

    def __init__(self, uri: str, *, tracking_uri: str | None = None,
                 poll_seconds: float = 10.0, on_event: EventCallback | None = None,
                 retry_refused_seconds: float = 60.0, compile: bool = True) -> None:
        self.uri = uri
        self.tracking_uri = tracking_uri
        self.poll_seconds = float(poll_seconds)
        self.retry_refused_seconds = float(retry_refused_seconds)
        self.compile = compile
        self.on_event = on_event
        self.current: ServingModel | None = None
        self._status: dict[str, Any] = {"uri": uri, "version": None, "loaded_at": None,
                                        "compiled": None, "last_poll": None,
                                        "last_refused": None, "last_error": None, "polls": 0}
        self._refused: dict[str, float] = {}  # key -> when it was refused (monotonic)
        self._lock = threading.Lock()  # one load at a time (poller and load_now)
        self._status_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def status(self) -> dict[str, Any]:
        """A copy of the holder's state (safe to read from any thread)."""
        with self._status_lock:
            return dict(self._status)

    def _note(self, **changes: Any) -> None:
        with self._status_lock:
            self._status.update(changes)

    @property
    def key(self) -> str | None:
        """The identity key of the model serving now (``version:sha256``)."""
        current = self.current
        return None if current is None else current.identity.key

    # ------------------------------------------------------------------ loading
    def load_now(self) -> ServingModel:
        """Resolve, load, verify, build and warm the model the URI names now (blocking).

        Raises:
            BadInputError: the URI is malformed or names nothing.
            ModelRefusedError: the model is tampered with, unloadable, or fails its check rows.
            TrackingError: MLflow or the Store cannot be reached.
        """
        with self._lock:
            identity = resolve(self.uri, tracking_uri=self.tracking_uri)
            model = self._build(identity)
            self._install(model)
            return model

    def _build(self, identity: ModelIdentity) -> ServingModel:
        loaded = load(identity, tracking_uri=self.tracking_uri)
        return build_serving_model(loaded, compile=self.compile)

    def _install(self, model: ServingModel) -> None:
        previous = self.current
        self.current = model  # the swap: one assignment; requests holding `previous` finish
        self._note(version=model.identity.version, loaded_at=model.loaded.loaded_at,
                   compiled=model.compiled)
        info = {"uri": self.uri, "version": model.identity.version,
                "sha256": model.identity.sha256, "compiled": model.compiled}
        if previous is None:
            log.info("serving %s version %s", self.uri, model.identity.version)
            self._emit("loaded", info)
        else:
            info["previous_version"] = previous.identity.version
            log.info("%s moved: now serving version %s (was %s)", self.uri,
                     model.identity.version, previous.identity.version)
            self._emit("swapped", info)

    def _emit(self, kind: str, info: Mapping[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(kind, dict(info))
        except Exception:  # a listener's bug must not stop the reloads
            log.exception("on_event(%r) failed", kind)

    # ------------------------------------------------------------------ polling
    def poll(self) -> bool:
        """One poll: swap to the version the URI names now if it changed. ``True`` if swapped.

        Never raises for an unreachable registry or a refused version (both recorded in
        :attr:`status` and reported through ``on_event``).
        """
        with self._lock:
            self._note(last_poll=now_iso(), polls=self._status["polls"] + 1)
            try:
                identity = resolve(self.uri, tracking_uri=self.tracking_uri)
            except Exception as exc:  # noqa: BLE001 - MLflow down, a timeout: keep serving
                reason = _reason(exc)
                self._note(last_error=reason)
                log.warning("polling %s failed (still serving version %s): %s", self.uri,
                            self.status.get("version"), reason)
                self._emit("poll_failed", {"uri": self.uri, "reason": reason})
                return False
            self._note(last_error=None)
            if identity.key == self.key:
                return False
            refused_at = self._refused.get(identity.key)
            if refused_at is not None and \
                    time.monotonic() - refused_at < self.retry_refused_seconds:
                return False
            try:
                model = self._build(identity)
            except Exception as exc:  # noqa: BLE001 - whatever fails, the old one serves
                reason = _reason(exc)
                self._refused[identity.key] = time.monotonic()
                self._note(last_refused={"version": identity.version, "reason": reason,
                                         "at": now_iso()})
                log.error("refused %s version %s (still serving version %s): %s", self.uri,
                          identity.version, self.status.get("version"), reason)
                self._emit("refused", {"uri": self.uri, "version": identity.version,
                                       "reason": reason})
                return False
            self._refused.pop(identity.key, None)
            self._install(model)
            return True

    def start(self) -> ModelHolder:
        """Poll every ``poll_seconds`` on a daemon thread (also loads a first model if
        :meth:`load_now` was not called or failed)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="conveyor-model-poller",
                                            daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        first = self.current is None
        while not self._stop.is_set():
            if not first and self._stop.wait(self.poll_seconds):
                break
            first = False
            try:
                self.poll()
            except Exception:  # the poller must outlive any one poll
                log.exception("polling %s failed unexpectedly", self.uri)

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop polling (a load in progress finishes first, up to ``timeout``)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (ConveyorError, BadInputError)):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
