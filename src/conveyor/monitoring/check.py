"""One monitoring check: the window against the model's reference profile, reported and acted on.

:func:`check` is what ``conveyor monitor``, :func:`conveyor.monitor` and the
``<name>_monitor`` DAG run. It reads the window (the samples the server wrote under
:func:`conveyor.serving.layout.samples_uri`, or a batch file), compares it with the profile
saved inside the model folder, writes ``report.json`` and ``report.html`` under
:func:`~conveyor.serving.layout.monitoring_uri` and then the verdict at
:func:`~conveyor.serving.layout.latest_verdict_uri` (last: readers trust it), logs one MLflow
run in the experiment ``<model>-monitoring``, and on drift posts an alert and triggers the
training DAG (or records that it would).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conveyor.errors import BadInputError, StoreError
from conveyor.ids import new_id, now_iso
from conveyor.monitoring.alerts import notify, trigger_dag
from conveyor.monitoring.drift import Thresholds, compare, live_metrics
from conveyor.monitoring.profile import PROFILE_FILE, read_profile
from conveyor.monitoring.report import render_html
from conveyor.serving import layout
from conveyor.store import Store, store_root, to_uri

__all__ = ["DRIFT_EXIT", "MonitorResult", "check", "parse_window"]

log = logging.getLogger(__name__)

#: ``conveyor monitor``'s exit code when drift passed the thresholds.
DRIFT_EXIT = 3
_WINDOW = re.compile(r"^([1-9][0-9]{0,4})([mhd])$")
_METRIC_NAME = re.compile(r"[^A-Za-z0-9_.\-/ ]")
#: ``trigger(airflow_url, dag_id, conf) -> dict``: how a retrain is started (the API layer
#: may pass Airflow's own client; the default speaks its REST API).
Trigger = Callable[[str, str, Mapping[str, Any]], dict[str, Any]]


@dataclass
class MonitorResult:
    """What a check found and where it wrote it.

    Attributes:
        verdict: what the status page reads (``checked_at``, ``model``, ``version``,
            ``drifted``, ``features_drifted``, ``report``).
        report: the whole report (every statistic, the actions taken).
        report_uri: ``report.json``; ``html_uri``: ``report.html``.
        mlflow_run_id: the check's MLflow run.
    """

    verdict: dict[str, Any]
    report: dict[str, Any]
    report_uri: str
    html_uri: str
    mlflow_run_id: str | None = None
    actions: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return bool(self.verdict["drifted"])

    @property
    def exit_code(self) -> int:
        """0 without drift, :data:`DRIFT_EXIT` (3) with drift."""
        return DRIFT_EXIT if self.drifted else 0


def parse_window(text: str) -> timedelta:
    """``30m``, ``24h`` or ``7d`` as a duration.

    Raises:
        BadInputError: another spelling.
    """
    match = _WINDOW.match(text.strip())
    if not match:
        raise BadInputError(f"--window {text!r}: expected a number and m, h or d (24h, 30m, 7d)")
    number, unit = int(match[1]), match[2]
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: number})


# --------------------------------------------------------------------------- windows


def _read_table(uri: str, data: bytes) -> Any:
    import pandas as pd

    try:
        if uri.lower().endswith((".parquet", ".pq")):
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - a foreign parser's failure: bad input, named once
        raise BadInputError(f"{uri}: cannot read it as "
                            f"{'Parquet' if uri.lower().endswith(('.parquet', '.pq')) else 'CSV'}"
                            f": {type(exc).__name__}: {exc}") from None


def read_file(location: str) -> Any:
    """A CSV or Parquet file (path or URI) as a DataFrame."""
    uri = to_uri(location)
    parent = uri.rpartition("/")[0]
    try:
        data = Store(parent).get_bytes(uri)
    except StoreError as exc:
        raise BadInputError(f"{location}: {exc}") from None
    return _read_table(uri, data)


def read_samples(root: str, model: str, window: timedelta, *,
                 now: datetime | None = None) -> tuple[Any, dict[str, Any]]:
    """The samples the server wrote for ``model`` in the last ``window``, and their source."""
    import pandas as pd

    now = now or datetime.now(UTC)
    since = now - window
    folder = layout.samples_uri(root, model)
    store = Store(root)
    first = since.replace(minute=0, second=0, microsecond=0)
    frames, files = [], 0
    for date in store.list(folder):
        if not date.startswith("date="):
            continue
        for hour in store.list(f"{folder}/{date}"):
            try:
                start = datetime.strptime(f"{date[5:]} {hour[5:]}", "%Y-%m-%d %H").replace(
                    tzinfo=UTC)
            except ValueError:
                continue
            if not first <= start <= now:
                continue
            for name in store.list(f"{folder}/{date}/{hour}"):
                if name.endswith(".parquet") and not name.startswith("."):
                    uri = f"{folder}/{date}/{hour}/{name}"
                    frames.append(_read_table(uri, store.get_bytes(uri)))
                    files += 1
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if layout.TIME in frame.columns and len(frame):
        stamps = pd.to_datetime(frame[layout.TIME], utc=True, errors="coerce")
        frame = frame[(stamps >= since) | stamps.isna()].reset_index(drop=True)
    return frame, {"samples": folder, "window": str(window), "since": since.isoformat(),
                   "files": files}


# --------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class _Settings:
    thresholds: Thresholds
    retrain: bool
    webhook_url_env: str
    airflow_url: str | None
    dag_id: str | None
    positive: Any
    target: str | None


def _settings(spec: Any, identity: Any, profile: Mapping[str, Any]) -> _Settings:
    section = getattr(spec, "monitor", None) if spec is not None else None
    from conveyor.spec.models import MonitorSpec

    section = section or MonitorSpec()
    dag_id = spec.name if spec is not None else (
        dict(identity.tags).get("conveyor.pipeline") or (
            identity.name if identity.kind == "folder" else None))
    return _Settings(
        thresholds=Thresholds.of(section), retrain=section.retrain,
        webhook_url_env=section.webhook_url_env, airflow_url=section.airflow_url,
        dag_id=dag_id,
        positive=spec.schema_.positive_label if spec is not None else None,
        target=spec.schema_.target if spec is not None else profile.get("target"))


def _labels(labels: str, id_column: str | None, window: Any, target: str | None,
            predictions: str) -> tuple[Any, Any]:
    """The window's predictions and the true labels, joined by ``id_column``."""
    if not id_column:
        raise BadInputError("--labels needs --id-column: the column joining labels to inputs")
    truth = read_file(labels)
    for frame, what in ((truth, labels), (window, "the window")):
        if id_column not in frame.columns:
            raise BadInputError(f"{what}: no id column {id_column!r} (columns: "
                                f"{', '.join(map(str, list(frame.columns)[:12]))})")
    others = [c for c in truth.columns if c != id_column]
    column = target if target in others else (others[0] if len(others) == 1 else None)
    if column is None:
        raise BadInputError(f"{labels}: which column is the label? expected {target!r} or one "
                            "column besides the id")
    joined = window[[id_column, predictions]].astype({id_column: str}).merge(
        truth[[id_column, column]].astype({id_column: str}), on=id_column, how="inner")
    return joined[predictions], joined[column]


def _predict(model: Any, frame: Any, location: str) -> Any:
    missing = [name for name in model.feature_names if name not in frame.columns]
    if missing:
        raise BadInputError(f"{location}: no column(s) {', '.join(missing[:8])} that the model "
                            "needs (add a _prediction column to compare inputs only)")
    try:
        prediction = model.predict(frame)
    except Exception as exc:  # noqa: BLE001 - any scoring failure is the input's
        raise BadInputError(f"{location}: the model cannot score it: "
                            f"{type(exc).__name__}: {exc}") from None
    frame = frame.copy()
    frame[layout.PREDICTION] = prediction.labels
    return frame


def _metrics(stats: Mapping[str, Any], live: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {"rows": float(stats["rows"]),
                             "features_drifted": float(len(stats["features_drifted"])),
                             "drifted": float(stats["drifted"])}
    for name, result in stats["features"].items():
        key = _METRIC_NAME.sub("_", str(name))[:200]
        for stat in ("psi", "ks_pvalue", "missing_share", "out_of_range_share"):
            if result.get(stat) is not None:
                out[f"{stat}.{key}"] = float(result[stat])
    if stats["prediction"].get("psi") is not None:
        out["prediction_psi"] = float(stats["prediction"]["psi"])
    return {**out, **live}


def _alert_text(report: Mapping[str, Any]) -> str:
    drifted = report["features_drifted"]
    shown = ", ".join(drifted[:8]) + (f" and {len(drifted) - 8} more" if len(drifted) > 8 else "")
    pred = "; predictions drifted" if report["prediction"]["drifted"] else ""
    return (f":warning: Conveyor monitor: drift in model `{report['model']}` version "
            f"{report.get('version')}: {shown or 'no single feature'}{pred} "
            f"({report['rows']} rows). Report: {report['report']}")


def check(model_uri: str, *, window: str | None = None, input: str | None = None,
          labels: str | None = None, id_column: str | None = None, spec: Any = None,
          store: str | None = None, tracking_uri: str | None = None,
          trigger: Trigger | None = None, now: datetime | None = None) -> MonitorResult:
    """Run one check (see the module's docstring).

    Args:
        model_uri: the model (``models:/name@alias``, an export or model folder).
        window: how far back to read the server's samples (``24h``); default the spec's
            ``monitor.window``, else 24h. Ignored with ``input``.
        input: a batch file (CSV or Parquet) instead of the samples; scored by the model when
            it has no ``_prediction`` column.
        labels: a file of true labels, joined to the window by ``id_column``.
        spec: the pipeline's loaded spec (thresholds, store, tracking, training DAG).
        store: the Store's root URI (default: the spec's, else the embedded one).
        tracking_uri: MLflow (default: the spec's, else the embedded one).
        trigger: how to start the training DAG (default: Airflow's REST API).

    Raises:
        BadInputError: a bad URI, file, window or labels file; a model with no profile.
    """
    from conveyor.serving.model import load, resolve
    from conveyor.tracking import Tracker

    loaded_spec = getattr(spec, "spec", spec)
    base_dir = getattr(spec, "base_dir", None)
    tracking_uri = tracking_uri or (loaded_spec.tracking.uri if loaded_spec else None)
    root = to_uri(store) if store else store_root(
        loaded_spec.store.root if loaded_spec else None,
        Path(base_dir) if base_dir else None)
    identity = resolve(model_uri, tracking_uri=tracking_uri)
    model = load(identity, tracking_uri=tracking_uri)  # files verified before anything loads
    profile = read_profile(model.folder)
    if profile is None:
        raise BadInputError(f"{model_uri}: the model has no reference profile ({PROFILE_FILE}):"
                            " it was trained before monitoring existed; train it again")
    settings = _settings(loaded_spec, identity, profile)
    name = identity.name

    if input is not None:
        frame = read_file(input)
        source: dict[str, Any] = {"input": to_uri(input)}
        if layout.PREDICTION not in frame.columns:
            frame = _predict(model, frame, input)
    else:
        span = parse_window(window or (loaded_spec.monitor.window if loaded_spec else "24h"))
        frame, source = read_samples(root, name, span, now=now)

    # Inputs drift whichever version answered; predictions are judged only for the version
    # whose profile this is (after an alias move the window holds both).
    predictions = None
    if identity.version and layout.VERSION in frame.columns and \
            layout.PREDICTION in frame.columns:
        versions = frame[layout.VERSION].astype(str)
        source["versions"] = {str(k): int(v) for k, v in versions.value_counts().items()}
        predictions = frame.loc[versions == str(identity.version), layout.PREDICTION]
    stats = compare(profile, frame, settings.thresholds, prediction_column=layout.PREDICTION,
                    predictions=predictions)
    live: dict[str, float] = {}
    if labels is not None:
        if layout.PREDICTION not in frame.columns:
            raise BadInputError("the window has no _prediction column to compare labels with")
        predicted, actual = _labels(labels, id_column, frame, settings.target,
                                    layout.PREDICTION)
        numeric = (profile.get("prediction") or {}).get("kind") == "numeric"  # a regressor
        live = live_metrics(predicted, actual, positive=settings.positive,
                            regression=numeric)
        source["labels"] = {"uri": to_uri(labels), "joined_rows": len(actual)}

    check_id = new_id(now)
    folder = f"{layout.monitoring_uri(root, name)}/{check_id}"
    report_uri, html_uri = f"{folder}/report.json", f"{folder}/report.html"
    report: dict[str, Any] = {
        "check_id": check_id, "checked_at": now_iso(), "model": name,
        "version": identity.version, "model_uri": model_uri, "model_sha256": identity.sha256,
        "model_run_id": identity.run_id, "source": source,
        "thresholds": settings.thresholds.to_dict(), **stats, "live_metrics": live,
        "report": html_uri, "actions": {},
    }

    tracker = Tracker(tracking_uri, f"{name}-monitoring")
    mlflow_run = tracker.attach(check_id, tags={
        "conveyor.monitor.model": name, "conveyor.monitor.version": str(identity.version),
        "conveyor.monitor.drifted": str(stats["drifted"]).lower()})
    report["mlflow_run_id"] = mlflow_run

    if stats["drifted"]:
        report["actions"] = _act(report, settings, trigger)

    out = Store(root)
    html = render_html(report)
    out.put_json(report_uri, report)
    out.put_bytes(html_uri, html.encode())
    verdict = {"checked_at": report["checked_at"], "model": name,
               "version": identity.version, "drifted": stats["drifted"],
               "features_drifted": stats["features_drifted"], "report": html_uri,
               "report_json": report_uri, "rows": stats["rows"]}
    out.put_json(layout.latest_verdict_uri(root, name), verdict)

    tracker.log_metrics(_metrics(stats, live))
    tracker.set_tags({"conveyor.monitor.report": report_uri,
                      "conveyor.monitor.features_drifted": ",".join(
                          stats["features_drifted"])[:4000]})
    tracker.log_bytes(html.encode(), "monitoring/report.html")
    tracker.log_text(out.get_bytes(report_uri).decode(), "monitoring/report.json")
    tracker.end()
    log.info("monitor %s: %s (%s)", name, "drift" if stats["drifted"] else "no drift", html_uri)
    return MonitorResult(verdict=verdict, report=report, report_uri=report_uri,
                         html_uri=html_uri, mlflow_run_id=mlflow_run,
                         actions=report["actions"])


def _act(report: Mapping[str, Any], settings: _Settings,
         trigger: Trigger | None) -> dict[str, Any]:
    """On drift: the retrain (triggered, or recorded as what would be) and the alert."""
    actions: dict[str, Any] = {}
    conf = {"reason": "drift", "check_id": report["check_id"], "model": report["model"],
            "version": report["version"], "features_drifted": report["features_drifted"]}
    if not settings.retrain:
        actions["retrain"] = {"triggered": False, "reason": "monitor.retrain is false"}
    elif not settings.dag_id:
        actions["retrain"] = {"triggered": False,
                              "reason": "the training DAG is unknown: pass --spec"}
    elif not settings.airflow_url:
        actions["retrain"] = {"triggered": False, "would_trigger": settings.dag_id,
                              "reason": "no monitor.airflow_url: recorded only"}
    else:
        actions["retrain"] = (trigger or trigger_dag)(settings.airflow_url, settings.dag_id,
                                                      conf)
    actions["alert"] = notify(_alert_text(report), url_env=settings.webhook_url_env)
    return actions
