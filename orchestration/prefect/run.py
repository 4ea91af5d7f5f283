"""One Prefect flow run is one elt run: its id, its lock, its ``elt_meta`` rows, its steps.

The flow's tasks share a :class:`PipelineRun` (tasks run in threads of the flow's process):
each task body calls :meth:`PipelineRun.execute`, which runs the step with the same
``StepRunner`` code as ``elt run`` and records duration, rows, peak RSS and CPU in
``elt_meta.steps``. The walker (``factory``) reports each step's final state back with
:meth:`PipelineRun.step_finished`, after Prefect's retries are spent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from uuid import UUID

from elt import runs, settings
from elt.config import Pipeline, ProjectConfig
from elt.lifecycle import Run
from elt.redact import redact
from elt.spec import Step
from elt.steps import RunResult
from orchestration.prefect import triggers
from orchestration.prefect.transform import DbtOptions, PrefectStepRunner

ORCHESTRATOR = "prefect"
log = logging.getLogger(__name__)


def run_id_for(pipeline: str, flow_run_id: UUID | str, started: datetime) -> str:
    """The elt run id of a flow run: ``<pipeline>-<start, UTC>-<12 hex of the flow run id>``.

    Sortable like ``elt run``'s ids, and the same for every retry of the same flow run.
    """
    return runs.new_run_id(pipeline, started, UUID(str(flow_run_id)).hex[-12:])


def _attempt_number() -> int:
    """This task run's attempt (1 on the first try), as Prefect counts its retries."""
    from prefect.context import TaskRunContext

    context = TaskRunContext.get()
    return max(context.task_run.run_count, 1) if context is not None else 1


class PipelineRun:
    """The shared state of one flow run: the lifecycle's :class:`~elt.lifecycle.Run`.

    A plain class on purpose: Prefect walks dataclass task arguments and rebuilds them, which
    would give every task its own copy instead of this one shared object.
    """

    def __init__(self, run: Run):
        self.run = run

    @property
    def result(self) -> RunResult:
        """What the run did so far (rows, dbt outcome, published tables, status)."""
        return self.run.result

    def execute(self, step: Step) -> dict:
        """Run one attempt of a step (a task body); raise if it failed, for Prefect to retry."""
        record = self.run.attempt(step, _attempt_number())
        if step.kind == "publish":
            triggers.emit_published(self.run.pipe.name, self.run.run_id, self.result.published)
        return {"rows": record.rows, **record.detail}

    def step_finished(self, step: Step, succeeded: bool) -> None:
        """Take a step's final state (after retries); a step that never recorded itself
        (cancelled, crashed) still fails the run."""
        recorded = any(s.step_id == step.id for s in self.result.steps)
        if not succeeded and not recorded:
            self.run.failures.append(f"{step.id}: did not finish")


def _log_progress(message: str) -> None:
    """Step progress (e.g. an ingest's phases) into the running task's Prefect log."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        get_run_logger().info(redact(message))
    except MissingContextError:
        logging.getLogger(__name__).info(redact(message))


@contextmanager
def open_run(
    config: ProjectConfig,
    pipe: Pipeline,
    run_id: str,
    *,
    full_refresh: bool = False,
    data_interval: tuple[datetime, datetime] | None = None,
    dbt_options: DbtOptions | None = None,
) -> Iterator[PipelineRun]:
    """Take the pipeline's lease, open the run, yield it; then settle and close it, whatever
    happened (a crash or cancellation included)."""
    run = Run.create(
        config,
        pipe,
        run_id,
        settings.warehouse_url(),
        orchestrator=ORCHESTRATOR,
        runner_class=PrefectStepRunner,
        full_refresh=full_refresh,
        data_interval=data_interval,
        progress=_log_progress,
        dbt_options=dbt_options,
    )
    run.open()
    try:
        yield PipelineRun(run)
    except BaseException as exc:  # crash or cancellation: the row must not stay "running"
        run.interrupted(exc)
        raise
    finally:
        run.finish()
