"""``ConveyorStepOperator``: run one Conveyor step as an Airflow task.

The operator is thin on purpose: it turns the task context into a spec (with overrides from
the DAG run's params and conf) and a Conveyor run id, and hands the step to the core
executor. Heavy imports (the executor pulls in pandas, scikit-learn and MLflow) happen inside
:meth:`ConveyorStepOperator.execute`, never when a DAG file is parsed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from conveyor.airflow.run_ids import conveyor_run_id

if TYPE_CHECKING:
    from airflow.sdk import Context

    from conveyor.runners.executor import Run, StepRecord

__all__ = ["ConveyorStepOperator", "finish_if_halted", "mark_run_failed", "runtime_overrides"]

log = logging.getLogger(__name__)


def _encode(value: Any) -> str:
    # The spec loader reads override values as YAML and JSON is YAML: types survive, and a
    # string stays a string even when it looks like a number ("007") or a bool ("yes").
    return json.dumps(value)


def runtime_overrides(
    params: Mapping[str, Any],
    conf: Mapping[str, Any] | None,
    defaults: Mapping[str, Any],
) -> list[str]:
    """Spec overrides (``key.path=value``) asked for by one DAG run.

    A dotted key is a spec key path. A declared param counts only when its value differs from
    the spec's own (its default), so an untouched trigger form changes nothing; any dotted key
    in the run's ``conf`` counts, declared or not.

    Args:
        params: the task's resolved params (DAG params merged with the run's conf).
        conf: the DAG run's conf, if any.
        defaults: the declared params' defaults (the spec's values at parse time).

    Returns:
        Overrides sorted by key, for :func:`conveyor.spec.load_spec`.
    """
    chosen: dict[str, Any] = {}
    for key, value in params.items():
        if "." in key and (key not in defaults or defaults[key] != value):
            chosen[key] = value
    for key, value in (conf or {}).items():
        if "." in key:
            chosen[key] = value
    return [f"{key}={_encode(value)}" for key, value in sorted(chosen.items())]


def mark_run_failed(context: Context) -> None:
    """Failure callback: mark the DAG run's MLflow run ``FAILED`` once retries are spent.

    Without it a failed DAG run would leave its MLflow run ``RUNNING`` for ever. It never
    raises: a tracking outage must not hide the task's own error.
    """
    task = context.get("task")
    dag_run = context.get("dag_run")
    if not isinstance(task, ConveyorStepOperator) or dag_run is None:
        return
    error = context.get("exception") or RuntimeError("task failed")
    if _is_rejection(error):
        # The halting task already finished the run (``rejected``); "failed" would be a lie.
        return
    try:
        from conveyor.runners.executor import fail_run, open_run
        from conveyor.spec import load_spec

        loaded = load_spec(task.spec_path, task._overrides(context), profile=task.profile)
        run = open_run(loaded, run_id=conveyor_run_id(dag_run.dag_id, dag_run.run_id))
        fail_run(run, error)
    except Exception:
        log.warning("could not mark the Conveyor run of %s failed", dag_run.run_id, exc_info=True)


def _is_rejection(error: BaseException) -> bool:
    """Whether ``error`` (or an exception it was raised from) is a gate rejection."""
    from conveyor.errors import GateRejectedError

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, GateRejectedError):
            return True
        seen = seen.__cause__
    return False


def finish_if_halted(run: Run, done: StepRecord) -> None:
    """End the run at a step whose result says it must stop (the gate's rejection).

    The step declares it (:meth:`conveyor.steps.BaseStep.halt`). The steps after it
    (register, export after a rejection) still run here, and only record ``skipped`` with
    the reason, exactly as under the local runner; then the run is finished: the manifest
    says the status the steps declare (``rejected``) and the MLflow run is tagged so and
    ended ``FINISHED``. A result that does not halt (a passed gate, or
    ``registry.allow_unvalidated``) changes nothing here.

    Args:
        run: the DAG run's Conveyor run.
        done: the record of the step that just ran.

    Raises:
        GateRejectedError: the run was halted; the task fails on it, without retries, so the
            DAG run is red and nothing downstream runs (docs/decisions/0017).
    """
    from conveyor.errors import GateRejectedError
    from conveyor.runners.executor import execute_step, finish_run

    reason = run.steps[done.step].halt(done.info, run.loaded.spec)
    if reason is None:
        return
    names = list(run.steps)
    for name in names[names.index(done.step) + 1:]:
        execute_step(run, name)
    ref, manifest = finish_run(run)
    raise GateRejectedError(
        f"{reason}; run {run.run_id} finished as {manifest['status']} (manifest {ref.uri})")


class ConveyorStepOperator(BaseOperator):
    """Run one step of a Conveyor pipeline spec as an Airflow task.

    Every task of a DAG run derives the same Conveyor run id from the DAG run, so all of them
    share one run folder in the Store and one MLflow run; the task that finishes the run
    writes the manifest and ends the MLflow run. The XCom value is the step record: artifact
    URIs, hashes and a few numbers, never data.

    Bad input (an invalid spec or data) fails the task at once without retries; any other
    failure is left to Airflow's retries. A step whose result halts the run (a gate that
    rejects the model) finishes the run as ``rejected`` and then fails its task, also
    without retries, so that the DAG run is red and the steps after it never start
    (docs/decisions/0017).

    Args:
        spec_path: the pipeline spec (YAML) on the worker's filesystem.
        step: the step to run; ``None`` with ``finish=True`` only finishes the run.
        profile: a profile overlaid on the spec (``<stem>.<profile>.yaml``).
        overrides: fixed ``key.path=value`` overrides, applied before the run's own.
        finish: finish the Conveyor run (manifest, end of the MLflow run) after the step.
        use_cache: reuse a step's outputs when its inputs and config did not change.
        param_defaults: declared params and their defaults, to tell chosen values apart.
        conveyor_conn_id: an Airflow connection of type ``conveyor`` whose extras give the
            store root and tracking URI (see :class:`conveyor.airflow.hooks.ConveyorHook`).
        **kwargs: passed to :class:`airflow.sdk.BaseOperator` (``task_id`` defaults to
            ``step``).

    Example:
        >>> train = ConveyorStepOperator(spec_path="pipelines/churn.yaml", step="train")
    """

    template_fields: Sequence[str] = ("spec_path", "overrides")
    ui_color = "#d8ecf3"

    def __init__(
        self,
        *,
        spec_path: str,
        step: str | None,
        profile: str | None = None,
        overrides: Sequence[str] = (),
        finish: bool = False,
        use_cache: bool = True,
        param_defaults: Mapping[str, Any] | None = None,
        conveyor_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        if step is None and not finish:
            raise ValueError("ConveyorStepOperator needs a step, or finish=True to finish the run")
        kwargs.setdefault("task_id", step or "finish")
        # Airflow calls it after the last try only (retries call on_retry_callback).
        kwargs.setdefault("on_failure_callback", mark_run_failed)
        super().__init__(**kwargs)
        self.spec_path = str(spec_path)
        self.step = step
        self.profile = profile
        self.overrides = list(overrides)
        self.finish = finish
        self.use_cache = use_cache
        self.param_defaults = dict(param_defaults or {})
        self.conveyor_conn_id = conveyor_conn_id

    def _overrides(self, context: Context) -> list[str]:
        chosen = list(self.overrides)
        if self.conveyor_conn_id:
            from conveyor.airflow.hooks import ConveyorHook

            chosen += ConveyorHook(conveyor_conn_id=self.conveyor_conn_id).spec_overrides()
        dag_run = context.get("dag_run")
        conf = getattr(dag_run, "conf", None) or {}
        chosen += runtime_overrides(context.get("params") or {}, conf, self.param_defaults)
        return chosen

    def execute(self, context: Context) -> dict[str, Any]:
        """Run the step in the DAG run's Conveyor run; return the step record as a dict."""
        from conveyor.errors import BadInputError, GateRejectedError
        from conveyor.runners.executor import execute_step, finish_run, open_run
        from conveyor.spec import load_spec

        dag_run = context["dag_run"]
        run_id = conveyor_run_id(dag_run.dag_id, dag_run.run_id)
        overrides = self._overrides(context)
        log.info("conveyor run %s, step %s, overrides %s", run_id, self.step, overrides)
        try:
            loaded = load_spec(self.spec_path, overrides, profile=self.profile)
            run = open_run(loaded, run_id=run_id)
            record: dict[str, Any] = {"run_id": run_id}
            if self.step is not None:
                done = execute_step(run, self.step, use_cache=self.use_cache)
                if not self.finish:
                    finish_if_halted(run, done)
                record = done.to_dict()
                record.setdefault("run_id", run_id)
            if self.finish:
                ref, manifest = finish_run(run)
                record["manifest"] = {"uri": ref.uri, "sha256": ref.sha256,
                                      "status": manifest.get("status")}
        except (BadInputError, GateRejectedError) as exc:
            # Retrying cannot fix the spec, the data or the model's quality.
            raise AirflowFailException(str(exc)) from exc
        return record
