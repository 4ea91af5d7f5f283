"""What the portal shows, read from ``elt_meta`` (runs, loads, checks, dbt results) and dlt.

Plain dataclasses, so the page rendering is testable without a database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg2.extensions import cursor as Cursor

if TYPE_CHECKING:
    from elt.config import ProjectConfig

from dataclasses import dataclass, field
from datetime import datetime

import psycopg2
from psycopg2.extensions import cursor

from elt import runs
from elt.docs_site import catalog
from elt.docs_site.catalog import Catalog

SCHEMA = runs.SCHEMA
# dbt statuses that make a node count as a failed check
_DBT_FAILED = ("fail", "error", "runtime error")


@dataclass
class RunSummary:
    """One run of a pipeline, with its totals."""

    run_id: str
    pipeline: str
    orchestrator: str
    status: str
    started_at: datetime
    duration_s: float | None
    error: str | None
    rows_loaded: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    tables: dict[str, int] = field(default_factory=dict)  # "source.table" -> rows
    warnings: int = 0  # warn-severity checks that failed
    steps: dict[str, str] = field(default_factory=dict)  # step id -> status, in plan order
    skipped: list[str] = field(default_factory=list)  # dbt nodes skipped after a failure
    published: bool = False

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.status == "succeeded"

    @property
    def label(self) -> str:
        """The status a reader sees: ``succeeded with warnings`` when warn checks failed."""
        if self.ok and self.warnings:
            return "succeeded with warnings"
        return self.status


@dataclass
class SourceFreshness:
    """When a source last loaded: from elt_meta.loads and from dlt's own ``_dlt_loads``."""

    source: str
    last_loaded_at: datetime | None
    dataset: str | None = None
    dlt_last_load_at: datetime | None = None


@dataclass
class History:
    """Everything the home page needs."""

    runs: list[RunSummary]
    freshness: list[SourceFreshness]
    catalog: Catalog = field(default_factory=Catalog)

    def latest_per_pipeline(self) -> list[RunSummary]:
        """The newest run of each pipeline, pipelines in name order."""
        latest: dict[str, RunSummary] = {}
        for run in self.runs:  # newest first
            latest.setdefault(run.pipeline, run)
        return [latest[name] for name in sorted(latest)]


def _exists(cur: cursor, table: str) -> bool:
    cur.execute("select to_regclass(%s) is not null", (table,))
    row = cur.fetchone()
    return row is not None and bool(row[0])


def load(
    url: str,
    *,
    limit: int = 50,
    config: ProjectConfig | None = None,
    manifest: dict[str, Any] | None = None,
) -> History:
    """Read the newest ``limit`` runs, their loads, steps and checks, the catalog of marts
    and raw tables, and the sources' freshness."""
    with runs.connect(url) as conn, conn.cursor() as cur:
        if not _exists(cur, f"{SCHEMA}.checks"):
            return History(runs=[], freshness=[])
        summaries = _runs(cur, limit)
        ids = [run.run_id for run in summaries]
        _attach_tables(cur, summaries)
        _attach_steps(cur, summaries)
        the_catalog = catalog.load(cur, ids, config, manifest)
        sample_failing_rows(cur, the_catalog)
        freshness = _freshness(cur)
    return History(runs=summaries, freshness=freshness, catalog=the_catalog)


def _attach_steps(cur: Cursor, summaries: list[RunSummary]) -> None:
    by_id = {run.run_id: run for run in summaries}
    cur.execute(
        f"select run_id, step_id, kind, status from {SCHEMA}.steps where run_id = any(%s)"
        " order by started_at",
        (list(by_id),),
    )
    for run_id, step_id, kind, status in cur.fetchall():
        by_id[run_id].steps[step_id] = status
        by_id[run_id].published |= kind == "publish" and status == "succeeded"
    cur.execute(
        f"select run_id, unique_id from {SCHEMA}.dbt_results where run_id = any(%s)"
        " and status = 'skipped' and resource_type = 'model' order by unique_id",
        (list(by_id),),
    )
    for run_id, unique_id in cur.fetchall():
        by_id[run_id].skipped.append(unique_id.split(".")[-1])


def sample_failing_rows(cur: Cursor, the_catalog: catalog.Catalog, limit: int = 10) -> None:
    """Attach the failing rows dbt stored (``store_failures``) to open dbt checks."""
    for check in the_catalog.checks:
        if check.kind != "dbt" or check.status != "open" or not check.failures_relation:
            continue
        cur.execute("savepoint sample")
        try:
            cur.execute(f"select * from {check.failures_relation} limit %s", (limit,))
        except psycopg2.Error:  # not stored (yet), or dropped by a later build
            cur.execute("rollback to savepoint sample")
            continue
        columns = [d[0] for d in cur.description or ()]
        check.latest.details["sample"] = {
            "columns": columns,
            "rows": [[catalog.observed_text(v) for v in row] for row in cur.fetchall()],
        }


def _runs(cur: Cursor, limit: int) -> list[RunSummary]:
    checks = (
        f"(select count(*) filter (where success) from {SCHEMA}.checks c"
        " where c.run_id = r.run_id),"
        f" (select count(*) filter (where not success) from {SCHEMA}.checks c"
        " where c.run_id = r.run_id),"
        f" (select count(*) filter (where not success and severity = 'warn')"
        f" from {SCHEMA}.checks c where c.run_id = r.run_id)"
        f" + (select count(*) from {SCHEMA}.dbt_results d where d.run_id = r.run_id"
        "  and d.resource_type = 'test' and d.status = 'warn')"
    )
    cur.execute(
        "select r.run_id, r.pipeline, r.orchestrator, r.status, r.started_at, r.duration_s,"
        f" r.error, (select coalesce(sum(rows), 0) from {SCHEMA}.loads l"
        " where l.run_id = r.run_id),"
        f" {checks},"
        f" (select count(*) from {SCHEMA}.dbt_results d where d.run_id = r.run_id"
        "  and d.resource_type = 'test' and d.status in ('pass', 'warn')),"
        f" (select count(*) from {SCHEMA}.dbt_results d where d.run_id = r.run_id"
        "  and d.resource_type = 'test' and d.status = any(%s))"
        f" from {SCHEMA}.runs r order by r.started_at desc limit %s",
        (list(_DBT_FAILED), limit),
    )
    return [
        RunSummary(
            run_id=row[0],
            pipeline=row[1],
            orchestrator=row[2],
            status=row[3],
            started_at=row[4],
            duration_s=row[5],
            error=row[6],
            rows_loaded=int(row[7]),
            checks_passed=int(row[8]) + int(row[11]),
            checks_failed=int(row[9]) + int(row[12]),
            warnings=int(row[10]),
        )
        for row in cur.fetchall()
    ]


def _attach_tables(cur: cursor, summaries: list[RunSummary]) -> None:
    by_id = {run.run_id: run for run in summaries}
    if not by_id:
        return
    cur.execute(
        f"select run_id, source, table_name, sum(rows) from {SCHEMA}.loads"
        " where run_id = any(%s) group by 1, 2, 3 order by 2, 3",
        (list(by_id),),
    )
    for run_id, source, table, count in cur.fetchall():
        by_id[run_id].tables[f"{source}.{table}"] = int(count)


def _freshness(cur: Cursor) -> list[SourceFreshness]:
    cur.execute(
        f"select source, max(loaded_at) from {SCHEMA}.loads where status = 'succeeded'"
        " group by source order by source"
    )
    sources = {name: SourceFreshness(source=name, last_loaded_at=at) for name, at in cur.fetchall()}
    cur.execute(
        "select table_schema from information_schema.tables where table_name = '_dlt_loads'"
        " order by table_schema"
    )
    for (dataset,) in cur.fetchall():
        cur.execute(f'select max(inserted_at) from "{dataset}"._dlt_loads where status = 0')
        row = cur.fetchone()
        at = row[0] if row else None
        name = dataset.removeprefix("raw_")
        entry = sources.setdefault(name, SourceFreshness(source=name, last_loaded_at=None))
        entry.dataset, entry.dlt_last_load_at = dataset, at
    return [sources[name] for name in sorted(sources)]
