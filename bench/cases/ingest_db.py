"""Database → warehouse: our ingestion vs a raw COPY pipe, dlt's defaults and pandas.

Every variant copies the source table ``params["table"]`` into its own schema of the
warehouse (a full load, replacing what the previous run loaded).
"""

from __future__ import annotations

import subprocess
import time

from bench.cases import sling_peer
from bench.cases.common import (
    SOURCE_ADMIN_URL,
    SOURCE_URL,
    connection,
    count_rows,
    env_url,
    fresh_table,
    import_drivers,
    ingest_configured,
    libpq_env,
    psql,
    warehouse_url,
)

COLUMNS = "id text, order_id text, sku text, updated_at timestamptz"
PANDAS_READ_CHUNK = 50_000


def ours(params: dict) -> dict:
    """``ingestion.runner.ingest`` with the source declared in a pipelines.yml."""
    import ingestion.runner  # noqa: F401 - imported before the clock starts, like the others

    import_drivers()

    return ingest_configured(params)


def copy_pipe(params: dict) -> dict:
    """``psql \\copy (select …) to stdout | psql \\copy … from stdin`` (text format)."""
    table, target = params["table"], warehouse_url()
    started = time.perf_counter()
    fresh_table(target, "bench_copy", table, COLUMNS)
    select = f"\\copy (select id, order_id, sku, updated_at from {table}) to stdout"
    load = f"\\copy bench_copy.{table} from stdin"
    source_env = libpq_env(connection(env_url(SOURCE_ADMIN_URL)))
    target_env = libpq_env(connection(target))
    command = [psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"]
    reader = subprocess.Popen([*command, select], env=source_env, stdout=subprocess.PIPE)
    writer = subprocess.Popen([*command, load], env=target_env, stdin=reader.stdout)
    assert reader.stdout is not None
    reader.stdout.close()  # the writer owns the pipe now
    if writer.wait() != 0 or reader.wait() != 0:
        raise RuntimeError(
            f"the COPY pipe failed (reader {reader.returncode}, writer {writer.returncode})"
        )
    work = time.perf_counter() - started
    return {"rows": count_rows(target, "bench_copy", table), "work_s": work}


def dlt_defaults(params: dict) -> dict:
    """dlt as its docs start: ``sql_table`` (SQLAlchemy backend) and the default loader
    (``insert_values`` for PostgreSQL), ``write_disposition="replace"``."""
    import dlt
    from dlt.sources.sql_database import sql_table

    from ingestion.environment import prepare_dlt_environment

    prepare_dlt_environment()  # telemetry off, no Airflow import: not a speed setting
    import_drivers()
    table = params["table"]
    started = time.perf_counter()
    pipeline = dlt.pipeline(
        pipeline_name="bench_dlt_defaults",
        destination=dlt.destinations.postgres(credentials=warehouse_url()),
        dataset_name="bench_dlt_defaults",
    )
    info = pipeline.run(
        sql_table(credentials=env_url(SOURCE_URL), table=table, schema="public"),
        write_disposition="replace",
    )
    info.raise_on_failed_jobs()
    work = time.perf_counter() - started
    return {"rows": count_rows(warehouse_url(), "bench_dlt_defaults", table), "work_s": work}


def pandas_to_sql(params: dict) -> dict:
    """pandas ``read_sql`` in chunks (server-side cursor) and ``to_sql`` of each chunk."""
    import pandas as pd
    import sqlalchemy as sa

    import_drivers()

    table = params["table"]
    started = time.perf_counter()
    source = sa.create_engine(env_url(SOURCE_URL))
    target = sa.create_engine(warehouse_url())
    with target.begin() as conn:
        conn.execute(sa.text("create schema if not exists bench_pandas"))
        conn.execute(sa.text(f"drop table if exists bench_pandas.{table}"))
    query = sa.text(f'select id, order_id, sku, updated_at from "{table}"')
    with source.connect().execution_options(stream_results=True) as conn:
        chunks = pd.read_sql(query, conn, chunksize=PANDAS_READ_CHUNK)
        for chunk in chunks:
            chunk.to_sql(table, target, schema="bench_pandas", if_exists="append", index=False)
    work = time.perf_counter() - started
    return {"rows": count_rows(warehouse_url(), "bench_pandas", table), "work_s": work}


def sling(params: dict) -> dict:
    """``sling run`` from the source table into the warehouse (full refresh)."""
    table = params["table"]
    stream = ["--src-conn", "BENCH_SLING_SOURCE", "--src-stream", f"public.{table}"]
    return sling_peer.copy_into_warehouse(
        table, stream, {"BENCH_SLING_SOURCE": env_url(SOURCE_URL)}
    )


VARIANTS = {
    "ours": ours,
    "sling": sling,
    "copy_pipe": copy_pipe,
    "dlt_defaults": dlt_defaults,
    "pandas": pandas_to_sql,
}
