"""One Prefect flow run is one elt run: its id, its lock, its ``elt_meta`` rows, its steps.

The flow's tasks share a :class:`PipelineRun` (tasks run in threads of the flow's process):
each task body calls :meth:`PipelineRun.execute`, which runs the step with the same
``StepRunner`` code as ``elt run`` and records duration, rows, peak RSS and CPU in
``elt_meta.steps``. The walker (``factory``) reports each step's final state back with
:meth:`PipelineRun.step_finished`, after Prefect's retries are spent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from uuid import UUID

import psycopg2
import psycopg2.errors

from elt import limits, runs, settings
from elt.config import Pipeline, ProjectConfig
from elt.redact import redact
from elt.runner import PipelineBusyError, lock_key, measure_step
from elt.spec import Step
from elt.steps import RunResult
from orchestration.prefect.transform import DbtOptions, PrefectStepRunner

ORCHESTRATOR = "prefect"
log = logging.getLogger(__name__)


class StepFailed(RuntimeError):
    """A step failed; the message is scrubbed of secrets (see ``elt.redact``)."""


def run_id_for(pipeline: str, flow_run_id: UUID | str, started: datetime) -> str:
    """The elt run id of a flow run: ``<pipeline>-<start, UTC>-<12 hex of the flow run id>``.

    Sortable like ``elt run``'s ids, and the same for every retry of the same flow run.
    """
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{pipeline}-{stamp}-{UUID(str(flow_run_id)).hex[-12:]}"


class PipelineRun:
    """The shared state of one flow run: the step runner, its result and step errors.

    A plain class on purpose: Prefect walks dataclass task arguments and rebuilds them, which
    would give every task its own copy instead of this one shared object.
    """

    def __init__(self, runner: PrefectStepRunner):
        self.runner = runner
        self.errors: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def result(self) -> RunResult:
        """What the run did so far (rows, dbt outcome, published tables, status)."""
        return self.runner.result

    @property
    def url(self) -> str:
        """The warehouse URL (with credentials: never log it)."""
        return self.runner.url

    def execute(self, step: Step) -> dict:
        """Run one step (a task body): measure it, record it, raise if it failed."""
        if step.kind == "notify":  # the message reports the run's outcome, so settle it first
            self.settle()
        record, error = measure_step(lambda: self.runner.run(step), step)
        if step.kind == "notify":
            record.detail["limits_exceeded"] = self.check_limits()
        with self._lock:
            # a retried step replaces its previous attempt, in memory as in elt_meta
            self.result.steps = [s for s in self.result.steps if s.step_id != step.id]
            self.result.steps.append(record)
            runs.record_step(self.url, self.result.run_id, record)
        if error is None:
            return {"rows": record.rows, **record.detail}
        self.errors[step.id] = redact(str(error))
        if isinstance(error, TimeoutError):
            raise error  # Prefect marks the task run TimedOut
        # the task run's state message and log show this text: a scrubbed copy, never a
        # library message that might quote a connection URL
        raise StepFailed(f"{type(error).__name__}: {self.errors[step.id]}") from None

    def check_limits(self) -> list[str]:
        """The run's duration limit breaches (``elt.limits``); alerts ``limit_exceeded``."""
        try:
            return limits.check_and_alert(self.runner.pipe, self.result, self.url)
        except Exception as exc:  # a failed check must not turn a good run into a failed one
            log.warning("could not check the run's duration limits: %s", redact(str(exc)))
            return []

    def step_finished(self, step: Step, succeeded: bool) -> None:
        """Take a step's final state (after retries): a failure fails the whole run."""
        if succeeded:
            return
        with self._lock:
            if self.result.status != "failed":
                self.result.status = "failed"
                reason = self.errors.get(step.id, "did not finish")
                self.result.error = f"{step.id}: {reason}"

    def settle(self) -> None:
        """Fix the run's status and duration (before notify, and at the end)."""
        if self.result.status == "running":
            self.result.status = "succeeded"
        self.result.duration_s = time.monotonic() - self.result.started


@contextmanager
def pipeline_lock(url: str, pipeline: str) -> Iterator[None]:
    """Hold the pipeline's advisory lock (the one ``elt run`` takes) for the block."""
    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("select pg_try_advisory_lock(%s)", (lock_key(pipeline),))
            if not cur.fetchone()[0]:
                raise PipelineBusyError(
                    f"pipeline {pipeline!r} is already running; wait for it to finish"
                )
        yield
    finally:
        conn.close()  # closing the session releases the lock


def _start(url: str, run_id: str, pipeline: str) -> None:
    # a retry of the same flow run continues the same elt run
    with contextlib.suppress(psycopg2.errors.UniqueViolation):
        runs.start_run(url, run_id, pipeline, ORCHESTRATOR)


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
    """Lock the pipeline, open its ``elt_meta.runs`` row, yield the run, then close the row."""
    url = settings.warehouse_url()
    runs.migrate(url)
    with pipeline_lock(url, pipe.name):
        _start(url, run_id, pipe.name)
        runner = PrefectStepRunner(
            config,
            pipe,
            RunResult(run_id=run_id, pipeline=pipe.name),
            url,
            full_refresh=full_refresh,
            data_interval=data_interval,
            progress=_log_progress,
            dbt_options=dbt_options,
        )
        run = PipelineRun(runner)
        try:
            yield run
        except BaseException as exc:  # crash or cancellation: the row must not stay "running"
            run.result.status = "failed"
            run.result.error = run.result.error or redact(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            run.settle()
            runs.finish_run(url, run_id, run.result.status, run.result.error)
