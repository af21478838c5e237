"""What one ``airflow dags test`` run did, read from its output and its metadata DB.

``airflow dags test`` runs every task in its own process and prints all their logs, Airflow's
own records between them, on one stream; it writes no task log files. This module cuts that
stream into one log per task (between Airflow's ``[DAG TEST] starting task_id=…`` and ``[DAG
TEST] end task task_id=…`` markers), finds each failed task's error in it (the Conveyor
error the task raised, else the last exception of its traceback) and maps the error to the
exit code the local CLI would give: 3 for a gate rejection, 2 for bad input, 1 otherwise.

Nothing here imports Airflow: it runs in the ``conveyor`` process.
"""

from __future__ import annotations

import importlib
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DagTestResult",
    "TaskError",
    "TaskRow",
    "exit_code_of",
    "last_run_key",
    "read_result",
    "split_task_logs",
    "task_error",
    "write_logs",
]

_START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\S+) map_index=(?P<map>-?\d+)")
_END = re.compile(r"\[DAG TEST\] end task task_id=(?P<task>\S+) map_index=(?P<map>-?\d+)")
#: A log record starts with an ISO timestamp; traceback lines and message continuations don't.
_RECORD = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")
_FAILED = "Task failed with exception"
#: ``module.Class: message`` (or ``Class`` alone), as the last line of a Python traceback.
_EXCEPTION = re.compile(r"^(?P<cls>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?::\s?(?P<msg>.*))?$")
_EXCEPTION_SUFFIXES = ("Error", "Exception", "Exit", "Interrupt", "Timeout", "Failure")
#: Failing without retries is what Airflow does with bad input (see the operators).
_NO_RETRY = "AirflowFailException"


@dataclass(frozen=True)
class TaskError:
    """The error a failed task raised: its class (dotted) and message, and the exit code."""

    task: str
    error: str
    message: str
    exit_code: int

    @property
    def rejected(self) -> bool:
        """Whether the task failed because the gate rejected the model."""
        return self.exit_code == 3

    def line(self) -> str:
        """One line for the terminal: the Conveyor message as the local CLI prints it."""
        if self.rejected:
            return self.message
        if self.error.startswith("conveyor.") or self.error.endswith(_NO_RETRY):
            return f"{self.task} failed: {self.message}"
        return f"{self.task} failed: {self.error.rsplit('.', 1)[-1]}: {self.message}"


@dataclass(frozen=True)
class TaskRow:
    """One task instance of the run, from the metadata DB."""

    task: str
    state: str | None
    tries: int
    seconds: float


@dataclass
class DagTestResult:
    """One ``airflow dags test`` run: its DAG run, task rows, per-task logs and errors."""

    dag_id: str
    run_id: str | None
    state: str | None
    tasks: list[TaskRow] = field(default_factory=list)
    logs: dict[str, list[str]] = field(default_factory=dict)
    errors: list[TaskError] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether the DAG run or any of its tasks failed."""
        return self.state == "failed" or any(
            row.state in ("failed", "upstream_failed") for row in self.tasks)

    def exit_code(self, returncode: int) -> int:
        """The CLI's exit code: 0, or the first failed task's (3, 2 or 1)."""
        if returncode == 0 and not self.failed and self.run_id is not None:
            return 0
        return self.errors[0].exit_code if self.errors else 1


def split_task_logs(output: str) -> dict[str, list[str]]:
    """One log per task (``train[2]`` for a mapped task), in the order the tasks started.

    Every attempt of a task (retries, sensor reschedules) is appended to the same log.
    """
    logs: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        start = _START.search(line)
        if start:
            current = logs.setdefault(_task_key(start["task"], start["map"]), [])
        if current is not None:
            current.append(line)
        if _END.search(line):
            current = None
    return logs


def _task_key(task: str, map_index: str) -> str:
    return task if int(map_index) < 0 else f"{task}[{map_index}]"


def exit_code_of(error: str) -> int:
    """The exit code the local CLI gives for an exception class named ``error`` (dotted).

    A Conveyor error gives its own ``exit_code`` (3 rejected, 2 bad input, 1 other);
    ``AirflowFailException`` without a Conveyor cause is a failure Airflow does not retry,
    bad input (2); anything else 1.
    """
    if error.startswith("conveyor."):
        module, _, name = error.rpartition(".")
        try:
            found: Any = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            found = None
        from conveyor.errors import ConveyorError

        if isinstance(found, type) and issubclass(found, ConveyorError):
            return int(found.exit_code)
    return 2 if error.rsplit(".", 1)[-1] == _NO_RETRY else 1


def task_error(task: str, lines: list[str]) -> TaskError | None:
    """The error of the last failed attempt in a task's log, or ``None``.

    The traceback after Airflow's "Task failed with exception" record ends in the exception
    the task raised; when that one was raised from a Conveyor error (``raise
    AirflowFailException(...) from exc``), the Conveyor error is the one shown.
    """
    starts = [i for i, line in enumerate(lines) if _FAILED in line]
    if not starts:
        return None
    found: list[tuple[str, str]] = []
    for line in lines[starts[-1] + 1:]:
        if _RECORD.match(line):
            break
        match = _EXCEPTION.match(line)
        if match and match["cls"].rsplit(".", 1)[-1].endswith(_EXCEPTION_SUFFIXES):
            found.append((match["cls"], (match["msg"] or "").strip()))
    if not found:
        return TaskError(task, "unknown", "see the task's log", 1)
    error, message = next(((c, m) for c, m in found if c.startswith("conveyor.")), found[-1])
    return TaskError(task, error, message, exit_code_of(error))


def last_run_key(db: Path, dag_id: str) -> int:
    """The row id of the DAG's newest run (0 if none): runs after it are new."""
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        row = connection.execute(
            "SELECT MAX(id) FROM dag_run WHERE dag_id = ?", (dag_id,)).fetchone()
    return int(row[0] or 0)


def read_result(db: Path, dag_id: str, after: int, output: str) -> DagTestResult:
    """The run ``airflow dags test`` made (the DAG's first run with a row id over ``after``).

    Runs of earlier commands are never read: a command that made no run has no rows.
    """
    result = DagTestResult(dag_id=dag_id, run_id=None, state=None)
    if db.exists():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            run = connection.execute(
                "SELECT run_id, state FROM dag_run WHERE dag_id = ? AND id > ? "
                "ORDER BY id LIMIT 1", (dag_id, after)).fetchone()
            if run is not None:
                result.run_id, result.state = run
                rows = connection.execute(
                    "SELECT task_id, map_index, state, try_number, duration FROM task_instance "
                    "WHERE dag_id = ? AND run_id = ? "
                    # Upstream first: the default weight rule gives a task the number of
                    # tasks downstream of it. (start_date is also set on upstream_failed.)
                    "ORDER BY priority_weight DESC, map_index, start_date, task_id",
                    (dag_id, result.run_id)).fetchall()
                result.tasks = [
                    TaskRow(_task_key(task, str(map_index)), state, int(tries or 0),
                            float(duration or 0.0))
                    for task, map_index, state, tries, duration in rows]
    result.logs = split_task_logs(output)
    failed = {row.task for row in result.tasks if row.state == "failed"}
    for task, lines in result.logs.items():
        error = task_error(task, lines)
        if error is not None and (task in failed or not result.tasks):
            result.errors.append(error)
    return result


def write_logs(folder: Path, output: str, logs: dict[str, list[str]]) -> Path:
    """Write the whole output and one log per task into ``folder``; return the whole log."""
    folder.mkdir(parents=True, exist_ok=True)
    whole = folder / "dags-test.log"
    whole.write_text(output)
    for task, lines in logs.items():
        (folder / f"{task}.log").write_text("\n".join(lines) + "\n")
    return whole
