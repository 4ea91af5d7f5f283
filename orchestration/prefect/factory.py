"""The flow factory: one Prefect flow per pipeline, walking ``elt.spec.plan``.

Each plan step becomes a task named after the step id (``ingest_shop``, ``dbt_build``,
``quality_gate``, ``publish``, ``export``, ``notify``) with the step's retries, retry delay,
timeout and, as tag, its pool, so the pool's Prefect concurrency limit (``tag:<pool>``)
applies. Steps whose upstream steps are all done run together (the sources are ingested
concurrently); a step whose upstream failed is not run, except ``notify``, which reports
whatever happened. The flow run fails when the elt run failed.
"""

from __future__ import annotations

import importlib
import logging
import os
from datetime import UTC, datetime

from elt.config import Pipeline, ProjectConfig
from elt.spec import Plan, Step, plan
from orchestration.prefect import artifacts, schedules
from orchestration.prefect.run import PipelineRun, open_run, run_id_for
from orchestration.prefect.transform import DbtOptions

log = logging.getLogger(__name__)

# Modules the ingest steps import lazily. Imported once before the sources are ingested in
# parallel threads: two threads importing pandas at the same time see it half-initialised.
_SHARED_IMPORTS = ("pandas", "pyarrow", "ingestion.runner")
# Prefect warns on every task with a timeout that runs in a worker thread. Known and
# accepted: the timeout fires between Python operations, a blocking call finishes first.
_THREAD_TIMEOUT_WARNING = "Timeout of %s seconds configured for this task, but the task is"


class _DropThreadTimeoutWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_THREAD_TIMEOUT_WARNING)


class PipelineRunFailed(RuntimeError):
    """The elt run behind a flow run failed; the message names the step and the reason."""


def step_task(step: Step):
    """The Prefect task of one plan step, with the step's policies."""
    from prefect import Task
    from prefect.cache_policies import NO_CACHE

    return Task(
        fn=_execute_step,
        name=step.id,
        task_run_name=step.id,
        description=f"{step.kind} step of the elt plan",
        retries=step.retries,
        retry_delay_seconds=step.retry_delay.total_seconds(),
        timeout_seconds=step.timeout.total_seconds() if step.timeout else None,
        tags={step.pool} if step.pool else None,
        retry_condition_fn=_retry_unless_timed_out,
        cache_policy=NO_CACHE,  # every run does the work again; inputs are not hashable
        persist_result=False,
        log_prints=True,
    )


def _retry_unless_timed_out(task, task_run, state) -> bool:
    """A step stopped at its timeout is not retried (as under `elt run` and Airflow)."""
    return state.name != "TimedOut" and "timed out after" not in (state.message or "")


def _execute_step(run: PipelineRun, step: Step) -> dict:
    return run.execute(step)


def _prepare_parallel_ingest() -> None:
    """Make sources safe to ingest in parallel threads of this process.

    Two races otherwise: importing pandas from two threads at once, and ``ingest()``'s
    ``dlt.config.values(...)``, which sets dlt's fast-path options process-wide and
    restores them on exit, while another thread may still be normalizing. Environment
    variables take precedence over that provider, so setting them pins the options.
    """
    for module in _SHARED_IMPORTS:
        importlib.import_module(module)
    from ingestion.fast_path import as_environment

    for key, value in as_environment().items():
        os.environ.setdefault(key, value)


def walk(the_plan: Plan, tasks: dict, run: PipelineRun) -> dict[str, bool]:
    """Run the plan's steps in dependency waves; returns step id → succeeded.

    Each task run lists its upstream steps' task runs as ``wait_for`` (already finished, so
    it waits for nothing): the flow run's graph in the UI shows the plan's edges.
    """
    from prefect.futures import wait
    from prefect.utilities.annotations import allow_failure

    if sum(step.kind == "ingest" for step in the_plan.steps) > 1:
        _prepare_parallel_ingest()
    finished: dict[str, bool] = {}
    submitted: dict = {}
    pending = list(the_plan.steps)
    while pending:
        ready = [s for s in pending if all(d in finished for d in s.depends_on)]
        if not ready:
            raise ValueError(f"plan {the_plan.pipeline!r} has a dependency cycle")
        futures = {}
        for step in ready:
            if step.trigger == "all_done" or all(finished[d] for d in step.depends_on):
                upstream = [allow_failure(submitted[d]) for d in step.depends_on if d in submitted]
                futures[step.id] = tasks[step.id].submit(run, step, wait_for=upstream or None)
            else:
                finished[step.id] = False  # upstream failed: not run, as in `elt run`
        wait(list(futures.values()))
        for step_id, future in futures.items():
            finished[step_id] = future.state.is_completed()
            run.step_finished(the_plan.step(step_id), finished[step_id])
        submitted.update(futures)
        pending = [s for s in pending if s.id not in finished]
    return finished


def _flow_run():
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("this function runs inside a Prefect flow run only")
    return context.flow_run


def _interval(
    pipe: Pipeline, start: datetime | None, end: datetime | None, flow_run
) -> tuple[datetime, datetime] | None:
    if start is not None and end is not None:
        return start, end
    if start is not None or end is not None:
        raise ValueError("give both data_interval_start and data_interval_end, or neither")
    if flow_run.auto_scheduled and flow_run.expected_start_time:
        return schedules.data_interval(pipe.schedule, flow_run.expected_start_time)
    return None  # a manual run loads whatever is new since the last load


def _publish_artifacts(run: PipelineRun) -> dict[str, str]:
    try:
        return artifacts.publish(run.result)
    except Exception as exc:  # the run's outcome stands even if the UI cannot be told
        log.warning("could not create the run's artifacts: %s", exc)
        return {}


def build_flow(config: ProjectConfig, pipeline: str, *, dbt_options: DbtOptions | None = None):
    """The Prefect flow of ``pipeline`` (flow name = pipeline name)."""
    from prefect import Flow

    task_logger = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, _DropThreadTimeoutWarning) for f in task_logger.filters):
        task_logger.addFilter(_DropThreadTimeoutWarning())
    pipe = config.pipeline(pipeline)
    the_plan = plan(config, pipe)
    tasks = {step.id: step_task(step) for step in the_plan.steps}

    def run_pipeline(
        full_refresh: bool = False,
        data_interval_start: datetime | None = None,
        data_interval_end: datetime | None = None,
    ) -> dict:
        flow_run = _flow_run()
        started = flow_run.expected_start_time or datetime.now(UTC)
        run_id = run_id_for(pipe.name, flow_run.id, started)
        interval = _interval(pipe, data_interval_start, data_interval_end, flow_run)
        with open_run(
            config,
            pipe,
            run_id,
            full_refresh=full_refresh,
            data_interval=interval,
            dbt_options=dbt_options,
        ) as run:
            walk(the_plan, tasks, run)
        keys = _publish_artifacts(run)
        result = run.result
        if result.status == "failed":
            raise PipelineRunFailed(f"elt run {run_id} failed: {result.error}")
        return {
            "run_id": run_id,
            "status": result.status,
            "rows": sum(load.rows for load in result.loads),
            "published": sorted(result.published),
            "artifacts": keys,
        }

    run_pipeline.__name__ = pipe.name
    return Flow(
        fn=run_pipeline,
        name=pipe.name,
        description=pipe.description or f"elt pipeline {pipe.name}",
        log_prints=True,
        persist_result=False,
    )


def build_flows(config: ProjectConfig, *, dbt_options: DbtOptions | None = None) -> dict:
    """Every pipeline's flow, by pipeline name."""
    return {name: build_flow(config, name, dbt_options=dbt_options) for name in config.pipelines}
