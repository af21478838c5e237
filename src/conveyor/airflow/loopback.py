"""Keep the embedded Airflow's log servers on 127.0.0.1.

Airflow 3.3's scheduler (with the LocalExecutor) and triggerer each fork a log server
(``airflow serve-logs``), and ``airflow/utils/serve_logs/core.py`` hard-codes its address:
``uvicorn.run(..., host="")``, every interface, IPv4 and IPv6; no setting changes it. For
a local, login-free Airflow that is a port anyone on the network can read task logs from.

:func:`bind_log_servers` installs an import hook: when (and only if) a process imports
that module, the module's ``uvicorn`` is replaced by a shim whose ``run`` binds the given
host. Importing the module eagerly instead would cost every Airflow process (task
processes included) about 1.4 s. The embedded Airflow runs it from
``$AIRFLOW_HOME/config/airflow_local_settings.py``, which Airflow imports in every process
it starts (:data:`LOCAL_SETTINGS`, written by :func:`conveyor.airflow.cli.airflow_environment`).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import types
from collections.abc import Sequence
from typing import Any

__all__ = ["LOCAL_SETTINGS", "SERVE_LOGS_MODULE", "bind_log_servers"]

log = logging.getLogger(__name__)

SERVE_LOGS_MODULE = "airflow.utils.serve_logs.core"

#: ``airflow_local_settings.py`` of the embedded Airflow. ``__all__`` is empty: Airflow copies
#: every public name of that module into ``airflow.settings`` and takes functions with
#: policy names as cluster policies.
LOCAL_SETTINGS = '''"""Written by Conveyor (conveyor.airflow.cli.airflow_environment)."""

from conveyor.airflow.loopback import bind_log_servers

bind_log_servers("127.0.0.1")

__all__: list[str] = []
'''


class _Uvicorn(types.SimpleNamespace):
    """Stands in for the ``uvicorn`` module inside Airflow's serve-logs module."""


def _patch(module: types.ModuleType, host: str) -> None:
    real = getattr(module, "uvicorn", None)
    if real is None or not callable(getattr(real, "run", None)):
        log.warning("%s has no uvicorn.run any more; its log server's address is Airflow's "
                    "own (check conveyor.airflow.loopback against this Airflow)", module.__name__)
        return
    if isinstance(real, _Uvicorn):
        return

    def run(app: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["host"] = host
        log.info("Conveyor: the log server listens on %s:%s only", host, kwargs.get("port"))
        return real.run(app, *args, **kwargs)

    module.uvicorn = _Uvicorn(run=run)  # type: ignore[attr-defined]


class _Loader(importlib.abc.Loader):
    """Runs the real loader, then patches the module."""

    def __init__(self, real: importlib.abc.Loader, host: str) -> None:
        self.real = real
        self.host = host

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.real.exec_module(module)
        _patch(module, self.host)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds :data:`SERVE_LOGS_MODULE` through the other finders and wraps its loader."""

    def __init__(self, host: str) -> None:
        self.host = host

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != SERVE_LOGS_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader, self.host)
                return spec
        return None


def bind_log_servers(host: str = "127.0.0.1") -> None:
    """Make every Airflow log server this process starts listen on ``host`` only.

    Idempotent; patches the module at once when it is already imported.
    """
    module = sys.modules.get(SERVE_LOGS_MODULE)
    if module is not None:
        _patch(module, host)
        return
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder(host))
