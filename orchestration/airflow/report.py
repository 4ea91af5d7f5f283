"""Settle a DAG run into one elt run: status, error, duration, notifications, limits.

The notify task (a teardown, so it runs whatever failed) calls :func:`settle_and_notify`;
the DAG-level notifier calls :func:`fallback_report` when the notify task never recorded
itself (the setup task failed, or notify itself crashed), so every run alerts once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from elt import config as elt_config
from elt import limits, runs, settings
from elt import notify as elt_notify
from elt.redact import redact
from elt.spec import plan
from elt.steps import RunResult, StepRunner
from orchestration.airflow import run_state, tasks

_NOT_DONE = {"failed", "upstream_failed"}


def failed_tasks(context: dict[str, Any], *, skip: str | None = None) -> list[tuple[str, str]]:
    """(task id, state) of the DAG run's tasks that failed or could not run, in id order."""
    ti = context["ti"]
    run_id = context["run_id"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
    return sorted(
        (task, str(state))
        for task, state in states.items()
        if str(state) in _NOT_DONE and task != skip and task not in tasks.PRODUCER_TASKS
    )


def settle(result: RunResult, failed: list[tuple[str, str]], started: datetime | None) -> None:
    """Status, error and duration of the run from its recorded steps and the task states."""
    failed_steps = [s for s in result.steps if s.status == "failed"]
    if failed or failed_steps:
        result.status = "failed"
        if failed_steps:
            first = failed_steps[0]
            result.error = f"{first.step_id}: {first.detail.get('error', 'failed')}"
        else:  # the first task that failed itself, not one that could not run because of it
            task, state = sorted(failed, key=lambda item: (item[1] != "failed", item[0]))[0]
            result.error = f"task {task} {state.replace('_', ' ')}"
    else:
        result.status = "succeeded"
    start = started or datetime.now(UTC)
    result.duration_s = (datetime.now(UTC) - start).total_seconds()


def settle_and_notify(pipeline: str, step_id: str, context: dict[str, Any]) -> None:
    """Body of the notify task (see the module docstring)."""
    from elt.runner import measure_step

    config = elt_config.load()
    pipe = config.pipeline(pipeline)
    step = plan(config, pipe).step(step_id)
    url = settings.warehouse_url()
    run_id = run_state.run_id_from_context(pipeline, context)
    run_state.ensure_run(url, run_id, pipeline)
    result = run_state.load_result(url, run_id, pipeline)
    settle(
        result,
        failed_tasks(context, skip=context["ti"].task_id),
        run_state.run_started_at(url, run_id),
    )
    runner = StepRunner(config, pipe, result, url)
    record, error = measure_step(lambda: runner.run(step), step)
    breached = limits.check_and_alert(pipe, result, url)
    record.detail["limits_exceeded"] = breached
    runs.record_step(url, run_id, record)
    runs.finish_run(url, run_id, result.status, redact(result.error) if result.error else None)
    if error is not None:
        raise RuntimeError(redact(f"notify: {error}")) from None


def fallback_report(context: dict[str, Any]) -> int:
    """DAG callback: notify about a run whose notify task did not record itself.

    Returns how many URLs were notified (0 when the notify task already reported).
    """
    settings.load_local_env()
    settings.apply_tool_env()
    pipeline = context["dag"].dag_id
    pipe = elt_config.load().pipeline(pipeline)
    url = settings.warehouse_url()
    run_id = run_state.run_id_from_context(pipeline, context)
    run_state.ensure_run(url, run_id, pipeline, reopen=False)
    result = run_state.load_result(url, run_id, pipeline)
    if any(step.kind == "notify" for step in result.steps):
        return 0
    dag_failed = "fail" in str(getattr(context["dag_run"], "state", "")).lower()
    failed = [("dag run", "failed")] if dag_failed else []
    settle(result, failed, run_state.run_started_at(url, run_id))
    if result.status == "failed" and not result.error:
        result.error = str(context.get("reason") or "the DAG run failed before notify ran")
    runs.finish_run(url, run_id, result.status, redact(result.error) if result.error else None)
    report = result.report()
    if report.event not in pipe.notify.on:
        return 0
    return elt_notify.send(pipe.notify.urls, report)
