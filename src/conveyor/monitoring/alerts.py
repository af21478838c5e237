"""What a check does about drift: a webhook alert and a retraining DAG run.

Standard library HTTP only, bounded: a timeout on every call and one retry on a connection
failure or a 5xx answer. The webhook's URL comes from an environment variable and is never
logged nor written anywhere (it usually carries a secret, as Slack's do); reports say only
which variable was used. Airflow is spoken to over its REST API (``GET /auth/token``, then
``POST /api/v2/dags/{dag_id}/dagRuns``), never imported (layers).
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

__all__ = ["AIRFLOW_TOKEN_ENV", "notify", "notify_gate_failure", "trigger_dag"]

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
RETRY_DELAY_SECONDS = 1.0
#: A bearer token for a production Airflow; without it, the embedded Airflow's
#: ``GET /auth/token`` (simple auth manager, every user an admin) hands one out.
AIRFLOW_TOKEN_ENV = "CONVEYOR_AIRFLOW_TOKEN"


def _send(request: urllib.request.Request, timeout: float) -> bytes:
    """One call, retried once on a connection failure or a 5xx answer."""
    for attempt in (1, 2):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.read()
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == 2:
                raise
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            if attempt == 2:
                raise
        time.sleep(RETRY_DELAY_SECONDS)
    raise AssertionError("unreachable")  # pragma: no cover


def notify(text: str, *, url_env: str, timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    """Post ``{"text": text}`` (Slack-compatible) to the URL in environment variable ``url_env``.

    Never raises: an alert that cannot be sent is reported (and logged without the URL).

    Returns:
        ``{"sent": bool, "env": url_env, "error"?: str}``.
    """
    url = os.environ.get(url_env, "").strip()
    if not url:
        return {"sent": False, "env": url_env, "error": f"{url_env} is not set"}
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return {"sent": False, "env": url_env, "error": f"{url_env} is not an http(s) URL"}
    request = urllib.request.Request(
        url, data=json.dumps({"text": text}).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    try:
        _send(request, timeout)
    except urllib.error.HTTPError as exc:
        log.warning("webhook from %s answered HTTP %s", url_env, exc.code)
        return {"sent": False, "env": url_env, "error": f"HTTP {exc.code}"}
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = type(getattr(exc, "reason", exc)).__name__
        log.warning("webhook from %s could not be reached (%s)", url_env, reason)
        return {"sent": False, "env": url_env, "error": f"unreachable ({reason})"}
    return {"sent": True, "env": url_env}


def trigger_dag(airflow_url: str, dag_id: str, conf: Mapping[str, Any], *,
                timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    """Start a run of ``dag_id`` through Airflow's REST API; never raises.

    The run's id is fixed by the check (``conveyor_monitor__<check_id>`` when ``conf`` has a
    ``check_id``), so the one retry after a 5xx cannot start a second run: if the first POST
    did create it, the retry is answered 409 and the run is reported as triggered.

    Returns:
        ``{"triggered": bool, "dag_id", "airflow_url", "dag_run_id"?, "error"?}``.
    """
    base = airflow_url.rstrip("/")
    out: dict[str, Any] = {"triggered": False, "dag_id": dag_id, "airflow_url": base}
    run_id = f"conveyor_monitor__{conf['check_id']}" if conf.get("check_id") else None
    body: dict[str, Any] = {"logical_date": None, "conf": dict(conf)}
    if run_id:
        body["dag_run_id"] = run_id
    try:
        token = os.environ.get(AIRFLOW_TOKEN_ENV, "").strip()
        if not token:
            answer = _send(urllib.request.Request(f"{base}/auth/token"), timeout)
            token = json.loads(answer)["access_token"]
        request = urllib.request.Request(
            f"{base}/api/v2/dags/{urllib.parse.quote(dag_id, safe='')}/dagRuns",
            method="POST", data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        run = json.loads(_send(request, timeout))
    except urllib.error.HTTPError as exc:
        if exc.code == 409 and run_id:  # this check's run exists: an earlier attempt made it
            out.update(triggered=True, dag_run_id=run_id, existed=True)
            return out
        out["error"] = f"HTTP {exc.code} from {base}"
        return out
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, ValueError,
            KeyError) as exc:
        out["error"] = f"{base} failed: {type(exc).__name__}"
        return out
    out.update(triggered=True, dag_run_id=run.get("dag_run_id", run_id))
    return out


def notify_gate_failure(spec: Any, reason: str, run_id: str) -> dict[str, Any] | None:
    """Alert that the gate rejected a model, when the spec's webhook variable is set."""
    url_env = spec.monitor.webhook_url_env
    if not os.environ.get(url_env):
        return None
    return notify(f":x: Conveyor pipeline `{spec.name}`: the gate rejected the model "
                  f"(run {run_id}): {reason}", url_env=url_env)
