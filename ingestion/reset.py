"""A full refresh starts a source from nothing: its raw and staging schemas (every table,
child tables and dlt's state tables with them) and its local pipeline folder are dropped.

dlt's own ``refresh="drop_sources"`` drops only the tables its current schema knows: a child
table or a staging table left by a failed or interrupted load survives it and can fail the
next load again. Dropping both schemas leaves nothing stale. Runs as the loader, which owns
the raw schemas it created.
"""

from __future__ import annotations

import dlt
import psycopg2
from psycopg2 import sql

STAGING_SUFFIX = "_staging"  # dlt's default staging dataset name: <dataset>_staging


def reset_source(pipeline: dlt.Pipeline, loader_url: str) -> dlt.Pipeline:
    """Drop ``pipeline``'s raw and staging schemas and its local state; returns the fresh
    pipeline (``dlt.Pipeline.drop`` gives a new instance)."""
    dataset = pipeline.dataset_name
    conn = psycopg2.connect(loader_url, connect_timeout=10)
    try:
        with conn, conn.cursor() as cur:
            for schema in (dataset, dataset + STAGING_SUFFIX):
                cur.execute(
                    sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema))
                )
    finally:
        conn.close()
    return pipeline.drop()
