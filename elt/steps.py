"""What each kind of plan step does, callable from `elt run`, Airflow tasks or Prefect tasks.

A :class:`StepRunner` holds one run's context (config, pipeline, run id, warehouse URL) and
accumulates what the steps produced in a :class:`RunResult`. Every step records its own
output in ``elt_meta`` so that steps run in different processes (orchestrator tasks) still
add up to one run: the quality gate, for instance, reads the run's dbt results from there.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from elt import dbt, notify, publish, runs, state
from elt import project as dbt_project
from elt.config import Pipeline, ProjectConfig
from elt.marts import Mart, not_built, selected_marts
from elt.project import DbtProject
from elt.publish import PublishResult
from elt.redact import redact
from elt.spec import Step

log = logging.getLogger(__name__)
# what a step returns: the rows it handled (None: not a row count) and its detail record
StepOutput = tuple[int | None, runs.Detail]


class StepError(RuntimeError):
    """A step failed; the message says which and why."""


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
    failed_checks: list[str] = field(default_factory=list)  # quality checks that blocked
    check_warnings: list[str] = field(default_factory=list)  # warn-severity checks that failed
    error: str | None = None

    def report(self) -> notify.RunReport:
        """The notification/summary view of this run."""
        rows: dict[str, int] = {}
        for load in self.loads:
            key = f"{load.source}.{load.table}"
            rows[key] = rows.get(key, 0) + load.rows
        outcome = self.dbt

        def describe(records: list[runs.DbtResultRecord]) -> list[str]:
            return [f"{r.unique_id}: {r.message or r.status}" for r in records]

        return notify.RunReport(
            pipeline=self.pipeline,
            run_id=self.run_id,
            status=self.status,
            duration_s=self.duration_s,
            rows=rows,
            models_built=outcome.count("model", "success") if outcome else 0,
            tests_passed=outcome.count("test", "pass") if outcome else 0,
            failed_checks=(describe(outcome.failed) if outcome else []) + self.failed_checks,
            warnings=(describe(outcome.warned) if outcome else []) + self.check_warnings,
            error=self.error,
        )


def node_name(unique_id: str) -> str:
    """A dbt node's readable name: ``test.elt.not_null_x.ab12`` → ``not_null_x``."""
    parts = unique_id.split(".")
    if parts[0] == "test" and len(parts) == 4:
        return parts[2]
    return ".".join(parts[2:]) or unique_id


def close_gate_on_failed_nodes(url: str, run_id: str) -> None:
    """Raise :class:`StepError` when a dbt node of the run failed or was skipped."""
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"select unique_id, coalesce(message, status) from {runs.SCHEMA}.dbt_results"
            " where run_id = %s and status = any(%s) order by unique_id",
            (run_id, list(dbt.FAILED_STATUSES)),
        )
        failed = cur.fetchall()
    if failed:
        lines = "; ".join(f"{node_name(uid)}: {message}" for uid, message in failed[:10])
        raise StepError(
            f"quality gate closed: {len(failed)} dbt node(s) failed or were skipped"
            f" ({lines}); nothing was published"
        )


class StepRunner:
    """Runs the steps of one run of one pipeline; ``run(step)`` dispatches on its kind."""

    def __init__(
        self,
        config: ProjectConfig,
        pipe: Pipeline,
        result: RunResult,
        url: str,
        *,
        full_refresh: bool = False,
        data_interval: tuple[datetime, datetime] | None = None,
        progress: Callable[[str], None] | None = None,
    ):
        self.config, self.pipe, self.result, self.url = config, pipe, result, url
        self.full_refresh = full_refresh
        self.data_interval = data_interval
        # with a progress callback the caller shows progress itself: keep dbt's console quiet
        self.progress = progress

    def run(self, step: Step) -> StepOutput:
        """Run ``step``; returns (rows it handled, detail for elt_meta.steps)."""
        handlers: dict[str, Callable[[Step], StepOutput]] = {
            "ingest": self.ingest,
            "transform": self.transform,
            "quality": self.quality,
            "publish": self.publish,
            "export": self.export,
            "notify": self.notify,
        }
        if step.kind not in handlers:
            raise StepError(f"{step.id}: no step runner for kind {step.kind!r}")
        return handlers[step.kind](step)

    def _drop_views_on(self, raw_schema: str) -> None:
        """A full refresh makes dlt drop the raw tables, which dbt's views depend on,
        wherever the project puts them (``audit_staging``, the audit schema itself, a dev
        schema): drop those views first (the dbt build recreates them; marts stay published)."""
        from psycopg2 import sql

        with runs.connect(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                "select distinct view_ns.nspname, view.relname"
                " from pg_depend dep"
                " join pg_rewrite rule on rule.oid = dep.objid"
                " join pg_class view on view.oid = rule.ev_class"
                " join pg_namespace view_ns on view_ns.oid = view.relnamespace"
                " join pg_class raw on raw.oid = dep.refobjid"
                " join pg_namespace raw_ns on raw_ns.oid = raw.relnamespace"
                " where raw_ns.nspname = %s and view.oid <> raw.oid"
                " and view.relkind = 'v'",
                (raw_schema,),
            )
            for schema, view in cur.fetchall():
                cur.execute(
                    sql.SQL("drop view if exists {} cascade").format(sql.Identifier(schema, view))
                )

    def ingest(self, step: Step) -> StepOutput:
        """Load one source with dlt and record its loads."""
        from ingestion.runner import ingest

        if step.source is None:
            raise StepError(f"{step.id}: an ingest step names no source")
        source = self.config.sources[step.source]
        if self.full_refresh:
            self._drop_views_on(source.dataset)
        outcome = ingest(
            source,
            full_refresh=self.full_refresh,
            destination_url=self.url,
            data_interval=self.data_interval,
            progress=self.progress,
        )
        load_id = outcome.load_ids[-1] if outcome.load_ids else ""
        per_table = outcome.duration_s / max(len(outcome.rows), 1)
        loads = [
            runs.LoadRecord(step.source, table, count, load_id, per_table, outcome.status)
            for table, count in outcome.rows.items()
        ]
        runs.record_loads(self.url, self.result.run_id, loads)
        self.result.loads += loads
        checks = self._check("raw", load_id=load_id or None, source=step.source)
        detail = {
            "load_ids": outcome.load_ids,
            "rows": outcome.rows,
            "checks": checks,
            # the tables' sizes after the load: the portal tells new rows from re-merged ones
            "table_rows": runs.table_rows(self.url, source.dataset, list(outcome.rows)),
        }
        return sum(outcome.rows.values()), detail

    def transform(self, step: Step) -> StepOutput:
        """``dbt build`` the pipeline's selection into the audit schema."""
        spec = self.pipe.dbt
        args = [*dbt.selection_args(spec.select, spec.exclude), "--threads", str(spec.threads)]
        if spec.full_refresh or self.full_refresh:
            args.append("--full-refresh")
        outcome = self.dbt_build(args)
        self.result.dbt = outcome
        runs.record_dbt_results(self.url, self.result.run_id, outcome.results)
        if outcome.error and not outcome.results:
            raise StepError(f"dbt build could not run: {outcome.error}")
        built = outcome.count("model", "success")
        return built, {"models": built, "tests": outcome.count("test")}

    @functools.cached_property
    def project(self) -> DbtProject:
        """The dbt project this pipeline builds (``dbt.project_dir``)."""
        return dbt_project.of(self.config, self.pipe)

    def dbt_build(self, args: list[str]) -> dbt.DbtOutcome:
        """Run ``dbt build args`` in-process (an orchestrator may run it its own way)."""
        return dbt.invoke(
            "build",
            args,
            project=self.project,
            quiet=self.progress is not None,
            on_node=self._dbt_progress(),
        )

    def _dbt_progress(self) -> Callable[[str, str], None] | None:
        if self.progress is None:
            return None
        done = 0

        progress = self.progress

        def on_node(unique_id: str, status: str) -> None:
            nonlocal done
            done += 1
            progress(f"dbt: {done} nodes done ({unique_id.split('.')[-1]}: {status})")

        return on_node

    def _check(self, stage: Literal["raw", "audit"], **where: str | None) -> int:
        """Run the pipeline's GX checks of one stage; raise when a `fail` check failed."""
        from expectations.gate import run_quality

        outcome = run_quality(
            self.config, self.pipe, run_id=self.result.run_id, url=self.url, stage=stage, **where
        )
        self.result.check_warnings += outcome.describe(outcome.warnings)
        if outcome.blocking:
            self.result.failed_checks += outcome.describe(outcome.blocking)
            raise StepError(
                f"quality gate closed at the {stage} stage: "
                + "; ".join(outcome.describe(outcome.blocking))
                + "; nothing was published"
            )
        return len(outcome.checks)

    def _gate_preconditions(self) -> None:
        """What an orchestrator alone can tell before the gate judges (none here)."""

    def quality(self, step: Step) -> StepOutput:
        """The gate: closed when a dbt node of this run failed or was skipped, or a GX
        check of severity `fail` failed; `warn` checks are recorded and notified only."""
        close_gate_on_failed_nodes(self.url, self.result.run_id)
        self._gate_preconditions()
        if self.pipe.publish == "write_audit_publish":
            self._selected_marts_built()
        checks = self._check("audit")
        warned = len(self.result.dbt.warned) if self.result.dbt else 0
        warned += len(self.result.check_warnings)
        return checks, {"checks": checks, "warnings": warned}

    @functools.cached_property
    def marts(self) -> list[Mart]:
        """The models this pipeline publishes (the rule in ``elt.marts``)."""
        spec = self.pipe.dbt
        return selected_marts(self.project, spec.select, spec.exclude)

    def _selected_marts_built(self) -> None:
        """Close the gate, by name, when a mart the selection publishes was not built."""
        with runs.connect(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                f"select unique_id from {runs.SCHEMA}.dbt_results"
                " where run_id = %s and status = 'success'",
                (self.result.run_id,),
            )
            built = [row[0] for row in cur.fetchall()]
        missing = not_built(self.marts, built)
        if missing:
            raise StepError(
                f"quality gate closed: selected mart(s) {', '.join(missing)} were not built"
                " in this run; nothing was published"
            )

    def publish(self, step: Step) -> StepOutput:
        """Swap the pipeline's selected marts into the published schema."""
        published = publish.publish(self.url, marts=self.marts)
        self.result.published = published.tables
        detail = {"tables": published.tables, "state_stored": self._store_state(published)}
        return sum(published.tables.values()), detail

    def _store_state(self, published: PublishResult) -> bool:
        """Keep this build's manifest as the project's production state (``elt dev``/``elt
        ci`` defer to it); a failure here is logged, never a failed publish."""
        try:
            return state.store(
                self.url,
                self.project,
                pipeline=self.pipe.name,
                run_id=self.result.run_id,
                marts=self.marts,
                published_schema=published.schema,
            )
        except Exception as exc:  # the marts are published; the state is a convenience
            log.warning(
                "could not store the dbt state of %s: %s", self.project.name, redact(str(exc))
            )
            return False

    def export(self, step: Step) -> StepOutput:
        """Write the pipeline's export models from the published schema to its lake as
        Parquet, partitioned by run date; skipped when ``to`` is an unset ``env:NAME?``."""
        from elt.config_values import env_ref_name, is_env_ref, resolve_env
        from elt.export import export_models, run_date_for

        spec = self.pipe.export
        if spec is None:
            return 0, {"skipped": "the pipeline declares no export"}
        if is_env_ref(spec.to) and resolve_env(spec.to) is None:
            name = env_ref_name(spec.to)[0]
            return 0, {"skipped": f"{name} is not set: nothing exported"}
        exported = export_models(
            spec.models,
            spec.to,
            run_date=run_date_for(self.data_interval),
            url=self.url,
            run_id=self.result.run_id,
        )
        detail = {
            "run_date": exported.run_date.isoformat() if exported.run_date else None,
            "format": spec.format,
            "rows": exported.rows,
            "files": exported.files,
        }
        return sum(exported.rows.values()), detail

    def notify(self, step: Step) -> StepOutput:
        """Send the run report to the pipeline's notify URLs for the events it asks for, then
        emit the run's lineage events. The alert goes first and a lineage failure is only
        logged: a run that lost its warehouse still alerts from memory."""
        report = self.result.report()
        sent = 0
        if report.event in self.pipe.notify.on:
            sent = notify.send(self.pipe.notify.urls, report)
        return 0, {"sent": sent, "event": report.event, "lineage_events": self._lineage()}

    def _lineage(self) -> int:
        from elt.lineage import emit_run_events

        try:
            return emit_run_events(self.config, self.pipe, self.result.run_id, self.url)
        except Exception as exc:  # lineage is a by-product: it never costs the run its alert
            log.warning("could not emit the run's lineage events: %s", redact(str(exc)))
            return 0
