"""Settle a DAG run into one elt run: status, error, duration, notifications, limits.

The notify task (a teardown, so it runs whatever failed) calls :func:`settle_and_notify`;
the DAG-level notifier calls :func:`fallback_report` when the notify task never recorded
itself (the setup task failed, or notify itself crashed), so every run alerts once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from elt import config as elt_config
from elt import lease, lifecycle, runs, settings
from elt import notify as elt_notify
from elt.redact import redact
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


def task_failures(failed: list[tuple[str, str]]) -> list[str]:
    """Airflow's failed tasks as run errors, the task that failed itself first (not one
    that could not run because of it)."""
    ordered = sorted(failed, key=lambda item: (item[1] != "failed", item[0]))
    return [f"task {task} {state.replace('_', ' ')}" for task, state in ordered]


def _started_clock(url: str, run_id: str) -> float:
    """The run's start as a ``time.monotonic()`` value (what ``RunResult.started`` holds)."""
    started = run_state.run_started_at(url, run_id) or datetime.now(UTC)
    return time.monotonic() - (datetime.now(UTC) - started).total_seconds()


def settle_and_notify(pipeline: str, step_id: str, context: dict[str, Any]) -> None:
    """Body of the notify task (see the module docstring)."""
    with tasks.attached_run(pipeline, context) as run:
        url = run.url
        run.runner.result = run_state.load_result(url, run.run_id, pipeline)
        run.result.started = _started_clock(url, run.run_id)
        run.failures = task_failures(failed_tasks(context, skip=context["ti"].task_id))
        try:
            tasks.attempt(run, step_id, context)
        finally:
            run.finish()


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
    runs.migrate(url)
    if _refused_by_lease(url, pipeline, run_id):
        return 0
    runs.open_run(url, run_id, pipeline, run_state.ORCHESTRATOR, reopen=False)
    result = run_state.load_result(url, run_id, pipeline)
    if any(step.kind == "notify" for step in result.steps):
        return 0
    result.started = _started_clock(url, run_id)
    dag_failed = "fail" in str(getattr(context["dag_run"], "state", "")).lower()
    reason = str(context.get("reason") or "the DAG run failed before notify ran")
    lifecycle.settle(result, [reason] if dag_failed else [])
    runs.finish_run(url, run_id, result.status, redact(result.error) if result.error else None)
    current = lease.current(url, pipeline)
    if current is not None and current.run_id == run_id:
        lease.Lease(url, pipeline, run_id, run_state.ORCHESTRATOR).free()
    report = result.report()
    if report.event not in pipe.notify.on:
        return 0
    return elt_notify.send(pipe.notify.urls, report)


def _refused_by_lease(url: str, pipeline: str, run_id: str) -> bool:
    """The DAG run never opened its run because another run held the pipeline: like a
    refused `elt run` or Prefect flow run, it records nothing and alerts nobody (the failed
    start task's log names the holder)."""
    if run_state.run_started_at(url, run_id) is not None:
        return False
    holder = lease.current(url, pipeline)
    return holder is not None and holder.run_id != run_id
