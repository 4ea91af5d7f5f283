"""New-column backfill: an incremental table whose source gained a column is re-read whole.

An incremental run reads only rows changed since the cursor (plus the lookback), so a column
added at the source (and filled for every row, e.g. ``add column … default …``) would reach
raw only for those rows: the raw table would silently mix "unknown" and "empty". Before the
extract, the source's columns of each incremental table are compared with the columns the
pipeline's schema already has; a table with a new column is read in full this once (merge on
the primary key makes the re-read harmless; the stored cursor is left alone). Only under the
``evolve`` contract: ``freeze`` refuses the new column, ``discard_*`` never adds it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from dlt.common.normalizers.naming.snake_case import NamingConvention

from elt.config import SqlDatabaseSource

_naming = NamingConvention()


def grown_tables(
    source: SqlDatabaseSource, url: str, stored: dict[str, Any]
) -> dict[str, list[str]]:
    """Incremental tables whose source has columns the stored schema lacks: table → columns.

    ``stored`` is the pipeline schema's ``tables``; a table not in it yet is skipped (its
    first load reads everything anyway).
    """
    if source.contract != "evolve":
        return {}
    candidates = {
        name: stored[_naming.normalize_table_identifier(name)]["columns"]
        for name, table in source.tables.items()
        if table.cursor and _naming.normalize_table_identifier(name) in stored
    }
    if not candidates:
        return {}
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        grown = {}
        for name, known in candidates.items():
            columns = [column["name"] for column in inspector.get_columns(name, source.schema_)]
            new = [c for c in columns if _naming.normalize_identifier(c) not in known]
            if new:
                grown[name] = new
        return grown
    finally:
        engine.dispose()


def read_in_full(source: SqlDatabaseSource, tables: list[str]) -> SqlDatabaseSource:
    """``source`` with ``tables`` read without their cursor (in full) for this run."""
    changed = {
        name: table.model_copy(update={"cursor": None}) if name in tables else table
        for name, table in source.tables.items()
    }
    return source.model_copy(update={"tables": changed})
