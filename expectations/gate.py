"""The quality gate: run a pipeline's GX checks on one stage, record them, build Data Docs.

    outcome = run_quality(config, "jaffle_daily", run_id=rid, url=url, stage="audit")
    if outcome.blocking: ...   # failed checks of severity fail: do not publish

``stage="audit"`` checks the marts dbt built in the audit schema (before publish);
``stage="raw"`` checks raw tables after ingest: whole tables, or with ``load_id`` only the
rows of that dlt load (the sources it belongs to are looked up in ``elt_meta.loads``, or
named with ``source``). Every check is written to ``elt_meta.checks``; ``warn`` checks are
recorded and reported, never blocking. GX is imported only when there is something to run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg2 import sql

from elt import runs, settings
from elt.config import Pipeline, ProjectConfig
from expectations import context as gx_context
from expectations import docs, sync
from expectations.anomaly import run_anomaly_checks
from expectations.plan import (
    QualityConfigError,
    SuitePlan,
    checkpoint_name,
    for_stage,
    generated_suites,
    handwritten_suites,
)
from expectations.results import (
    CheckResult,
    check_from_result,
    format_observed,
    json_safe,
    missing_table_check,
)
from expectations.rules import observed_query
from expectations.samples import key_columns
from expectations.targets import STAGES, Stage, Target

__all__ = ["CheckResult", "QualityConfigError", "QualityOutcome", "run_quality"]


@dataclass
class QualityOutcome:
    """What one run of the gate found."""

    pipeline: str
    stage: Stage
    checks: list[CheckResult] = field(default_factory=list)
    docs_index: Path | None = None
    duration_s: float = 0.0

    @property
    def blocking(self) -> list[CheckResult]:
        """Failed checks of severity ``fail``: the gate is closed when there is any."""
        return [check for check in self.checks if check.blocking]

    @property
    def warnings(self) -> list[CheckResult]:
        """Failed checks of severity ``warn``: reported, never blocking."""
        return [check for check in self.checks if check.warning]

    @property
    def passed(self) -> bool:
        """True when nothing blocks."""
        return not self.blocking

    def describe(self, checks: list[CheckResult] | None = None, limit: int = 10) -> list[str]:
        """One line per check (default: the blocking ones), for messages and notifications."""
        chosen = self.blocking if checks is None else checks
        return [
            f"{check.suite}: {check.expectation_name} (observed {format_observed(check)})"
            for check in chosen[:limit]
        ]


def run_quality(
    config: ProjectConfig,
    pipeline: Pipeline | str,
    *,
    run_id: str,
    url: str,
    stage: Stage,
    load_id: str | None = None,
    source: str | None = None,
) -> QualityOutcome:
    """Run the pipeline's checks of ``stage``, record them in elt_meta.checks, build Data Docs.

    At the raw stage the anomaly rules (volume, freshness) run beside the GX suites."""
    started = time.monotonic()
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)} (got {stage!r})")
    pipe = config.pipeline(pipeline) if isinstance(pipeline, str) else pipeline
    outcome = QualityOutcome(pipeline=pipe.name, stage=stage)
    schemas = _raw_schemas(url, config, load_id, source) if stage == "raw" else None
    generated = generated_suites(pipe)
    if generated or pipe.quality.suites:
        handwritten = handwritten_suites(pipe, gx_context.suites_dir())
        plans = for_stage([*generated, *handwritten], stage, schemas)
        if plans:  # else nothing to check at this stage: do not pay for importing GX
            gate = _Gate(
                run_id, url, stage, load_id, settings.dbt_schema(), pipe.quality.on_failure, config
            )
            outcome.checks, outcome.docs_index = gate.run(pipe.name, plans, generated, schemas)
    if stage == "raw":
        outcome.checks += run_anomaly_checks(pipe, url=url, load_id=load_id, schemas=schemas)
    runs.record_checks(url, run_id, outcome.checks)
    outcome.duration_s = time.monotonic() - started
    return outcome


def _raw_schemas(
    url: str, config: ProjectConfig, load_id: str | None, source: str | None
) -> set[str] | None:
    """The raw schemas to check: the named source's, else those of the load's sources."""
    if source is not None:
        known = config.sources.get(source)
        return {known.dataset if known else f"raw_{source}"}
    if load_id is None:
        return None
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass(%s) is not null", (f"{runs.SCHEMA}.loads",))
        if not cur.fetchone()[0]:
            return None
        cur.execute(
            f"select distinct source from {runs.SCHEMA}.loads where load_id = %s", (load_id,)
        )
        names = [row[0] for row in cur.fetchall()]
    if not names:
        return None
    return {config.sources[n].dataset if n in config.sources else f"raw_{n}" for n in names}


def _by_table(plans: list[SuitePlan]) -> dict[str, list[SuitePlan]]:
    """The suites of each table (label), in the order given."""
    tables: dict[str, list[SuitePlan]] = {}
    for plan in plans:
        tables.setdefault(plan.target.label, []).append(plan)
    return tables


def _groups(
    pipeline: str,
    stage: Stage,
    plans: list[SuitePlan],
    load_id: str | None,
    schemas: set[str] | None,
) -> dict[str, list[SuitePlan]]:
    """Checkpoint name → the suites it runs."""
    by_load = stage == "raw" and load_id is not None
    if stage == "audit" or (schemas is None and not by_load):
        return {checkpoint_name(pipeline, stage, None, by_load=False): plans} if plans else {}
    groups: dict[str, list[SuitePlan]] = {}
    for plan in plans:
        name = checkpoint_name(pipeline, stage, plan.target.schema, by_load=by_load)
        groups.setdefault(name, []).append(plan)
    return groups


@dataclass
class _Gate:
    """One gate run's settings, shared by its checkpoints."""

    run_id: str
    url: str
    stage: Stage
    load_id: str | None
    audit_schema: str
    on_failure: str
    config: ProjectConfig

    @property
    def by_load(self) -> bool:
        return self.stage == "raw" and self.load_id is not None

    def run(
        self,
        pipeline: str,
        plans: list[SuitePlan],
        generated: list[SuitePlan],
        schemas: set[str] | None,
    ) -> tuple[list[CheckResult], Path | None]:
        """Run the suites' checkpoints: their checks and the Data Docs index."""
        checks: list[CheckResult] = []
        with gx_context.locked():
            context = gx_context.open_context(self.url, self.audit_schema)
            sync.prune_generated(context, pipeline, {plan.name for plan in generated})
            for plan in generated:  # every stage's suite, so the context stays complete
                sync.sync_generated_suite(context, plan)
            results = []
            for name, group in _groups(pipeline, self.stage, plans, self.load_id, schemas).items():
                # one checkpoint per table: GX's result format names the table's key columns
                for table, suites in _by_table(group).items():
                    found, result = self.run_checkpoint(context, f"{name}.{table}", suites)
                    checks += found
                    results += [result] if result is not None else []
            docs_index = docs.build(context, results)
        self.fill_observed(checks, {plan.name: plan for plan in plans})
        return checks, docs_index

    def existing_tables(self, targets: list[Target]) -> set[tuple[str, str]]:
        """The (schema, table) pairs of ``targets`` that exist (tables or views)."""
        wanted = [".".join(target.qualified(self.audit_schema)) for target in targets]
        with runs.connect(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                "select table_schema, table_name from information_schema.tables"
                " where table_schema || '.' || table_name = any(%s)",
                (wanted,),
            )
            return {(schema, table) for schema, table in cur.fetchall()}

    def run_checkpoint(
        self, context: Any, name: str, plans: list[SuitePlan]
    ) -> tuple[list[CheckResult], Any]:
        """Run one checkpoint; a suite whose table is missing becomes one failed check."""
        from great_expectations.core.run_identifier import RunIdentifier

        existing = self.existing_tables([plan.target for plan in plans])
        present = [plan for plan in plans if plan.target.qualified(self.audit_schema) in existing]
        checks = [self.missing_table(plan) for plan in plans if plan not in present]
        if self.by_load:  # a load that brought no rows to a table leaves nothing to check there
            present = [plan for plan in present if self.has_load_rows(plan.target)]
        if not present:
            return checks, None
        validations = [sync.sync_validation(context, p, by_load=self.by_load) for p in present]
        keys = self.key_columns(present[0].target)
        checkpoint = sync.sync_checkpoint(context, name, validations, keys)
        result = checkpoint.run(
            batch_parameters={gx_context.LOAD_ID_COLUMN: self.load_id} if self.by_load else None,
            run_id=RunIdentifier(run_name=self.run_id),
        )
        by_suite = {plan.name: plan for plan in present}
        for suite_result in result.run_results.values():
            plan = by_suite[suite_result.suite_name]
            checks += [
                check_from_result(
                    expectation_result,
                    plan,
                    stage=self.stage,
                    load_id=self.load_id,
                    on_failure=self.on_failure,
                )
                for expectation_result in suite_result.results
            ]
        return checks, result

    def has_load_rows(self, target: Target) -> bool:
        """True when this load wrote rows to ``target`` (GX finds no batch otherwise)."""
        with runs.connect(self.url) as conn, conn.cursor() as cur:
            statement = sql.SQL("select exists (select 1 from {})").format(self.relation(target))
            cur.execute(statement)
            return bool(cur.fetchone()[0])

    def missing_table(self, plan: SuitePlan) -> CheckResult:
        """The failed check standing for a suite whose table does not exist."""
        if plan.generated:
            severities = {rule.severity for rule in plan.rules.values()}
            severity = "fail" if "fail" in severities else "warn"
        else:
            severity = self.on_failure
        return missing_table_check(
            plan,
            stage=self.stage,
            load_id=self.load_id,
            schema=plan.target.qualified(self.audit_schema)[0],
            severity=severity,
        )

    def fill_observed(self, checks: list[CheckResult], plans: dict[str, SuitePlan]) -> None:
        """A failed SQL-based check shows its value: the duplicates, the query's result."""
        todo = []
        for check in checks:
            rule = plans[check.suite].rules.get(check.expectation_name)
            query = observed_query(rule) if rule is not None else None
            if not check.success and query is not None and "error" not in check.details:
                todo.append((check, query, plans[check.suite].target))
        if not todo:
            return
        with runs.connect(self.url) as conn, conn.cursor() as cur:
            for check, query, target in todo:
                cur.execute(query.format(batch=self.relation(target).as_string(conn)))
                check.observed_value = json_safe(cur.fetchone()[0])

    def key_columns(self, target: Target) -> list[str]:
        """The key of ``target`` (``expectations.samples``), if every key column exists: GX
        fails every expectation of the table when one does not."""
        keys = key_columns(self.config, target.schema, target.table)
        if not keys:
            return []
        schema, table = target.qualified(self.audit_schema)
        with runs.connect(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                "select column_name from information_schema.columns"
                " where table_schema = %s and table_name = %s",
                (schema, table),
            )
            present = {row[0] for row in cur.fetchall()}
        return keys if set(keys) <= present else []

    def relation(self, target: Target) -> sql.Composable:
        """What ``{batch}`` means for ``target`` in this run: the table, or one load's rows."""
        schema, table = target.qualified(self.audit_schema)
        relation = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        if not (self.by_load and target.stage == "raw"):
            return relation
        return sql.SQL("(select * from {} where {} = {}) as batch").format(
            relation, sql.Identifier(gx_context.LOAD_ID_COLUMN), sql.Literal(self.load_id)
        )
