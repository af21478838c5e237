"""Running the app: uvicorn (httptools + uvloop), one process or N workers.

With one worker the app runs in this process. With ``workers > 1`` uvicorn's supervisor starts
fresh worker processes that build the app from :data:`~conveyor.serving.app.CONFIG_ENV`, and
Prometheus' multi-process mode keeps the counters in a temporary folder all workers share
(removed on exit), so ``/metrics`` from any worker counts every worker's requests.

SIGTERM (and Ctrl-C) is uvicorn's graceful shutdown: stop accepting, let in-flight requests
finish (up to ``drain_seconds``), then shut the app down (sampler flushed) and exit 0.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
from typing import Any

from conveyor.processes import restore_environ
from conveyor.serving.app import CONFIG_ENV, App, ServerConfig

__all__ = ["check", "run"]

log = logging.getLogger(__name__)

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def check(config: ServerConfig) -> Any:
    """What the server would serve, checked before the port is bound.

    Raises:
        BadInputError: the URI is malformed or names no model, or the token variable is unset.
        ModelRefusedError: the model cannot be verified.
    """
    from conveyor.errors import BadInputError
    from conveyor.serving.model import resolve

    if config.token_env and not os.environ.get(config.token_env):
        raise BadInputError(f"--token-env {config.token_env}: that environment variable is "
                            "empty or not set")
    for name, value, low in (("--max-rows", config.max_rows, 1),
                             ("--max-body-bytes", config.max_body_bytes, 64),
                             ("--poll-seconds", config.poll_seconds, 0.1)):
        if value < low:
            raise BadInputError(f"{name} must be at least {low}, got {value}")
    if not 0 <= config.sample_rate <= 1:
        raise BadInputError(f"--sample-rate must be between 0 and 1, got {config.sample_rate}")
    return resolve(config.model_uri, tracking_uri=config.tracking_uri)


def _server_class() -> Any:
    import uvicorn

    class Drained(uvicorn.Server):
        """uvicorn's server, minus re-raising SIGTERM once drained: a clean stop exits 0."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM:
                self._captured_signals.remove(sig)

    return Drained


def run(config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8080, workers: int = 1,
        drain_seconds: float = 30.0, log_level: str = "info") -> int:
    """Serve until SIGTERM or Ctrl-C; return the exit code (0 after a clean drain)."""
    import uvicorn

    options: dict[str, Any] = {
        "host": host, "port": port, "loop": "uvloop", "http": "httptools",
        "lifespan": "on", "access_log": False, "log_level": log_level,
        "timeout_graceful_shutdown": drain_seconds, "server_header": False,
    }
    if workers <= 1:
        server = _server_class()(uvicorn.Config(App(config), **options))
        server.run()
        return 0 if server.started else 1
    folder = tempfile.mkdtemp(prefix="conveyor-metrics-")
    saved = {name: os.environ.get(name) for name in (_MULTIPROC_ENV, CONFIG_ENV)}
    # the workers are fresh interpreters: they read both from the environment they inherit
    os.environ[_MULTIPROC_ENV] = folder
    os.environ[CONFIG_ENV] = config.to_json()
    try:
        uvicorn.run("conveyor.serving.app:app_from_env", factory=True, workers=workers,
                    **options)
        return 0
    finally:
        restore_environ(saved)
        shutil.rmtree(folder, ignore_errors=True)
