"""Time the GX quality gate against the same checks written by hand in SQL.

    .venv/bin/python bench/gx_vs_sql.py                 # the demo marts in the audit schema
    .venv/bin/python bench/gx_vs_sql.py --scale 10      # a 10x copy of them

Run `make demo` (or `elt run jaffle_daily`) first: the marts must exist in the warehouse, in
the audit schema or, when something moved them out of it (``make bench``'s publish case does),
in the published schema, which holds the same marts once the run published them.
For each variant the median of ``--repeat`` runs is printed (after one warm-up run):

- ``sql``: one hand-written query per rule of the pipeline's audit stage, one connection;
- ``gx checkpoints``: the gate's checkpoints (one per table) run alone (validation, results
  stored, no Data Docs);
- ``gx gate``: :func:`expectations.gate.run_quality` end to end (sync of the GX files,
  checkpoint, elt_meta.checks, Data Docs).

It also counts the SQL statements GX sends per run of the checkpoints. The GX files go to a
throwaway folder, never to the run context under ``.elt/``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import psycopg2
from psycopg2 import sql

from elt import settings
from elt.config import Pipeline, Rule, load
from expectations.targets import target_of

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def sql_check(rule: Rule, relation: str) -> tuple[str, Callable[[object], bool]]:
    """The hand-written query for one rule and how to judge its single value."""
    column = f'"{rule.column}"'
    if rule.type == "not_null":
        query = f"select 100.0 * count(*) filter (where {column} is null) / greatest(count(*), 1) from {relation}"  # noqa: E501
        return query, lambda value: float(value) <= rule.max_null_percentage
    if rule.type == "unique":
        query = f"select count({column}) - count(distinct {column}) from {relation}"
        return query, lambda value: int(value) <= rule.max_duplicates
    if rule.type == "range":
        bounds = [f"{column} < {rule.min}"] if rule.min is not None else []
        bounds += [f"{column} > {rule.max}"] if rule.max is not None else []
        return f"select count(*) from {relation} where {' or '.join(bounds)}", lambda v: v == 0
    if rule.type == "accepted_values":
        values = ", ".join("'" + str(v).replace("'", "''") + "'" for v in rule.values)
        query = f"select count(*) from {relation} where {column} not in ({values})"
        return query, lambda value: value == 0
    if rule.type == "row_count":
        low = rule.min if rule.min is not None else float("-inf")
        high = rule.max if rule.max is not None else float("inf")
        return f"select count(*) from {relation}", lambda value: low <= value <= high
    query = (rule.sql or "").strip().rstrip(";").format(batch=relation)
    return f"select ({query})", lambda value: value == rule.expected


def run_sql(url: str, rules: list[Rule], schema: str) -> bool:
    """All rules as hand-written SQL; True when every one passes."""
    passed = True
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        for rule in rules:
            relation = sql.Identifier(schema, target_of(rule.table).table).as_string(conn)
            query, judge = sql_check(rule, relation)
            cur.execute(query)
            passed &= bool(judge(cur.fetchone()[0]))
    conn.close()
    return passed


def marts_schema(url: str) -> str:
    """The audit schema when it holds the marts, else the published schema."""
    candidates = (settings.dbt_schema(), settings.published_schema())
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            for schema in candidates:
                cur.execute("select to_regclass(%s)", (f"{schema}.orders",))
                if cur.fetchone()[0] is not None:
                    return schema
    finally:
        conn.close()
    raise SystemExit(
        f"no orders mart in schema {candidates[0]!r} or {candidates[1]!r}:"
        " run `elt run jaffle_daily` (or `make demo`) first"
    )


def scaled_copy(url: str, source_schema: str, factor: int) -> str:
    """Copy orders and customers ``factor`` times into ``bench_x<factor>``, suffixing text ids."""
    target = f"bench_x{factor}"
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(target)))
        cur.execute(sql.SQL("create schema {}").format(sql.Identifier(target)))
        for table in ("orders", "customers"):
            cur.execute(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = %s and table_name = %s order by ordinal_position",
                (source_schema, table),
            )
            columns = [
                sql.SQL("{} || '-' || copy_number as {}").format(
                    sql.Identifier(name), sql.Identifier(name)
                )
                if name.endswith("_id") and kind == "text"
                else sql.Identifier(name)
                for name, kind in cur.fetchall()
            ]
            cur.execute(
                sql.SQL(
                    "create table {} as select {} from {} cross join generate_series(1, {}) as copy_number"  # noqa: E501
                ).format(
                    sql.Identifier(target, table),
                    sql.SQL(", ").join(columns),
                    sql.Identifier(source_schema, table),
                    sql.Literal(factor),
                )
            )
        cur.execute(sql.SQL("analyze {}.orders").format(sql.Identifier(target)))
    conn.close()
    return target


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def count_statements(fn: Callable[[], object]) -> int:
    """How many SQL statements SQLAlchemy engines execute during ``fn()``."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen = []

    def before(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", before)
    try:
        fn()
    finally:
        event.remove(Engine, "before_cursor_execute", before)
    return len(seen)


def main() -> None:
    """Parse arguments, time the variants, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", default="jaffle_daily")
    parser.add_argument("--scale", type=int, default=1, help="copy the marts N times (N > 1)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    url = settings.warehouse_url()
    config = load(check_env=False)
    pipe: Pipeline = config.pipeline(args.pipeline)
    rules = [rule for rule in pipe.quality.rules if target_of(rule.table).stage == "audit"]
    bench_pipe = pipe.model_copy(update={"quality": pipe.quality.model_copy(update={"suites": []})})
    schema = marts_schema(url)
    if args.scale > 1:
        schema = scaled_copy(url, schema, args.scale)
    os.environ["ELT_DBT_SCHEMA"] = schema
    os.environ["ELT_GX_DIR"] = tempfile.mkdtemp(prefix="gx-bench-")

    from elt import runs
    from expectations import context as gx_context
    from expectations.gate import run_quality

    runs.migrate(url)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("select count(*) from {}.orders").format(sql.Identifier(schema)))
        orders = cur.fetchone()[0]
    conn.close()

    def gate() -> None:
        run_quality(config, bench_pipe, run_id="bench", url=url, stage="audit")

    gate()  # creates the GX files; the checkpoints below are the ones the gate runs
    context = gx_context.open_context(url, schema)
    prefix = f"{pipe.name}.audit."  # the gate's audit checkpoints, one per table
    checkpoints = [c for c in context.checkpoints.all() if c.name.startswith(prefix)]
    if not checkpoints:
        raise SystemExit(f"the gate made no checkpoint named {prefix}<table>")

    def run_checkpoints() -> None:
        for checkpoint in checkpoints:
            checkpoint.run()

    timings = {
        "sql (hand-written, 1 query per rule)": median_time(
            lambda: run_sql(url, rules, schema), args.repeat
        ),
        "gx checkpoints (validation only)": median_time(run_checkpoints, args.repeat),
        "gx gate (sync + checkpoint + record + Data Docs)": median_time(gate, args.repeat),
    }
    statements = count_statements(run_checkpoints)
    baseline = timings["sql (hand-written, 1 query per rule)"]
    print(
        f"{len(rules)} audit rules on {orders:,} orders (schema {schema}), median of {args.repeat}"
    )
    for name, seconds in timings.items():
        print(f"  {name:<50} {seconds:8.3f} s  {seconds / baseline:6.1f}x")
    print(
        f"  SQL statements per run of the GX checkpoints: {statements} (hand-written: {len(rules)})"
    )


if __name__ == "__main__":
    main()
