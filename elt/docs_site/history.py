"""What the portal shows, read from ``elt_meta`` (runs, loads, checks, dbt results) and dlt.

Plain dataclasses, so the page rendering is testable without a database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg2.extensions import cursor

from elt import runs

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

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.status == "succeeded"


@dataclass
class FailedCheck:
    """A check that failed in a run: a GX expectation or a dbt test."""

    key: str  # unique within the site; names the check's page
    run_id: str
    kind: str  # "gx" | "dbt"
    name: str
    table: str | None
    column: str | None
    severity: str
    observed: str
    details: dict[str, Any] = field(default_factory=dict)
    suite: str | None = None
    stage: str | None = None


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
    failed_checks: list[FailedCheck]
    freshness: list[SourceFreshness]

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


def load(url: str, *, limit: int = 50) -> History:
    """Read the newest ``limit`` runs and their loads, checks and the sources' freshness."""
    with runs.connect(url) as conn, conn.cursor() as cur:
        if not _exists(cur, f"{SCHEMA}.runs"):
            return History(runs=[], failed_checks=[], freshness=[])
        has_checks = _exists(cur, f"{SCHEMA}.checks")
        summaries = _runs(cur, limit, has_checks)
        ids = [run.run_id for run in summaries]
        _attach_tables(cur, summaries)
        failed = _failed_checks(cur, ids, has_checks)
        freshness = _freshness(cur)
    return History(runs=summaries, failed_checks=failed, freshness=freshness)


def _runs(cur: cursor, limit: int, has_checks: bool) -> list[RunSummary]:
    checks = (
        f"(select count(*) filter (where success) from {SCHEMA}.checks c"
        " where c.run_id = r.run_id),"
        f" (select count(*) filter (where not success) from {SCHEMA}.checks c"
        " where c.run_id = r.run_id)"
        if has_checks
        else "0, 0"
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
            checks_passed=int(row[8]) + int(row[10]),
            checks_failed=int(row[9]) + int(row[11]),
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


def _failed_checks(cur: cursor, run_ids: list[str], has_checks: bool) -> list[FailedCheck]:
    failed: list[FailedCheck] = []
    if has_checks:
        cur.execute(
            "select check_id, run_id, expectation_name, table_name, column_name, severity,"
            " observed_value, unexpected_percent, details, suite, stage"
            f" from {SCHEMA}.checks where run_id = any(%s) and not success"
            " order by checked_at desc, check_id",
            (run_ids,),
        )
        for row in cur.fetchall():
            details = dict(row[8] or {})
            if row[7] is not None:
                details["unexpected_percent"] = row[7]
            failed.append(
                FailedCheck(
                    key=f"gx-{row[0]}",
                    run_id=row[1],
                    kind="gx",
                    name=row[2],
                    table=row[3],
                    column=row[4],
                    severity=row[5],
                    observed=_observed_text(row[6]),
                    details=details,
                    suite=row[9],
                    stage=row[10],
                )
            )
    failed += _failed_dbt_tests(cur, run_ids)
    return failed


def _failed_dbt_tests(cur: cursor, run_ids: list[str]) -> list[FailedCheck]:
    cur.execute(
        "select run_id, unique_id, status, failures, message"
        f" from {SCHEMA}.dbt_results where run_id = any(%s) and resource_type = 'test'"
        " and status = any(%s) order by run_id desc, unique_id",
        (run_ids, list(_DBT_FAILED)),
    )
    failed = []
    for index, (run_id, unique_id, status, failures, message) in enumerate(cur.fetchall()):
        observed = f"{failures:,} failing row(s)" if failures is not None else status
        failed.append(
            FailedCheck(
                key=f"dbt-{index}-{unique_id.split('.')[-1]}"[:120],
                run_id=run_id,
                kind="dbt",
                name=unique_id.split(".")[-2] if unique_id.count(".") >= 2 else unique_id,
                table=None,
                column=None,
                severity="error" if status != "fail" else "fail",
                observed=observed,
                details={"unique_id": unique_id, "status": status, "message": message},
            )
        )
    return failed


def _observed_text(value: Any) -> str:
    """An observed value from jsonb as short readable text."""
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _freshness(cur: cursor) -> list[SourceFreshness]:
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
