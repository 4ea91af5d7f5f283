"""Key reconciliation: rows deleted physically at a source are deleted from its raw table.

An incremental cursor never sees a row that is gone. For a table with ``reconcile:`` the
source's primary keys are read after the load (keys only, streamed), copied into a temporary
table in the warehouse, and every raw row whose key is no longer there is deleted in one
statement. ``per_run`` does it after every load, ``daily`` after the first load of a UTC day.
Each pass is recorded in ``raw_<source>._elt_reconcile`` (table, time, source keys, deleted).
Keys are compared as text.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg2
import sqlalchemy as sa
from dlt.common.normalizers.naming.snake_case import NamingConvention
from psycopg2 import sql

from elt.config import SqlDatabaseSource, SqlTable

LOG_TABLE = "_elt_reconcile"
_naming = NamingConvention()


def reconcile_deletes(
    source: SqlDatabaseSource,
    source_url: str,
    warehouse_url: str,
    *,
    say: Callable[[str], None] = lambda _message: None,
) -> dict[str, int]:
    """Delete raw rows whose keys vanished from the source; rows deleted per raw table."""
    tables = {name: table for name, table in source.tables.items() if table.reconcile}
    if not tables:
        return {}
    deleted: dict[str, int] = {}
    engine = sa.create_engine(source_url)
    warehouse = psycopg2.connect(warehouse_url)
    try:
        for name, table in tables.items():
            raw_table = _naming.normalize_table_identifier(name)
            with warehouse, warehouse.cursor() as cur:
                if not _due(cur, source.dataset, raw_table, table):
                    continue
                say(f"{source.name}: reconciling the keys of {name}")
                deleted[raw_table] = _reconcile_table(cur, engine, source, name, table, raw_table)
    finally:
        warehouse.close()
        engine.dispose()
    return deleted


def _due(cur, dataset: str, raw_table: str, table: SqlTable) -> bool:
    """The raw table exists and (``daily``) was not reconciled yet today."""
    cur.execute("select to_regclass(%s)", (f'"{dataset}"."{raw_table}"',))
    if cur.fetchone()[0] is None:
        return False
    cur.execute(
        sql.SQL(
            "create table if not exists {}.{} (table_name text not null,"
            " reconciled_at timestamptz not null, source_keys bigint not null,"
            " deleted bigint not null)"
        ).format(sql.Identifier(dataset), sql.Identifier(LOG_TABLE))
    )
    if table.reconcile == "per_run":
        return True
    cur.execute(
        sql.SQL("select max(reconciled_at) from {}.{} where table_name = %s").format(
            sql.Identifier(dataset), sql.Identifier(LOG_TABLE)
        ),
        (raw_table,),
    )
    last = cur.fetchone()[0]
    return last is None or last.astimezone(UTC).date() < datetime.now(UTC).date()


def _reconcile_table(
    cur, engine: sa.Engine, source: SqlDatabaseSource, name: str, table: SqlTable, raw: str
) -> int:
    keys = [_naming.normalize_identifier(column) for column in table.primary_key]
    with tempfile.TemporaryFile("w+", newline="") as spool:
        count = _spool_source_keys(engine, source.schema_, name, table.primary_key, spool)
        spool.seek(0)
        # a table in the raw schema, not a temporary one: the loader role may not create
        # those; it lives inside this transaction only (dropped below, gone on a rollback)
        spooled = sql.Identifier(source.dataset, f"_elt_keys_{raw}")
        columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(k)) for k in keys)
        cur.execute(sql.SQL("create unlogged table {} ({})").format(spooled, columns))
        cur.copy_expert(
            sql.SQL("copy {} from stdin with (format csv)").format(spooled).as_string(cur), spool
        )
    cur.execute(sql.SQL("analyze {}").format(spooled))
    match = sql.SQL(" and ").join(
        sql.SQL("k.{0} = r.{0}::text").format(sql.Identifier(key)) for key in keys
    )
    cur.execute(
        sql.SQL("delete from {}.{} r where not exists (select from {} k where {})").format(
            sql.Identifier(source.dataset), sql.Identifier(raw), spooled, match
        )
    )
    deleted = cur.rowcount
    cur.execute(sql.SQL("drop table {}").format(spooled))
    cur.execute(
        sql.SQL("insert into {}.{} values (%s, now(), %s, %s)").format(
            sql.Identifier(source.dataset), sql.Identifier(LOG_TABLE)
        ),
        (raw, count, deleted),
    )
    return deleted


def _spool_source_keys(engine: sa.Engine, schema: str | None, name: str, key, spool) -> int:
    """Write the source table's keys as CSV rows into ``spool`` (streamed); their number."""
    source_table = sa.table(name, *(sa.column(column) for column in key), schema=schema)
    query = sa.select(*source_table.c)
    writer = csv.writer(spool)
    count = 0
    with engine.connect().execution_options(stream_results=True, yield_per=50_000) as conn:
        for partition in conn.execute(query).partitions():
            writer.writerows(partition)
            count += len(partition)
    return count
