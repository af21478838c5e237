"""Airflow 3's REST API on the embedded Airflow (``conveyor airflow standalone``).

The embedded Airflow uses the simple auth manager with every user an admin
(``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS``), so ``GET /auth/token`` hands out a
bearer token without credentials. Only for an Airflow on 127.0.0.1; a real deployment has
its own auth manager and its own client. Standard library only: importing this module
imports no Airflow code.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

__all__ = ["api_call"]


def api_call(base_url: str, method: str, path: str, body: object | None = None, *,
             timeout: float = 60) -> Any:
    """``method path`` (e.g. ``POST /api/v2/dags/{dag_id}/dagRuns``) with a fresh token;
    the decoded JSON answer. HTTP errors raise :class:`urllib.error.HTTPError`."""
    base = base_url.rstrip("/")
    with urllib.request.urlopen(f"{base}/auth/token", timeout=timeout) as answer:
        token = json.loads(answer.read())["access_token"]
    request = urllib.request.Request(
        f"{base}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())
