"""Small helpers for tests that read or reset the test warehouse."""

from __future__ import annotations

import shutil

import psycopg2

from elt import paths

DEMO_KEYS = ("SHOP_DB_URL", "SOCIAL_API_URL", "SOCIAL_API_TOKEN", "LANDING_URL", "LAKE_URL")


def rows(url: str, statement: str, params: tuple | None = None) -> list[tuple]:
    """Rows of ``statement`` on the database at ``url`` (``[]`` for statements without);
    commits, and closes the connection."""
    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def reset_warehouse(url: str) -> None:
    """Start from an empty warehouse: no raw data, dlt state, marts or run history."""
    schemas = rows(
        url,
        "select nspname from pg_namespace where nspname like 'raw\\_%'"
        " or nspname like 'audit%' or nspname like 'analytics%' or nspname = 'elt_meta'",
    )
    for (schema,) in schemas:
        rows(url, f'drop schema "{schema}" cascade')
    shutil.rmtree(paths.state_dir() / "dlt", ignore_errors=True)
