"""What the variants share: connections from the environment, psql, row counts, timers."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql

from elt.settings import Connection, parse_url

SOURCE_URL = "BENCH_SOURCE_URL"  # the source database, read-only role
SOURCE_ADMIN_URL = "BENCH_SOURCE_ADMIN_URL"  # the same database, superuser (baselines)


def env_url(name: str) -> str:
    """A URL the harness put in the environment."""
    try:
        return os.environ[name]
    except KeyError:
        raise RuntimeError(f"{name} is not set: run the case through `python -m bench`") from None


def warehouse_url() -> str:
    """The benchmark warehouse (superuser) URL."""
    from elt import settings

    return settings.warehouse_url()


def psql() -> str:
    """The psql binary shipped with the embedded PostgreSQL (else the one on PATH)."""
    from elt import warehouse

    bundled = Path(warehouse.bin_dir()) / "psql"
    return str(bundled) if bundled.exists() else (shutil.which("psql") or "psql")


def libpq_env(conn: Connection) -> dict[str, str]:
    """The process environment that makes psql connect to ``conn`` (no password on argv)."""
    return {
        **os.environ,
        "PGHOST": conn.host,
        "PGPORT": str(conn.port),
        "PGUSER": conn.user,
        "PGPASSWORD": conn.password,
        "PGDATABASE": conn.database,
    }


def connection(url: str) -> Connection:
    """A URL parsed into its parts."""
    return parse_url(url, name="benchmark URL")


def execute(url: str, statement: str | sql.Composable) -> None:
    """Run a statement (autocommit)."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def count_rows(url: str, schema: str, table: str) -> int:
    """Rows in ``schema.table``."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table)))
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def fresh_table(url: str, schema: str, table: str, columns: str) -> None:
    """Drop and create ``schema.table`` with ``columns`` (a column list in SQL)."""
    execute(
        url,
        sql.SQL(
            "create schema if not exists {schema}; drop table if exists {table};"
            " create table {table} ({columns})"
        ).format(
            schema=sql.Identifier(schema),
            table=sql.Identifier(schema, table),
            columns=sql.SQL(columns),
        ),
    )


def import_drivers() -> None:
    """Import the database drivers the Python variants use lazily (SQLAlchemy's PostgreSQL
    driver, ADBC's, which brings pandas), so that every variant's clock starts after its
    imports: these are once-per-process costs, shown in the *whole process* column."""
    import adbc_driver_postgresql.dbapi  # noqa: F401
    import sqlalchemy as sa

    sa.create_engine("postgresql://bench@127.0.0.1/bench").dialect.import_dbapi()


def ingest_configured(params: dict, *, full_refresh: bool = True) -> dict:
    """Our ingestion (``ingestion.runner.ingest``) of ``params["source"]`` declared in the
    pipelines.yml at ``params["config"]``; ``work_s`` excludes the imports."""
    from elt.config import load
    from ingestion.runner import ingest

    source = load(params["config"]).sources[params["source"]]
    started = time.perf_counter()
    result = ingest(source, full_refresh=full_refresh, destination_url=warehouse_url())
    return {
        "rows": sum(result.rows.values()),
        "work_s": time.perf_counter() - started,
        "rows_by_table": result.rows,
        "file_formats": result.file_formats,
    }
