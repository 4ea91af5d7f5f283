"""Publish: copy the audited marts to the reader schema in one transaction.

dbt builds and tests the marts in the audit schema; only when the quality gate passed does
this module swap a fresh copy of them into the published schema. What is copied is exactly
the pipeline's selected marts (``elt.marts``): never a seed, snapshot or helper table.
PostgreSQL DDL is transactional, so a reader sees either the previous marts or the new ones,
never a mix, and a failure anywhere leaves the published schema untouched.

A copy is a bulk insert into a table without indexes, whose indexes and index-backed
constraints (primary key, unique, exclusion) are then built from the rows in one sort each:
maintaining them row by row during the insert made publish grow faster than the data.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import cursor

from elt import roles, runs, settings
from elt.marts import Mart

READER_ROLE = "elt_reader"

# The swap locks the published tables: a reader that arrives while publish waits for that
# lock queues behind it. So publish waits at most LOCK_TIMEOUT per attempt, then lets the
# readers through and tries again (the copy is kept: the attempt rolls back to a savepoint).
LOCK_TIMEOUT = "3s"
SWAP_ATTEMPTS = 20
SWAP_PAUSE_S = 1.0
# A publish whose process dies must not leave its session queued on the lock: PostgreSQL
# checks every second that the client is still there (also while waiting for a lock), and
# ends a transaction left idle.
SESSION_SETTINGS = {
    "client_connection_check_interval": "1s",
    "idle_in_transaction_session_timeout": "60s",
    # the server memory one index build may sort in (PostgreSQL's default, 64MB, spills a
    # primary key of a few million text ids to disk); for this transaction only
    "maintenance_work_mem": "256MB",
    # catalog functions then name every relation with its schema (see _index_statements)
    "search_path": "pg_catalog",
}
SWAP_STATEMENT_TIMEOUT = "60s"  # the swap's DDL, once it holds its locks, is quick


class PublishError(RuntimeError):
    """The marts could not be published; the published schema is unchanged."""


@dataclass
class PublishResult:
    """What publish swapped in."""

    schema: str
    tables: dict[str, int]  # table → rows


def _mart_tables(cur: cursor, schema: str) -> list[str]:
    # pg_tables lists every table, also those this role may not read (information_schema
    # would hide them and publish would silently leave them out): copying one then fails
    cur.execute(
        "select tablename from pg_catalog.pg_tables where schemaname = %s order by tablename",
        (schema,),
    )
    return [row[0] for row in cur.fetchall()]


def _grant_readers(cur: cursor, schema: str) -> None:
    cur.execute("select 1 from pg_roles where rolname = %s", (READER_ROLE,))
    if cur.fetchone() is None:
        return
    target = sql.Identifier(schema)
    role = sql.Identifier(READER_ROLE)
    cur.execute(sql.SQL("grant usage on schema {} to {}").format(target, role))
    cur.execute(sql.SQL("grant select on all tables in schema {} to {}").format(target, role))


def _sources(cur: cursor, marts: Sequence[Mart] | None, audit: str) -> list[tuple[str, str]]:
    """(schema, table) of what to copy: the selected marts, or every table of ``audit``."""
    if marts is None:
        return [(audit, table) for table in _mart_tables(cur, audit)]
    cur.execute("select schemaname, tablename from pg_catalog.pg_tables")
    existing = set(cur.fetchall())
    missing = [mart.name for mart in marts if (mart.schema, mart.name) not in existing]
    if missing:
        raise RuntimeError(
            f"nothing was published: selected mart(s) {', '.join(missing)} do not exist"
            " in the warehouse; run the dbt build first"
        )
    return [(mart.schema, mart.name) for mart in marts]


def _keep_others(cur: cursor, published: str, staging: str, replaced: set[str]) -> None:
    """Move the published tables this publish does not replace (another pipeline's marts)
    into the new schema: a metadata change, no copy, in the same transaction."""
    for table in _mart_tables(cur, published):
        if table not in replaced:
            cur.execute(
                sql.SQL("alter table {} set schema {}").format(
                    sql.Identifier(published, table), sql.Identifier(staging)
                )
            )


def publish(
    url: str | None = None,
    *,
    audit: str | None = None,
    published: str | None = None,
    marts: Sequence[Mart] | None = None,
) -> PublishResult:
    """Swap the selected marts (``elt.marts``; default: every table of the audit schema)
    into the published schema atomically; its other tables (other pipelines' marts) stay."""
    url = url or settings.warehouse_url()
    audit = audit or settings.dbt_schema()
    published = published or settings.published_schema()
    staging = f"{published}__next"
    rows: dict[str, int] = {}
    if marts is not None and not marts:
        # nothing selected (a pipeline of staging models only): the readers' marts stay
        return PublishResult(schema=published, tables={})
    with runs.connect(url) as conn, conn.cursor() as cur:
        _session(cur)
        roles.set_local_role(cur, roles.TRANSFORMER)
        tables = _sources(cur, marts, audit)
        if not tables:
            raise RuntimeError(
                f"nothing to publish: schema {audit!r} has no tables and no model is selected"
                " for publishing (elt/marts.py says which are). Run the dbt build first."
            )
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(staging)))
        cur.execute(sql.SQL("create schema {}").format(sql.Identifier(staging)))
        for schema, table in tables:
            rows[table] = _copy(cur, schema, table, staging)
        _swap(cur, staging, published, set(rows))
        _grant_readers(cur, published)
    return PublishResult(schema=published, tables=rows)


def _copy(cur: cursor, schema: str, table: str, staging: str) -> int:
    """Copy ``schema.table`` into ``staging``: its columns, defaults, constraints and
    comments (``like … including all``), then the rows, then its indexes and index-backed
    constraints under their own names; returns the rows copied."""
    source = sql.Identifier(schema, table)
    target = sql.Identifier(staging, table)
    indexes = _index_statements(cur, schema, table, staging)
    cur.execute(
        sql.SQL("create table {} (like {} including all excluding indexes)").format(target, source)
    )
    cur.execute(sql.SQL("insert into {} select * from {}").format(target, source))
    copied: int = cur.rowcount
    for statement, params in indexes:
        cur.execute(statement, params)
    return copied


def _index_statements(
    cur: cursor, schema: str, table: str, staging: str
) -> list[tuple[sql.Composable, tuple[str, ...] | None]]:
    """The statements (with their parameters) that give the copy of ``schema.table`` in
    ``staging`` the indexes, index-backed constraints (primary key, unique, exclusion) and
    the table and index comments of the original."""
    # search_path is pg_catalog alone (SESSION_SETTINGS): definitions name every relation
    # with its schema, so the source table's name can be cut out of an index definition
    cur.execute(
        "select quote_ident(n.nspname) || '.' || quote_ident(t.relname), ic.relname,"
        " c.conname, pg_get_constraintdef(c.oid), pg_get_indexdef(i.indexrelid),"
        " obj_description(i.indexrelid, 'pg_class'), obj_description(t.oid, 'pg_class')"
        " from pg_class t join pg_namespace n on n.oid = t.relnamespace"
        " left join pg_index i on i.indrelid = t.oid"
        " left join pg_class ic on ic.oid = i.indexrelid"
        " left join pg_constraint c on c.conindid = i.indexrelid and c.conrelid = t.oid"
        " and c.contype in ('p', 'u', 'x')"
        " where n.nspname = %s and t.relname = %s order by ic.relname",
        (schema, table),
    )
    target = sql.Identifier(staging, table)
    found = cur.fetchall()
    statements: list[tuple[sql.Composable, tuple[str, ...] | None]] = []
    for qualified, index, constraint, constraint_def, index_def, note, _ in found:
        if index is None:
            continue  # a table without indexes
        if constraint is not None:
            add = sql.SQL("alter table {} add constraint {} ").format(
                target, sql.Identifier(constraint)
            )
            statements.append((add + sql.SQL(constraint_def), None))
        else:
            # "ON ONLY" for an index of a partitioned table (the copy is a plain table)
            head, on, tail = index_def.replace(" ON ONLY ", " ON ", 1).partition(
                f" ON {qualified} "
            )
            if not on:
                raise PublishError(f"cannot read the definition of index {index!r}: {index_def}")
            create = sql.Composed([sql.SQL(f"{head} ON "), target, sql.SQL(f" {tail}")])
            statements.append((create, None))
        if note is not None:
            name = sql.Identifier(staging, index)
            statements.append((sql.SQL("comment on index {} is %s").format(name), (note,)))
    table_note = found[0][-1] if found else None
    if table_note is not None:  # `like` copies column comments, not the table's
        statements.append((sql.SQL("comment on table {} is %s").format(target), (table_note,)))
    return statements


def _session(cur: cursor) -> None:
    for name, value in SESSION_SETTINGS.items():
        cur.execute("select set_config(%s, %s, true)", (name, value))


def _swap(cur: cursor, staging: str, published: str, replaced: set[str]) -> None:
    """Replace the published schema by ``staging`` (keeping the published tables this publish
    does not replace), waiting at most LOCK_TIMEOUT at a time for readers to let go of the
    published tables."""
    cur.execute("select set_config('lock_timeout', %s, true)", (LOCK_TIMEOUT,))
    cur.execute("select set_config('statement_timeout', %s, true)", (SWAP_STATEMENT_TIMEOUT,))
    for _attempt in range(SWAP_ATTEMPTS):
        cur.execute("savepoint swap")
        try:
            _keep_others(cur, published, staging, replaced)
            cur.execute(
                sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(published))
            )
            cur.execute(
                sql.SQL("alter schema {} rename to {}").format(
                    sql.Identifier(staging), sql.Identifier(published)
                )
            )
        except psycopg2.errors.LockNotAvailable:
            cur.execute("rollback to savepoint swap")
            time.sleep(SWAP_PAUSE_S)
            continue
        cur.execute("release savepoint swap")
        return
    raise PublishError(
        f"readers held the tables of schema {published!r} for over {SWAP_ATTEMPTS} attempts of"
        f" {LOCK_TIMEOUT}; nothing was published. Look for long transactions"
        " (pg_stat_activity, state 'idle in transaction') and run again"
    )
