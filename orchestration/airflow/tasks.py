"""Task bodies of the pipeline DAGs: each calls ``elt.steps.StepRunner``, as ``elt run`` does.

Every task records its own duration, rows, peak RSS and CPU in ``elt_meta.steps`` and writes
its output (loads, dbt node results, checks) to ``elt_meta``, where the gate and the notify
task read it back: Airflow tasks share no memory. Errors reach Airflow redacted; the warehouse
password only ever lives in the task process's environment (:func:`prepare_task`).
"""

from __future__ import annotations

import json
import logging
import os
import resource
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elt import config as elt_config
from elt import settings
from elt.redact import redact
from elt.spec import Step, plan

if TYPE_CHECKING:
    from elt import runs

# The DAG file imports this module for the task callables: what only tasks need (the run
# metadata module, psycopg2) is imported when a task runs, not on every parse.

GROUP_DBT = "dbt"
DBT_STEP = "dbt_build"
_BAD_DBT = {"error", "fail", "skipped", "runtime error"}
_NOT_DONE = {"failed", "upstream_failed"}
# The producer's own state says nothing the node tasks do not: after a node is retried by
# clearing it, the producer stays failed while every node succeeded.
PRODUCER_TASKS = (f"{GROUP_DBT}.dbt_producer_watcher", f"{GROUP_DBT}.dbt_producer_watcher_done")
_started: dict[tuple, tuple[datetime, float]] = {}


class StepFailed(RuntimeError):
    """A pipeline step failed; the message says which step and why (redacted)."""


# -- hooks shared by every task ---------------------------------------------------------


def prepare_task(context: dict[str, Any]) -> None:
    """``pre_execute`` of every task: tool environment (warehouse, homes) and a start mark."""
    settings.load_local_env()
    settings.apply_tool_env()
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    _started[_task_key(context)] = (datetime.now(UTC), _cpu_seconds())


def _task_key(context: dict[str, Any]) -> tuple:
    ti = context["ti"]
    return (ti.dag_id, ti.task_id, ti.run_id, ti.try_number)


def _cpu_seconds() -> float:
    import psutil

    return sum(psutil.Process().cpu_times()[:2])


def _context_step(pipeline: str, step_id: str) -> tuple[Any, Any, Step]:
    config = elt_config.load()
    pipe = config.pipeline(pipeline)
    return config, pipe, plan(config, pipe).step(step_id)


def _data_interval(context: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """The scheduled interval; manual runs load everything new, as ``elt run`` does."""
    run_type = str(getattr(context["dag_run"], "run_type", "")).lower()
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if "manual" in run_type or start is None or end is None or start >= end:
        return None
    return start, end


# -- plan steps ----------------------------------------------------------------------------


def start_run(pipeline: str, **context: Any) -> str:
    """Setup task: migrate ``elt_meta`` and open the run's row; returns the elt run id."""
    from orchestration.airflow import run_state

    url = settings.warehouse_url()
    run_id = run_state.run_id_from_context(pipeline, context)
    run_state.ensure_run(url, run_id, pipeline)
    return run_id


def run_step(pipeline: str, step_id: str, **context: Any) -> None:
    """Run one plan step (ingest, publish, export) with the same code ``elt run`` runs."""
    _execute(pipeline, step_id, context)


def _execute(pipeline: str, step_id: str, context: dict[str, Any], before=None) -> None:
    from elt import runs
    from elt.runner import measure_step  # the measuring `elt run` uses (duration, RSS, CPU)
    from elt.steps import RunResult, StepRunner
    from orchestration.airflow import run_state

    config, pipe, step = _context_step(pipeline, step_id)
    url = settings.warehouse_url()
    run_id = run_state.run_id_from_context(pipeline, context)
    run_state.ensure_run(url, run_id, pipeline)
    result = RunResult(run_id=run_id, pipeline=pipeline)
    runner = StepRunner(config, pipe, result, url, data_interval=_data_interval(context))

    def body() -> tuple[int | None, dict]:
        if before is not None:
            before(runner)
        return runner.run(step)

    record, error = measure_step(body, step)
    runs.record_step(url, run_id, record)
    if error is not None:
        raise StepFailed(redact(f"{step.id}: {error}")) from None


def quality_gate(pipeline: str, step_id: str, expected: Iterable[str], **context: Any) -> None:
    """The gate, run whatever dbt did: closed when a dbt node task did not succeed, a node of
    the rendered graph has no result for this run, a node failed, or a GX check failed."""

    def complete(runner) -> None:
        _no_failed_nodes(runner.url, runner.result.run_id)
        _upstream_succeeded(context)
        _all_nodes_reported(runner.url, runner.result.run_id, expected)

    _execute(pipeline, step_id, context, before=complete)


def _no_failed_nodes(url: str, run_id: str) -> None:
    from elt import runs

    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"select unique_id, coalesce(message, status) from {runs.SCHEMA}.dbt_results"
            " where run_id = %s and status = any(%s) order by unique_id",
            (run_id, sorted(_BAD_DBT)),
        )
        failed = cur.fetchall()
    if failed:
        lines = "; ".join(f"{node_name(uid)}: {message}" for uid, message in failed[:10])
        raise StepFailed(
            f"quality gate closed: {len(failed)} dbt node(s) failed or were skipped"
            f" ({lines}); nothing was published"
        )


def _upstream_succeeded(context: dict[str, Any]) -> None:
    own = context["ti"].task_id
    states = run_states(context)
    bad = sorted(
        task
        for task, state in states.items()
        if state in _NOT_DONE and task != own and task not in PRODUCER_TASKS
    )
    if bad:
        names = ", ".join(bad[:10])
        raise StepFailed(
            f"quality gate closed: {len(bad)} task(s) before the gate did not succeed ({names});"
            " nothing was published"
        )


def run_states(context: dict[str, Any], **where: Any) -> dict[str, str]:
    """Task id → state of this DAG run's tasks (Airflow 3 tasks ask the API, not the DB)."""
    ti = context["ti"]
    run_id = context["run_id"]
    found = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id], **where).get(run_id, {})
    return {task: str(state) for task, state in found.items()}


def _all_nodes_reported(url: str, run_id: str, expected: Iterable[str]) -> None:
    from elt import runs

    wanted = set(expected)
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"select unique_id from {runs.SCHEMA}.dbt_results where run_id = %s", (run_id,))
        recorded = {row[0] for row in cur.fetchall()}
    missing = sorted(wanted - recorded)
    if missing:
        names = ", ".join(node_name(node) for node in missing[:10])
        raise StepFailed(
            f"quality gate closed: {len(missing)} dbt node(s) have no result in this run"
            f" ({names}); nothing was published. If the dbt project changed, run"
            " `elt airflow parse-manifest`."
        )


# -- notify (teardown) ---------------------------------------------------------------------


def notify(pipeline: str, step_id: str, **context: Any) -> None:
    """Teardown task: settle the run from ``elt_meta`` and Airflow's task states, send the
    pipeline's notifications, check the duration limits, close the ``elt_meta.runs`` row."""
    from orchestration.airflow.report import settle_and_notify

    settle_and_notify(pipeline, step_id, context)


# -- Cosmos (dbt) tasks -----------------------------------------------------------------


def record_dbt_results(project_dir: str, context: dict[str, Any] | None = None, **_: Any) -> None:
    """Cosmos ``callback`` after every dbt invocation: node results → ``elt_meta.dbt_results``,
    and the invocation itself → ``elt_meta.steps`` (the producer's as ``dbt_build``)."""
    results_file = dbt_target_dir(project_dir) / "run_results.json"
    if context is None or not results_file.is_file():
        return
    results = json.loads(results_file.read_text()).get("results", [])
    record_dbt_invocation(context, [_dbt_record(item) for item in results])


def dbt_target_dir(project_dir: str) -> Path:
    """Where dbt wrote its artifacts for a run in ``project_dir``: ``DBT_TARGET_PATH`` when
    set (relative to the project, as dbt reads it), else ``<project>/target``."""
    configured = os.environ.get("DBT_TARGET_PATH")
    if not configured:
        return Path(project_dir) / "target"
    path = Path(configured)
    return path if path.is_absolute() else Path(project_dir) / path


def record_dbt_invocation(
    context: dict[str, Any], records: list[runs.DbtResultRecord], error: str | None = None
) -> None:
    """One dbt invocation of a task: node results → ``elt_meta.dbt_results`` (replacing
    earlier rows of the same nodes), the invocation → ``elt_meta.steps`` (the producer's as
    ``dbt_build``, a re-run node's under its task id)."""
    from elt import runs
    from orchestration.airflow import run_state

    ti = context["ti"]
    pipeline = ti.dag_id
    url = settings.warehouse_url()
    run_id = run_state.run_id_from_context(pipeline, context)
    runs.record_dbt_results(url, run_id, records)
    started, cpu = _started.get(_task_key(context), (datetime.now(UTC), _cpu_seconds()))
    producer = ti.task_id.endswith("dbt_producer_watcher")
    detail: dict[str, Any] = {
        "failed": sum(1 for r in records if r.status in _BAD_DBT),
        "models": sum(1 for r in records if r.resource_type == "model"),
        "tests": sum(1 for r in records if r.resource_type == "test"),
        "nodes": len(records),
    }
    if error and not records:
        detail["error"] = redact(error)[:2000]
    runs.record_step(
        url,
        run_id,
        runs.StepRecord(
            step_id=DBT_STEP if producer else ti.task_id,
            kind="transform",
            # dbt ran: as in `elt run`, failed nodes are the gate's to judge, not the step's
            status="failed" if error and not records else "succeeded",
            started_at=started,
            finished_at=datetime.now(UTC),
            rows=sum(r.rows_affected or 0 for r in records),
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            cpu_s=_cpu_seconds() - cpu,
            detail=detail,
        ),
    )


def node_name(unique_id: str) -> str:
    """A dbt node's readable name: ``test.elt.not_null_x.ab12`` → ``not_null_x``."""
    parts = unique_id.split(".")
    if parts[0] == "test" and len(parts) == 4:
        return parts[2]
    return ".".join(parts[2:]) or unique_id


def _dbt_record(item: dict[str, Any]) -> runs.DbtResultRecord:
    from elt import runs

    unique_id = item["unique_id"]
    adapter = item.get("adapter_response") or {}
    message = item.get("message")
    return runs.DbtResultRecord(
        unique_id=unique_id,
        resource_type=unique_id.split(".", 1)[0],
        status=str(item.get("status")),
        execution_time_s=float(item.get("execution_time") or 0.0),
        rows_affected=adapter.get("rows_affected"),
        failures=item.get("failures"),
        message=str(message)[:2000] if message else None,
    )
