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
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psutil
import psycopg2

from elt import dbt, notify, publish, runs, settings
from elt.config import Pipeline, ProjectConfig
from elt.spec import Plan, Step, plan


class RunError(RuntimeError):
    """A step failed; the message says which and why."""


class PipelineBusyError(RunError):
    """Another run of the same pipeline holds the lock."""


@dataclass
class RunResult:
    """What one run did."""

    run_id: str
    pipeline: str
    status: str = "running"
    started: float = field(default_factory=time.monotonic)
    duration_s: float = 0.0
    steps: list[runs.StepRecord] = field(default_factory=list)
    loads: list[runs.LoadRecord] = field(default_factory=list)
    dbt: dbt.DbtOutcome | None = None
    published: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def report(self) -> notify.RunReport:
        """The notification/summary view of this run."""
        rows: dict[str, int] = {}
        for load in self.loads:
            key = f"{load.source}.{load.table}"
            rows[key] = rows.get(key, 0) + load.rows
        outcome = self.dbt
        return notify.RunReport(
            pipeline=self.pipeline,
            run_id=self.run_id,
            status=self.status,
            duration_s=self.duration_s,
            rows=rows,
            models_built=outcome.count("model", "success") if outcome else 0,
            tests_passed=outcome.count("test", "pass") if outcome else 0,
            failed_checks=[f"{r.unique_id}: {r.message or r.status}" for r in outcome.failed]
            if outcome
            else [],
            warnings=[f"{r.unique_id}: {r.message or r.status}" for r in outcome.warned]
            if outcome
            else [],
            error=self.error,
        )


Listener = Callable[[str, Step, runs.StepRecord | None], None]


def _lock_key(pipeline: str) -> int:
    return int.from_bytes(hashlib.sha256(f"elt-run:{pipeline}".encode()).digest()[:8], "big") >> 1


class _Executor:
    """Runs one step at a time and records it."""

    def __init__(self, config: ProjectConfig, pipe: Pipeline, result: RunResult, url: str):
        self.config, self.pipe, self.result, self.url = config, pipe, result, url
        self.full_refresh = False

    def ingest(self, step: Step) -> tuple[int, dict]:
        from ingestion.runner import ingest

        source = self.config.sources[step.source]
        outcome = ingest(source, full_refresh=self.full_refresh, destination_url=self.url)
        load_id = outcome.load_ids[-1] if outcome.load_ids else ""
        per_table = max(outcome.duration_s / max(len(outcome.rows), 1), 0.0)
        loads = [
            runs.LoadRecord(step.source, table, count, load_id, per_table, outcome.status)
            for table, count in outcome.rows.items()
        ]
        runs.record_loads(self.url, self.result.run_id, loads)
        self.result.loads += loads
        return sum(outcome.rows.values()), {"load_ids": outcome.load_ids, "rows": outcome.rows}

    def transform(self, step: Step) -> tuple[int, dict]:
        spec = self.pipe.dbt
        args = [*dbt.selection_args(spec.select, spec.exclude), "--threads", str(spec.threads)]
        if spec.full_refresh or self.full_refresh:
            args.append("--full-refresh")
        outcome = dbt.invoke("build", args)
        self.result.dbt = outcome
        runs.record_dbt_results(self.url, self.result.run_id, outcome.results)
        if outcome.error and not outcome.results:
            raise RunError(f"dbt build could not run: {outcome.error}")
        built = outcome.count("model", "success")
        return built, {"models": built, "tests": outcome.count("test")}

    def quality(self, step: Step) -> tuple[int, dict]:
        outcome = self.result.dbt
        failed = outcome.failed if outcome else []
        if failed:
            names = ", ".join(r.unique_id.split(".")[-1] for r in failed[:10])
            raise RunError(
                f"quality gate closed: {len(failed)} dbt node(s) failed or were skipped ({names});"
                " nothing was published"
            )
        return 0, {"warnings": len(outcome.warned) if outcome else 0}

    def publish(self, step: Step) -> tuple[int, dict]:
        published = publish.publish(self.url)
        self.result.published = published.tables
        return sum(published.tables.values()), {"tables": published.tables}

    def export(self, step: Step) -> tuple[int, dict]:
        raise RunError(
            f"pipeline {self.pipe.name!r} declares `export`, which this version cannot run yet;"
            " remove `export` from pipelines.yml"
        )

    def notify(self, step: Step) -> tuple[int, dict]:
        report = self.result.report()
        if report.event not in self.pipe.notify.on:
            return 0, {"sent": 0}
        return 0, {"sent": notify.send(self.pipe.notify.urls, report)}


def _measure(
    fn: Callable[[], tuple[int, dict]], step: Step
) -> tuple[runs.StepRecord, Exception | None]:
    """Run one step, timing it and sampling CPU and peak memory; never raises."""
    process = psutil.Process()
    cpu_before = sum(process.cpu_times()[:2])
    started = datetime.now(UTC)
    status, rows, detail, error = "succeeded", None, {}, None
    try:
        rows, detail = fn()
    except Exception as exc:  # recorded, then reported by the caller
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


def _walk(executor: _Executor, the_plan: Plan, listener: Listener | None) -> None:
    result = executor.result
    for step in the_plan.steps:
        if result.status == "failed" and step.trigger != "all_done":
            continue
        if step.kind == "notify":  # the message reports the run's outcome, so settle it first
            result.status = "succeeded" if result.status == "running" else result.status
            result.duration_s = time.monotonic() - result.started
        if listener:
            listener("start", step, None)
        record, error = _measure(lambda s=step: getattr(executor, s.kind)(s), step)
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
            cur.execute("select pg_try_advisory_lock(%s)", (_lock_key(pipe.name),))
            if not cur.fetchone()[0]:
                raise PipelineBusyError(
                    f"pipeline {pipe.name!r} is already running; wait for it to finish"
                )
        result = RunResult(run_id=runs.new_run_id(pipe.name), pipeline=pipe.name)
        runs.start_run(url, result.run_id, pipe.name, orchestrator)
        executor = _Executor(config, pipe, result, url)
        executor.full_refresh = full_refresh
        _walk(executor, the_plan, listener)
        if result.status == "running":
            result.status = "succeeded"
        result.duration_s = time.monotonic() - result.started
        runs.finish_run(url, result.run_id, result.status, result.error)
        return result
    finally:
        lock.close()
