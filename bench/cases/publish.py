"""Publish at scale: ``elt.publish`` vs the copy it replaced, on the marts of a real run.

``build`` (untimed, once per scale) runs ``elt run jaffle_daily`` from nothing, keeps what
the run's steps took, and moves the audited marts into a holding schema of their own; the
variants then publish that schema, interleaved, as often as the suite asks.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from psycopg2 import sql

PUBLISHED = "bench_published"


SCALE_ENV = "BENCH_PUBLISH_SCALE"  # which scale's marts a variant publishes


def _holding(scale: int) -> str:
    return f"bench_publish_x{scale}"


def _run_file(home: str, scale: int) -> Path:
    return Path(home) / "publish" / f"run_x{scale}.json"


def build(params: dict) -> dict:
    """One ``elt run`` at ``params["scale"]`` from nothing; its marts go to the holding
    schema and its step times to a file that the variants report beside their own."""
    from bench.setups import reset_demo_run
    from elt import roles, runs, settings
    from elt.config import load
    from elt.runner import run_pipeline

    scale = params["scale"]
    os.environ["SHOP_DB_URL"] = params["shop_url"]
    reset_demo_run(settings.warehouse_url())
    started = time.perf_counter()
    result = run_pipeline(load(params["config"]), params["pipeline"], full_refresh=False)
    work = time.perf_counter() - started
    if result.status != "succeeded":
        raise RuntimeError(f"elt run at {scale}×: {result.status}: {result.error}")
    steps = {
        r.step_id: round((r.finished_at - r.started_at).total_seconds(), 3) for r in result.steps
    }
    holding = sql.Identifier(_holding(scale))
    audit = settings.dbt_schema()
    with runs.connect(settings.warehouse_url()) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(holding))
        cur.execute(sql.SQL("create schema {}").format(holding))
        cur.execute(
            sql.SQL("grant usage, create on schema {} to {}").format(
                holding, sql.Identifier(roles.TRANSFORMER)
            )
        )
        cur.execute(
            "select tablename from pg_catalog.pg_tables where schemaname = %s",
            (settings.published_schema(),),
        )
        for (table,) in cur.fetchall():
            cur.execute(
                sql.SQL("alter table {} set schema {}").format(
                    sql.Identifier(audit, table), holding
                )
            )
    path = _run_file(params["home"], scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the process's high-water mark after its last step (steps record getrusage's maxrss)
    peak = max((r.peak_rss_mb or 0.0) for r in result.steps)
    path.write_text(json.dumps({"run_s": round(work, 3), "steps_s": steps, "peak_mib": peak}))
    return {}


def _scale() -> int:
    return int(os.environ[SCALE_ENV])


def _published(params: dict, work: float, rows: int) -> dict:
    run = json.loads(_run_file(params["home"], _scale()).read_text())
    publish_s = run["steps_s"].get("publish")
    return {
        "work_s": work,
        "rows": rows,
        "run_s": run["run_s"],
        "run_publish_s": publish_s,
        "run_publish_share": None if publish_s is None else publish_s / run["run_s"],
        "run_peak_rss_mib": run.get("peak_mib"),
    }


def ours(params: dict) -> dict:
    """``elt.publish.publish`` of the holding schema's marts."""
    from elt import settings
    from elt.publish import publish

    url = settings.warehouse_url()
    started = time.perf_counter()
    result = publish(url, audit=_holding(_scale()), published=PUBLISHED)
    return _published(params, time.perf_counter() - started, sum(result.tables.values()))


def copy(params: dict) -> dict:
    """The publish this replaced: each mart copied into a table that already has its
    indexes (``like … including all``, then ``insert … select``), swapped in one
    transaction."""
    from elt import roles, runs, settings

    holding, staging = _holding(_scale()), f"{PUBLISHED}_copy__next"
    url = settings.warehouse_url()
    rows = 0
    started = time.perf_counter()
    with runs.connect(url) as conn, conn.cursor() as cur:
        roles.set_local_role(cur, roles.TRANSFORMER)
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(staging)))
        cur.execute(sql.SQL("create schema {}").format(sql.Identifier(staging)))
        cur.execute("select tablename from pg_catalog.pg_tables where schemaname = %s", (holding,))
        for (table,) in cur.fetchall():
            source, target = sql.Identifier(holding, table), sql.Identifier(staging, table)
            cur.execute(sql.SQL("create table {} (like {} including all)").format(target, source))
            cur.execute(sql.SQL("insert into {} select * from {}").format(target, source))
            rows += cur.rowcount
        final = sql.Identifier(f"{PUBLISHED}_copy")
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(final))
        cur.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(staging), final))
    return _published(params, time.perf_counter() - started, rows)


VARIANTS = {"build": build, "ours": ours, "copy": copy}
