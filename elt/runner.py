"""`elt run`: walk a pipeline's plan in-process, recording everything in ``elt_meta``.

The same steps as the Airflow and Prefect wrappers, without an orchestrator: ingest every
source, build and test with dbt in the audit schema, gate, publish, export, notify.
A run of a pipeline holds a PostgreSQL advisory lock, so a second run of the same pipeline
started meanwhile is refused instead of interleaving with the first.
"""

from __future__ import annotations

import hashlib
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psutil
import psycopg2

from elt import runs, settings
from elt.config import ProjectConfig
from elt.spec import Plan, Step, plan
from elt.steps import RunResult, StepRunner


class PipelineBusyError(RuntimeError):
    """Another run of the same pipeline holds the lock."""


Listener = Callable[[str, Step, runs.StepRecord | None], None]


def lock_key(pipeline: str) -> int:
    """The advisory-lock key of a pipeline (shared by elt run, Airflow and Prefect runs)."""
    return int.from_bytes(hashlib.sha256(f"elt-run:{pipeline}".encode()).digest()[:8], "big") >> 1


def measure_step(
    fn: Callable[[], tuple[int, dict]], step: Step
) -> tuple[runs.StepRecord, BaseException | None]:
    """Run one step, timing it and sampling CPU and peak memory; never raises."""
    process = psutil.Process()
    cpu_before = sum(process.cpu_times()[:2])
    started = datetime.now(UTC)
    status, rows, detail, error = "succeeded", None, {}, None
    try:
        rows, detail = fn()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # recorded, then reported by the caller
        # BaseException: Rust extensions (connectorx) raise a PanicException that is not an
        # Exception; it must fail the step like any error, not leave the run "running"
        status, detail, error = "failed", {"error": str(exc)[:2000]}, exc
    record = runs.StepRecord(
        step_id=step.id,
        kind=step.kind,
        status=status,
        started_at=started,
        finished_at=datetime.now(UTC),
        rows=rows,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        cpu_s=sum(process.cpu_times()[:2]) - cpu_before,
        detail=detail,
    )
    return record, error


def _walk(executor: StepRunner, the_plan: Plan, listener: Listener | None) -> None:
    result = executor.result
    for step in the_plan.steps:
        if result.status == "failed" and step.trigger != "all_done":
            continue
        if step.kind == "notify":  # the message reports the run's outcome, so settle it first
            result.status = "succeeded" if result.status == "running" else result.status
            result.duration_s = time.monotonic() - result.started
        if listener:
            listener("start", step, None)
        record, error = measure_step(lambda s=step: executor.run(s), step)
        if error is not None:
            result.status = "failed"
            result.error = result.error or f"{step.id}: {error}"
        result.steps.append(record)
        runs.record_step(executor.url, result.run_id, record)
        if listener:
            listener("end", step, record)


def run_pipeline(
    config: ProjectConfig,
    name: str,
    *,
    full_refresh: bool = False,
    listener: Listener | None = None,
    progress: Callable[[str], None] | None = None,
    orchestrator: str = "elt",
) -> RunResult:
    """Run pipeline ``name`` end to end; never raises for a failed step (see ``status``)."""
    pipe = config.pipeline(name)
    the_plan = plan(config, pipe)
    url = settings.warehouse_url()
    runs.migrate(url)
    lock = psycopg2.connect(url)
    try:
        with lock.cursor() as cur:
            cur.execute("select pg_try_advisory_lock(%s)", (lock_key(pipe.name),))
            if not cur.fetchone()[0]:
                raise PipelineBusyError(
                    f"pipeline {pipe.name!r} is already running; wait for it to finish"
                )
        result = RunResult(run_id=runs.new_run_id(pipe.name), pipeline=pipe.name)
        runs.start_run(url, result.run_id, pipe.name, orchestrator)
        executor = StepRunner(
            config, pipe, result, url, full_refresh=full_refresh, progress=progress
        )
        _walk(executor, the_plan, listener)
        if result.status == "running":
            result.status = "succeeded"
        result.duration_s = time.monotonic() - result.started
        runs.finish_run(url, result.run_id, result.status, result.error)
        return result
    finally:
        lock.close()
