"""Run metadata in the warehouse schema ``elt_meta``: runs, steps, loads, dbt results.

The schema is created by versioned migrations (``MIGRATIONS``), applied in order under an
advisory lock and recorded in ``elt_meta.schema_version``; later features add a migration
instead of scattering ``CREATE TABLE IF NOT EXISTS``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg2
import psycopg2.extras
import psycopg2.sql

SCHEMA = "elt_meta"
# what a step records beside its numbers (JSON in elt_meta.steps.detail)
Detail = dict[str, Any]
_MIGRATION_LOCK = 0x656C74  # any constant shared by every process migrating this schema

MIGRATIONS: list[str] = [
    # 1: runs, steps, loads, dbt results
    """
    create table elt_meta.runs (
        run_id text primary key,
        pipeline text not null,
        orchestrator text not null,
        status text not null,
        started_at timestamptz not null,
        finished_at timestamptz,
        duration_s double precision,
        error text
    );
    create table elt_meta.steps (
        run_id text not null references elt_meta.runs (run_id) on delete cascade,
        step_id text not null,
        kind text not null,
        status text not null,
        started_at timestamptz not null,
        finished_at timestamptz,
        duration_s double precision,
        rows bigint,
        peak_rss_mb double precision,
        cpu_s double precision,
        detail jsonb,
        primary key (run_id, step_id)
    );
    create table elt_meta.loads (
        run_id text not null,
        load_id text not null,
        source text not null,
        table_name text not null,
        rows bigint not null,
        duration_s double precision,
        status text not null,
        loaded_at timestamptz not null default now(),
        primary key (run_id, source, table_name, load_id)
    );
    create table elt_meta.dbt_results (
        run_id text not null,
        unique_id text not null,
        resource_type text not null,
        status text not null,
        execution_time_s double precision,
        rows_affected bigint,
        failures bigint,
        message text,
        primary key (run_id, unique_id)
    );
    """,
]


def new_run_id(pipeline: str, started: datetime | None = None, token: str | None = None) -> str:
    """A sortable run id: ``<pipeline>-<UTC start>-<token>``. Orchestrators pass a token
    derived from their own run id (the same in every task and retry of that run); without
    one it is random."""
    stamp = (started or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{pipeline}-{stamp}-{token or uuid.uuid4().hex[:12]}"


@contextmanager
def connect(url: str) -> Iterator[psycopg2.extensions.connection]:
    """A psycopg2 connection that commits on success and always closes."""
    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def migrate(url: str) -> int:
    """Apply pending migrations; returns the schema version now in place."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        cur.execute(f"create schema if not exists {SCHEMA}")
        cur.execute(
            f"create table if not exists {SCHEMA}.schema_version ("
            " version int primary key, applied_at timestamptz not null default now())"
        )
        cur.execute(f"select coalesce(max(version), 0) from {SCHEMA}.schema_version")
        row = cur.fetchone()
        current = row[0] if row else 0
        for version, ddl in enumerate(MIGRATIONS, start=1):
            if version > current:
                cur.execute(ddl)
                cur.execute(
                    f"insert into {SCHEMA}.schema_version (version) values (%s)", (version,)
                )
        return len(MIGRATIONS)


@dataclass
class LoadRecord:
    """One table loaded by one dlt load."""

    source: str
    table: str
    rows: int
    load_id: str
    duration_s: float
    status: str = "succeeded"


@dataclass
class StepRecord:
    """One step of a run, as recorded in ``elt_meta.steps``."""

    step_id: str
    kind: str
    status: str
    started_at: datetime
    finished_at: datetime
    rows: int | None = None
    peak_rss_mb: float | None = None
    cpu_s: float | None = None
    detail: Detail = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Wall time of the step."""
        return (self.finished_at - self.started_at).total_seconds()


@dataclass
class DbtResultRecord:
    """One dbt node result."""

    unique_id: str
    resource_type: str
    status: str
    execution_time_s: float
    rows_affected: int | None = None
    failures: int | None = None
    message: str | None = None


def open_run(url: str, run_id: str, pipeline: str, orchestrator: str, *, reopen: bool) -> None:
    """Insert the run in status ``running``; a run of that id that already ended (an Airflow
    task cleared and run again) is set back to ``running`` when ``reopen``."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"insert into {SCHEMA}.runs (run_id, pipeline, orchestrator, status, started_at)"
            " values (%s, %s, %s, 'running', now()) on conflict (run_id) do nothing",
            (run_id, pipeline, orchestrator),
        )
        if cur.rowcount == 0 and reopen:
            cur.execute(
                f"update {SCHEMA}.runs set status = 'running', finished_at = null, error = null"
                " where run_id = %s and status <> 'running'",
                (run_id,),
            )


def finish_run(
    url: str, run_id: str, status: str, error: str | None = None, *, only_running: bool = False
) -> None:
    """Close a run with its final status and duration (``only_running``: unless another
    process closed it already)."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"update {SCHEMA}.runs set status = %s, error = %s, finished_at = now(),"
            " duration_s = extract(epoch from now() - started_at) where run_id = %s"
            + (" and status = 'running'" if only_running else ""),
            (status, error, run_id),
        )


def running_runs(url: str, pipeline: str | None = None) -> list[tuple[str, str]]:
    """(run id, pipeline) of the runs in status ``running``, oldest first."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"select run_id, pipeline from {SCHEMA}.runs where status = 'running'"
            " and (%s::text is null or pipeline = %s) order by started_at",
            (pipeline, pipeline),
        )
        return [(run_id, name) for run_id, name in cur.fetchall()]


def fail_running_run(url: str, run_id: str, reason: str) -> tuple[str, str, float] | None:
    """Close a still-``running`` run as failed with ``reason``; returns (pipeline,
    orchestrator, duration) when this call closed it, None when it was not running."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"update {SCHEMA}.runs set status = 'failed', error = %s, finished_at = now(),"
            " duration_s = extract(epoch from now() - started_at)"
            " where run_id = %s and status = 'running'"
            " returning pipeline, orchestrator, duration_s",
            (reason, run_id),
        )
        row = cur.fetchone()
    return (row[0], row[1], float(row[2])) if row else None


def record_step(url: str, run_id: str, step: StepRecord) -> None:
    """Insert or replace one step's record (a retried step overwrites its last attempt)."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"insert into {SCHEMA}.steps (run_id, step_id, kind, status, started_at, finished_at,"
            " duration_s, rows, peak_rss_mb, cpu_s, detail)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict (run_id, step_id) do update set status = excluded.status,"
            " started_at = excluded.started_at, finished_at = excluded.finished_at,"
            " duration_s = excluded.duration_s, rows = excluded.rows,"
            " peak_rss_mb = excluded.peak_rss_mb, cpu_s = excluded.cpu_s, detail = excluded.detail",
            (
                run_id,
                step.step_id,
                step.kind,
                step.status,
                step.started_at,
                step.finished_at,
                step.duration_s,
                step.rows,
                step.peak_rss_mb,
                step.cpu_s,
                json.dumps(step.detail, default=str),
            ),
        )


def record_loads(url: str, run_id: str, loads: Iterable[LoadRecord]) -> None:
    """Record the tables a source's loads wrote (idempotent per run, source, table, load)."""
    rows = [(run_id, r.load_id, r.source, r.table, r.rows, r.duration_s, r.status) for r in loads]
    if not rows:
        return
    with connect(url) as conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            f"insert into {SCHEMA}.loads (run_id, load_id, source, table_name, rows, duration_s,"
            " status) values %s on conflict (run_id, source, table_name, load_id) do update"
            " set rows = excluded.rows, status = excluded.status",
            rows,
        )


def table_rows(url: str, schema: str, tables: list[str]) -> dict[str, int]:
    """Row counts of the ``tables`` of ``schema`` that exist (after a load)."""
    counts: dict[str, int] = {}
    with connect(url) as conn, conn.cursor() as cur:
        for table in tables:
            cur.execute("select to_regclass(%s)", (f'"{schema}"."{table}"',))
            exists = cur.fetchone()
            if exists is None or exists[0] is None:
                continue
            cur.execute(
                psycopg2.sql.SQL("select count(*) from {}").format(
                    psycopg2.sql.Identifier(schema, table)
                )
            )
            row = cur.fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


def record_dbt_results(url: str, run_id: str, results: Iterable[DbtResultRecord]) -> None:
    """Record dbt node results for a run (a rerun of a node replaces its row)."""
    rows = [
        (
            run_id,
            r.unique_id,
            r.resource_type,
            r.status,
            r.execution_time_s,
            r.rows_affected,
            r.failures,
            r.message,
        )
        for r in results
    ]
    if not rows:
        return
    with connect(url) as conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            f"insert into {SCHEMA}.dbt_results (run_id, unique_id, resource_type, status,"
            " execution_time_s, rows_affected, failures, message) values %s"
            " on conflict (run_id, unique_id) do update set status = excluded.status,"
            " execution_time_s = excluded.execution_time_s,"
            " rows_affected = excluded.rows_affected, failures = excluded.failures,"
            " message = excluded.message",
            rows,
        )


def forget_dbt_results(url: str, run_id: str) -> None:
    """Drop a run's dbt node results (a new build of the whole run supersedes them)."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"delete from {SCHEMA}.dbt_results where run_id = %s", (run_id,))


# -- quality checks (Great Expectations results) -------------------------------------------

MIGRATIONS.append(
    # 2: one row per expectation checked by the quality gate
    """
    create table elt_meta.checks (
        check_id bigserial primary key,
        run_id text not null,
        load_id text,
        stage text not null check (stage in ('raw', 'audit')),
        suite text not null,
        expectation_type text not null,
        expectation_name text not null,
        table_name text not null,
        column_name text,
        severity text not null check (severity in ('fail', 'warn')),
        success boolean not null,
        observed_value jsonb,
        unexpected_percent double precision,
        details jsonb,
        checked_at timestamptz not null default now()
    );
    create index checks_run_idx on elt_meta.checks (run_id, stage);
    """
)


@dataclass
class CheckRecord:
    """One expectation checked on one table by the quality gate."""

    stage: str  # raw | audit
    suite: str
    expectation_type: str  # the GX type, e.g. expect_column_values_to_not_be_null
    expectation_name: str  # the rule's name, or a readable name for hand-written ones
    table_name: str
    column_name: str | None
    severity: str  # fail | warn
    success: bool
    observed_value: object = None
    unexpected_percent: float | None = None
    details: Detail = field(default_factory=dict)
    load_id: str | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def blocking(self) -> bool:
        """Failed, and severe enough to close the gate."""
        return not self.success and self.severity == "fail"

    @property
    def warning(self) -> bool:
        """Failed, but only worth a warning."""
        return not self.success and self.severity == "warn"


def record_checks(url: str, run_id: str, checks: Iterable[CheckRecord]) -> None:
    """Record checks of a run; re-checking a suite (same stage and load) replaces its rows."""
    checks = list(checks)
    if not checks:
        return
    scopes = sorted({(c.stage, c.suite, c.load_id or "") for c in checks})
    rows = [
        (
            run_id,
            c.load_id,
            c.stage,
            c.suite,
            c.expectation_type,
            c.expectation_name,
            c.table_name,
            c.column_name,
            c.severity,
            c.success,
            None if c.observed_value is None else json.dumps(c.observed_value, default=str),
            c.unexpected_percent,
            json.dumps(c.details, default=str),
            c.checked_at,
        )
        for c in checks
    ]
    with connect(url) as conn, conn.cursor() as cur:
        for stage, suite, load_id in scopes:
            cur.execute(
                f"delete from {SCHEMA}.checks where run_id = %s and stage = %s and suite = %s"
                " and coalesce(load_id, '') = %s",
                (run_id, stage, suite, load_id),
            )
        psycopg2.extras.execute_values(
            cur,
            f"insert into {SCHEMA}.checks (run_id, load_id, stage, suite, expectation_type,"
            " expectation_name, table_name, column_name, severity, success, observed_value,"
            " unexpected_percent, details, checked_at) values %s",
            rows,
        )


MIGRATIONS.append(
    # 3: who holds each pipeline's run lease, until when (elt.lease)
    """
    create table elt_meta.leases (
        pipeline text primary key,
        run_id text not null,
        orchestrator text not null,
        holder text not null,
        acquired_at timestamptz not null default now(),
        renewed_at timestamptz not null default now(),
        expires_at timestamptz not null
    );
    """
)
