"""Read, check and fit one file's configs in a child process, under a per-file time limit.

A config file is user input, and so is the work it asks for: a YAML document the parser
chokes on, a merge-key bomb, or ``n_estimators: 50000000``. None of that may stop the other
files of a pass, or hold their claims. So everything that depends only on the file's bytes
(parsing, checking, fitting, scoring) runs in a child process, and the parent keeps what
talks to MLflow and the Store (logging, registering), which a killed child could leave half
done:

* the child is started once per pass (a plain ``python`` running :func:`main`, its own
  process group, a pipe pair for pickled requests) and serves the files one after another;
* each file gets a :class:`TimeBudget` of ``watch.file_time_limit_seconds``; the child's
  start-up (imports) is not charged to it. When the budget runs out the whole process group
  is killed (``SIGKILL``: an estimator's own worker processes die with it) and the file is
  rejected with :class:`TimeLimitError`; the next file gets a fresh child;
* any exception raised by the file's work comes back as a :class:`BadInputError` (a foreign
  one, such as a ``ValueError`` from the YAML parser, is wrapped in a
  :class:`~conveyor.lab.configs.ConfigError` naming the file), so the caller has only two
  outcomes to handle: bad input (reject the file) or a :class:`ConveyorRuntimeError` (the
  child could not start: retry later);
* the child dies with the thread that started it (``PR_SET_PDEATHSIG`` on Linux), so a
  killed watcher leaves no orphan fitting for hours.

Why not ``multiprocessing``: its ``spawn`` and ``forkserver`` children import the parent's
``__main__`` again, and ``fork`` copies a process that holds MLflow's threads and perhaps
an initialised OpenMP runtime (a known hang in the child). A plain ``python`` child imports
only what it needs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from conveyor.errors import BadInputError, ConveyorError, ConveyorRuntimeError

if TYPE_CHECKING:
    from conveyor.lab.configs import ClassifierConfig
    from conveyor.spec.models import PreprocessSpec

__all__ = ["FitError", "FitWorker", "Fitted", "TimeBudget", "TimeLimitError", "fit_config",
           "read_configs"]

log = logging.getLogger(__name__)

#: Seconds the child may take to start and import scikit-learn and pandas. Not charged to
#: a file; a child that cannot start is an environment fault (retryable), not bad input.
STARTUP_TIMEOUT = 120.0
#: Longest message kept from a foreign exception (a parser may quote the whole document).
_MAX_MESSAGE = 500


class FitError(BadInputError):
    """A config passed every check but its estimator failed to fit (retrying cannot help)."""


class TimeLimitError(BadInputError):
    """A file's configs took longer than ``watch.file_time_limit_seconds`` to read and fit."""


@dataclass(frozen=True)
class Fitted:
    """A fitted model with its metrics and the warnings its fit raised."""

    model: Any
    metrics: dict[str, float]
    notes: list[str] = field(default_factory=list)


@dataclass
class TimeBudget:
    """The seconds one file may spend in the child (reading, checking and fitting).

    Attributes:
        file: the config file's name (for the error).
        seconds: the limit (``watch.file_time_limit_seconds``).
        used: seconds spent so far.
    """

    file: str
    seconds: float
    used: float = 0.0

    @property
    def remaining(self) -> float:
        return max(self.seconds - self.used, 0.0)


# --------------------------------------------------------------------------- the work itself


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."


def read_configs(data: bytes, filename: str) -> list[ClassifierConfig]:
    """Parse and check one file's configs; every failure is a ``ConfigError`` naming the file.

    A parser can fail in ways it did not plan for (``datetime`` refusing ``2024-02-30``,
    ``int`` refusing 5,000 digits, deep recursion): those are still this file's fault.
    """
    from conveyor.lab.configs import ConfigError, parse_config_bytes

    try:
        return parse_config_bytes(data, filename)
    except ConveyorError:
        raise
    except Exception as exc:  # noqa: BLE001 - the parser failed on this file's bytes
        raise ConfigError(f"cannot read this config: {type(exc).__name__}: {_short(exc)}",
                          file=filename) from None


def fit_config(config: ClassifierConfig, split: Any, preprocess: PreprocessSpec) -> Fitted:
    """Fit one config on the split's training rows and score it on both parts.

    The same code as a pipeline's ``train`` and ``evaluate`` steps:
    :func:`~conveyor.modeling.training.fit_model` fits, and
    :func:`~conveyor.modeling.evaluation.score_model` scores ``LAB_METRICS`` on the train and
    test rows, macro-averaged (a lab has no positive label: like a pipeline spec without
    ``schema.positive_label``).

    Raises:
        FitError: the estimator failed to fit, or the fitted model failed to predict.
    """
    from conveyor.features import build_model_pipeline
    from conveyor.lab.spec import LAB_METRICS
    from conveyor.modeling.evaluation import score_model, scoring_positive
    from conveyor.modeling.training import fit_model

    estimator = config.build()
    name = type(estimator).__name__
    pipeline = build_model_pipeline(split.features, preprocess, estimator)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model, _ = fit_model(pipeline, split.X_train, split.y_train, seed=split.seed,
                                 what=name)
        except Exception as exc:  # any failure of the user-chosen estimator code
            # fit_model's DataError says "fitting <name> failed: <why>": keep the lab's wording
            why = _short(exc).removeprefix(f"fitting {name} failed: ")
            raise FitError(f"{config.source}: config {config.name!r}: "
                           f"{name} failed to fit: {why}") from exc
    notes = sorted({f"{w.category.__name__}: {str(w.message)[:200]}" for w in caught})
    try:
        metrics = score_model(model, (split.X_train, split.y_train),
                              (split.X_test, split.y_test), metrics=list(LAB_METRICS),
                              positive=scoring_positive(None, split.y_train))
    except Exception as exc:  # predict() of the user-chosen estimator
        raise FitError(f"{config.source}: config {config.name!r}: {name} fitted but could "
                       f"not be scored: {_short(exc)}") from exc
    return Fitted(model=model, metrics=metrics, notes=notes)


# --------------------------------------------------------------------------- the parent's side


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


class FitWorker:
    """The child process that reads and fits configs for one pass (see the module's doc).

    Use it as a context manager, or call :meth:`close`. Requests are served one at a time;
    the object is for the thread that created it.

    Args:
        time_limit: seconds each file may spend reading, checking and fitting.
        startup_timeout: seconds the child may take to start (not charged to a file).
    """

    def __init__(self, *, time_limit: float, startup_timeout: float = STARTUP_TIMEOUT) -> None:
        self.time_limit = time_limit
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: Connection | None = None
        self._replies: Connection | None = None
        self._ready = False
        self._busy = False  # a request is in flight (its reply not read yet)
        self._started = 0.0
        self._split_key: str | None = None
        self.budget = TimeBudget("", time_limit)

    def __repr__(self) -> str:
        return f"FitWorker(time_limit={self.time_limit:g}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        """The child's process id (it leads its own process group), if one is running."""
        return self._process.pid if self._process is not None else None

    def __enter__(self) -> FitWorker:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the child now (it imports while the caller does other work); idempotent."""
        if self._process is not None and self._process.poll() is None:
            return
        self._discard()
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_package_root(),
                                                        env.get("PYTHONPATH")) if p)
        try:
            self._process = subprocess.Popen(
                # -P: nothing from the working folder shadows a module; -c rather than -m
                # so that pickled classes are named conveyor.lab.worker.*, not __main__.*
                [sys.executable, "-P", "-c", "from conveyor.lab.worker import main; main()",
                 str(request_read), str(reply_write)],
                pass_fds=(request_read, reply_write), stdin=subprocess.DEVNULL,
                start_new_session=True,  # a group of its own: killed whole on a time-out
                env=env,
            )
        except OSError as exc:
            for fd in (request_read, request_write, reply_read, reply_write):
                os.close(fd)
            raise ConveyorRuntimeError(f"cannot start the lab's training process: {exc}") \
                from exc
        os.close(request_read)
        os.close(reply_write)
        self._requests = Connection(request_write, readable=False)
        self._replies = Connection(reply_read, writable=False)
        self._ready = False
        self._split_key = None
        self._started = time.monotonic()
        log.debug("started the lab's training process %d", self._process.pid)

    def close(self) -> None:
        """Ask the child to stop; kill its process group if it does not within 5 s.

        A child still busy with a request (the caller was interrupted) is killed at once.
        """
        if self._process is not None and self._process.poll() is None and self._ready \
                and not self._busy:
            with contextlib.suppress(OSError, ValueError):
                assert self._requests is not None
                self._requests.send(("stop",))
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
        self._discard()

    def _discard(self) -> None:
        """Kill the child's whole process group (if any is left) and forget it."""
        process, self._process = self._process, None
        for conn in (self._requests, self._replies):
            if conn is not None:
                conn.close()
        self._requests = self._replies = None
        self._ready = self._busy = False
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)

    def _wait_ready(self) -> None:
        if self._process is None or self._process.poll() is not None:
            self.start()
        if self._ready:
            return
        assert self._replies is not None and self._process is not None
        left = self.startup_timeout - (time.monotonic() - self._started)
        try:
            reply = self._replies.recv() if self._replies.poll(max(left, 0.0)) else None
        except (EOFError, OSError):
            reply = None
        if reply != ("ready",):
            code = self._process.poll()
            self._discard()
            why = (f"it exited with code {code}" if code is not None
                   else f"it was not ready within {self.startup_timeout:g} s")
            raise ConveyorRuntimeError(f"the lab's training process did not start: {why} "
                                       "(see its errors above in the log)")
        self._ready = True

    # ------------------------------------------------------------------ requests
    def start_file(self, name: str) -> TimeBudget:
        """Begin a new file: a fresh budget of ``time_limit`` seconds, charged by requests."""
        self.budget = TimeBudget(name, self.time_limit)
        return self.budget

    def read(self, data: bytes, filename: str) -> list[ClassifierConfig]:
        """:func:`read_configs` in the child, charged to the current file's budget."""
        return self._call(("read", data, filename), "reading the file")  # type: ignore[no-any-return]

    def fit(self, config: ClassifierConfig, split: Any, preprocess: PreprocessSpec) -> Fitted:
        """:func:`fit_config` in the child, charged to the current file's budget."""
        self._wait_ready()
        if self._split_key != split.key:
            # the data once per child, not per file; not charged to the file
            self._request(("split", split), self.startup_timeout, "loading the data set")
            self._split_key = split.key
        return self._call(  # type: ignore[no-any-return]
            ("fit", config, preprocess),
            f"fitting config {config.name!r} ({config.estimator.rsplit('.', 1)[-1]})")

    def _call(self, request: tuple[Any, ...], doing: str) -> Any:
        budget = self.budget
        self._wait_ready()
        started = time.monotonic()
        try:
            return self._request(request, budget.remaining, doing)
        except _OutOfTime:
            budget.used = budget.seconds
            raise TimeLimitError(
                f"{budget.file}: took longer than {budget.seconds:g} s "
                f"(watch.file_time_limit_seconds) to read, check and fit its configs; stopped "
                f"while {doing}. Make the configs lighter (fewer estimators or iterations) "
                "or raise the limit in the lab spec, then drop the file again") from None
        finally:
            budget.used = min(budget.used + time.monotonic() - started, budget.seconds)

    def _request(self, request: tuple[Any, ...], timeout: float, doing: str) -> Any:
        assert self._requests is not None and self._replies is not None
        assert self._process is not None
        process = self._process
        self._busy = True
        try:
            self._requests.send(request)
            if not self._replies.poll(timeout):
                log.warning("the lab's training process %d ran out of time while %s; "
                            "killing it", process.pid, doing)
                self._discard()
                raise _OutOfTime
            reply = self._replies.recv()
        except (EOFError, OSError):
            self._discard()  # reaps it: the return code says how it ended
            code = process.returncode
            how = (f"killed by signal {-code}" if code is not None and code < 0
                   else f"exit code {code}")
            hint = " (out of memory?)" if code == -signal.SIGKILL else ""
            raise FitError(f"{self.budget.file}: the training process died while {doing} "
                           f"({how}{hint})") from None
        self._busy = False
        if reply[0] == "ok":
            return reply[1]
        kind, args, state = reply[1:]
        if not (isinstance(kind, type) and issubclass(kind, BadInputError)):
            raise BadInputError(f"{self.budget.file}: {args!r}")
        error = kind.__new__(kind, *args)
        error.__dict__.update(state)
        raise error


class _OutOfTime(Exception):
    """The child did not answer within the budget (internal; becomes TimeLimitError)."""


# --------------------------------------------------------------------------- the child's side


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the thread that started it ends."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent was already gone before prctl
            os._exit(1)


def _serve(requests: Connection, replies: Connection) -> None:
    split: Any = None
    while True:
        try:
            request = requests.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        kind = request[0]
        try:
            if kind == "stop":
                return
            if kind == "split":
                split = request[1]
                result: Any = None
            elif kind == "read":
                result = read_configs(request[1], request[2])
            elif kind == "fit":
                result = fit_config(request[1], split, request[2])
            else:
                raise BadInputError(f"unknown request {kind!r}")
        except BadInputError as exc:
            replies.send(("error", type(exc), exc.args, dict(vars(exc))))
            continue
        except Exception as exc:  # noqa: BLE001 - work on the file's bytes: its fault
            error = BadInputError(f"{type(exc).__name__}: {_short(exc)}")
            replies.send(("error", BadInputError, error.args, {}))
            continue
        try:
            replies.send(("ok", result))
        except Exception as exc:  # noqa: BLE001 - pickling failed before any byte was sent
            error = FitError(f"the fitted model cannot be sent back: {_short(exc)}")
            replies.send(("error", FitError, error.args, {}))


def main(argv: list[str] | None = None) -> None:
    """The child's entry point (``python -c "...main()" READ_FD WRITE_FD``)."""
    _die_with_parent()
    read_fd, write_fd = (int(a) for a in (argv or sys.argv[1:]))
    requests = Connection(read_fd, writable=False)
    replies = Connection(write_fd, readable=False)
    # import what every file needs before saying ready: not charged to the first file
    import pandas  # noqa: F401
    import sklearn.pipeline  # noqa: F401

    import conveyor.features
    import conveyor.lab.configs
    import conveyor.modeling.evaluation
    import conveyor.modeling.training  # noqa: F401

    replies.send(("ready",))
    _serve(requests, replies)
