"""One Airflow DAG run is one elt run: its id, and its state rebuilt from ``elt_meta``.

Airflow runs every task in its own process, so nothing is shared in memory: each task
derives the same elt run id from the DAG run, writes what it did to ``elt_meta`` and reads
what the others did from there (the notify task rebuilds the whole run's result).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from elt import runs
from elt.dbt import DbtOutcome
from elt.steps import RunResult

ORCHESTRATOR = "airflow"
# The dbt results of the last run this process read them for (run id → unique id → result).
# A worker runs one node task per process and reads only its node's rows; where one process
# runs many node tasks of a run (`elt airflow test`, dag.test()), the second reads every
# node's rows once and the others are answered from here instead of a connection each.
_BUILD_RESULTS: dict[str, dict[str, runs.DbtResultRecord] | None] = {}


def elt_run_id(pipeline: str, airflow_run_id: str, started: datetime) -> str:
    """``<pipeline>-<UTC start>-<12 hex of the Airflow run id>``: sortable like ``elt run``'s
    ids, and the same in every task and every retry of one DAG run."""
    digest = hashlib.sha256(airflow_run_id.encode()).hexdigest()[:12]
    return runs.new_run_id(pipeline, started, digest)


def run_id_from_context(pipeline: str, context: dict[str, Any]) -> str:
    """The elt run id of the DAG run a task (or a DAG callback) belongs to."""
    dag_run = context["dag_run"]
    started = (
        getattr(dag_run, "run_after", None)
        or getattr(dag_run, "logical_date", None)
        or getattr(dag_run, "start_date", None)
    )
    return elt_run_id(pipeline, str(dag_run.run_id), started or datetime.now(UTC))


def load_result(url: str, run_id: str, pipeline: str) -> RunResult:
    """The run as recorded so far: loads, dbt results, steps, published tables, start."""
    result = RunResult(run_id=run_id, pipeline=pipeline)
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"select source, table_name, rows, load_id, coalesce(duration_s, 0), status"
            f" from {runs.SCHEMA}.loads where run_id = %s order by source, table_name",
            (run_id,),
        )
        result.loads = [runs.LoadRecord(*row) for row in cur.fetchall()]
        cur.execute(
            f"select unique_id, resource_type, status, coalesce(execution_time_s, 0),"
            f" rows_affected, failures, message from {runs.SCHEMA}.dbt_results"
            " where run_id = %s order by unique_id",
            (run_id,),
        )
        records = [runs.DbtResultRecord(*row) for row in cur.fetchall()]
        cur.execute(
            f"select step_id, kind, status, started_at, finished_at, rows, peak_rss_mb, cpu_s,"
            f" coalesce(detail, '{{}}'::jsonb) from {runs.SCHEMA}.steps"
            " where run_id = %s order by started_at",
            (run_id,),
        )
        result.steps = [runs.StepRecord(*row) for row in cur.fetchall()]
    if records:
        result.dbt = DbtOutcome(command="build", success=True, results=records)
        result.dbt.success = not result.dbt.failed
    for step in result.steps:
        if step.kind == "publish" and step.status == "succeeded":
            result.published = dict(step.detail.get("tables") or {})
    return result


def run_started_at(url: str, run_id: str) -> datetime | None:
    """When the run's row was opened."""
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"select started_at from {runs.SCHEMA}.runs where run_id = %s", (run_id,))
        row = cur.fetchone()
    return row[0] if row else None


def build_results(url: str, run_id: str, unique_ids: Iterable[str]) -> list[runs.DbtResultRecord]:
    """The recorded dbt results of ``unique_ids`` in run ``run_id``, in id order (the nodes
    without one are left out)."""
    ids = sorted(unique_ids)
    if not ids:
        return []
    if run_id not in _BUILD_RESULTS:  # this process's first question about the run
        _BUILD_RESULTS.clear()
        _BUILD_RESULTS[run_id] = None
        return list(_read_dbt_results(url, run_id, ids).values())
    known = _BUILD_RESULTS[run_id]
    if known is None or not known.keys() >= set(ids):
        known = _BUILD_RESULTS[run_id] = _read_dbt_results(url, run_id, None)
    return [known[uid] for uid in ids if uid in known]


def forget_build_results(run_id: str) -> None:
    """Drop what :func:`build_results` holds for ``run_id`` (its results were just written)."""
    _BUILD_RESULTS.pop(run_id, None)


def _read_dbt_results(
    url: str, run_id: str, unique_ids: list[str] | None
) -> dict[str, runs.DbtResultRecord]:
    where = "" if unique_ids is None else " and unique_id = any(%s)"
    params = (run_id,) if unique_ids is None else (run_id, unique_ids)
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select unique_id, resource_type, status, execution_time_s, rows_affected,"
            f" failures, message from {runs.SCHEMA}.dbt_results"
            f" where run_id = %s{where} order by unique_id",
            params,
        )
        return {row[0]: runs.DbtResultRecord(*row) for row in cur.fetchall()}
