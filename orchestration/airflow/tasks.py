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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elt import config as elt_config
from elt import settings
from elt.redact import redact
from orchestration.airflow import compat

if TYPE_CHECKING:
    from elt import runs
    from elt.lifecycle import Run

# The DAG file imports this module for the task callables: what only tasks need (the run
# metadata module, psycopg2) is imported when a task runs, not on every parse.

GROUP_DBT = "dbt"
DBT_STEP = "dbt_build"
# The producer's own state says nothing the node tasks do not: after a node is retried by
# clearing it, the producer stays failed while every node succeeded.
PRODUCER_TASKS = (
    f"{GROUP_DBT}.{compat.PRODUCER_TASK}",
    f"{GROUP_DBT}.{compat.PRODUCER_TASK}_done",
)
_started: dict[tuple, tuple[datetime, float]] = {}


# -- hooks shared by every task ---------------------------------------------------------


def prepare_task(context: dict[str, Any]) -> None:
    """``pre_execute`` of every task: tool environment (warehouse, homes) and a start mark."""
    from airflow.sdk.exceptions import AirflowTaskTimeout

    from elt import lifecycle

    settings.load_local_env()
    settings.apply_tool_env()
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    if AirflowTaskTimeout not in lifecycle.TIMEOUT_ERRORS:
        lifecycle.TIMEOUT_ERRORS.append(AirflowTaskTimeout)
    _started[_task_key(context)] = (datetime.now(UTC), _cpu_seconds())


def _task_key(context: dict[str, Any]) -> tuple:
    ti = context["ti"]
    return (ti.dag_id, ti.task_id, ti.run_id, ti.try_number)


def _cpu_seconds() -> float:
    import psutil

    return sum(psutil.Process().cpu_times()[:2])


def _data_interval(context: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """The scheduled interval; manual runs load everything new, as ``elt run`` does."""
    run_type = str(getattr(context["dag_run"], "run_type", "")).lower()
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if "manual" in run_type or start is None or end is None or start >= end:
        return None
    return start, end


@contextmanager
def attached_run(pipeline: str, context: dict[str, Any], **runner_options: Any) -> Iterator[Run]:
    """The elt run of this DAG run, entered by this task: the pipeline's lease taken (or
    re-entered by run id, or refused while another live run holds it) and renewed while the
    task works; a finished run is reopened (a cleared task)."""
    from elt.lifecycle import Run
    from orchestration.airflow import run_state

    config = elt_config.load()
    pipe = config.pipeline(pipeline)
    run = Run.create(
        config,
        pipe,
        run_state.run_id_from_context(pipeline, context),
        settings.warehouse_url(),
        orchestrator=run_state.ORCHESTRATOR,
        data_interval=_data_interval(context),
        **runner_options,
    )
    run.open()
    try:
        yield run
    finally:
        run.detach()


# -- plan steps ----------------------------------------------------------------------------


def start_run(pipeline: str, **context: Any) -> str:
    """Setup task: take the pipeline's lease and open the run's row; returns the run id."""
    with attached_run(pipeline, context) as run:
        return run.run_id


def run_step(pipeline: str, step_id: str, **context: Any) -> None:
    """Run one plan step (ingest, publish, export) with the same code ``elt run`` runs."""
    with attached_run(pipeline, context) as run:
        attempt(run, step_id, context)


def attempt(run: Run, step_id: str, context: dict[str, Any]) -> None:
    """One attempt of a step, numbered as Airflow counts tries. A step stopped at its
    timeout is not retried (as under `elt run` and Prefect): the next try would hang too."""
    from airflow.sdk.exceptions import AirflowFailException

    from elt.lifecycle import StepTimedOut

    try:
        run.attempt(run.plan.step(step_id), context["ti"].try_number)
    except StepTimedOut as exc:
        raise AirflowFailException(str(exc)) from None


def quality_gate(pipeline: str, step_id: str, expected: Iterable[str], **context: Any) -> None:
    """The gate, run whatever dbt did: closed when a dbt node task did not succeed, a node of
    the rendered graph has no result for this run, a node failed, or a GX check failed."""
    from orchestration.airflow.gate import GateStepRunner

    options = {"runner_class": GateStepRunner, "airflow_context": context, "expected": expected}
    with attached_run(pipeline, context, **options) as run:
        attempt(run, step_id, context)


def run_states(context: dict[str, Any], **where: Any) -> dict[str, str]:
    """Task id → state of this DAG run's tasks (Airflow 3 tasks ask the API, not the DB)."""
    ti = context["ti"]
    run_id = context["run_id"]
    found = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id], **where).get(run_id, {})
    return {task: str(state) for task, state in found.items()}


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


def clears(context: dict[str, Any]) -> int:
    """How many times this DAG run was cleared (Airflow counts every clear of its tasks)."""
    return int(getattr(context["dag_run"], "clear_number", 0) or 0)


def build_clears(url: str, run_id: str) -> int | None:
    """The DAG run's clear count when the producer recorded its latest build (None: none)."""
    from elt import runs

    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"select (detail->>'clears')::int from {runs.SCHEMA}.steps"
            " where run_id = %s and step_id = %s",
            (run_id, DBT_STEP),
        )
        row = cur.fetchone()
    return row[0] if row else None


def forget_dbt_results(context: dict[str, Any]) -> None:
    """The producer starts a build: the run's earlier node results no longer count."""
    from elt import runs
    from orchestration.airflow import run_state

    run_id = run_state.run_id_from_context(context["ti"].dag_id, context)
    runs.forget_dbt_results(settings.warehouse_url(), run_id)
    run_state.forget_build_results(run_id)  # and what this process read of them


def record_dbt_invocation(
    context: dict[str, Any], records: list[runs.DbtResultRecord], error: str | None = None
) -> None:
    """One dbt invocation of a task: node results → ``elt_meta.dbt_results`` (replacing
    earlier rows of the same nodes), the invocation → ``elt_meta.steps`` (the producer's as
    ``dbt_build``, a re-run node's under its task id), with the task's try and the DAG run's
    clear count."""
    from elt import dbt, runs
    from orchestration.airflow import run_state

    ti = context["ti"]
    pipeline = ti.dag_id
    url = settings.warehouse_url()
    run_id = run_state.run_id_from_context(pipeline, context)
    runs.record_dbt_results(url, run_id, records)
    run_state.forget_build_results(run_id)
    started, cpu = _started.get(_task_key(context), (datetime.now(UTC), _cpu_seconds()))
    producer = ti.task_id.endswith(compat.PRODUCER_TASK)
    detail: dict[str, Any] = {
        "failed": sum(1 for r in records if r.status in dbt.FAILED_STATUSES),
        "models": sum(1 for r in records if r.resource_type == "model"),
        "tests": sum(1 for r in records if r.resource_type == "test"),
        "nodes": len(records),
        # which try, after how many clears of the DAG run: node tasks compare (node_tasks)
        "try": ti.try_number,
        "clears": clears(context),
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
