"""Schema drift of database tables, found before the extract by comparing the source's columns
with the columns the pipeline's schema already has.

* **Added column** (contract ``evolve``): an incremental table is re-read whole once, so the
  new column is filled for every row, not only for rows inside the cursor window (the stored
  cursor is left alone; merge on the primary key makes the re-read harmless). ``freeze``
  refuses the column later (dlt's contract), ``discard_*`` never adds it.
* **Removed column**: ``freeze`` fails naming it; otherwise the raw column becomes NULL-able
  (it may have been created NOT NULL) and the run continues with a warning.
* **Changed type**: fails naming source, table, column, old and new type, and what to do;
  the load would otherwise fail in the warehouse's COPY and seem to blame the warehouse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import sqlalchemy as sa
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.sources.sql_database.schema_types import sqla_col_to_column_schema
from psycopg2 import sql

from elt.config import SqlDatabaseSource, resolve_env
from ingestion.errors import IngestError

_naming = NamingConvention()
log = logging.getLogger("ingestion")


@dataclass
class TableDrift:
    """How a source table's columns differ from the raw table's (dlt column names)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    retyped: dict[str, tuple[str, str]] = field(default_factory=dict)  # column → (old, new)


def table_drift(
    source: SqlDatabaseSource,
    url: str,
    stored: dict[str, Any],
    reflected: Callable[[str], sa.Table] | None = None,
) -> dict[str, TableDrift]:
    """The drift of every configured table already in ``stored`` (the pipeline schema's
    ``tables``); tables without drift are left out. Reads the source tables' columns from
    ``reflected`` (the built source's one reflection pass, which the extract reuses), else
    reflects them here (no data read)."""
    known = {
        name: stored[_naming.normalize_table_identifier(name)]["columns"]
        for name in source.tables
        if _naming.normalize_table_identifier(name) in stored
    }
    if not known:
        return {}
    engine = None
    if reflected is None:
        engine = sa.create_engine(url)
        metadata = sa.MetaData()

        def reflected(name: str) -> sa.Table:
            return sa.Table(name, metadata, schema=source.schema_, autoload_with=engine)

    try:
        drifts = {}
        for name, columns in known.items():
            drift = _compare(reflected(name), columns)
            if drift.added or drift.removed or drift.retyped:
                drifts[name] = drift
        return drifts
    finally:
        if engine is not None:
            engine.dispose()


def _compare(reflected: sa.Table, columns: dict[str, Any]) -> TableDrift:
    drift = TableDrift()
    seen = set()
    for column in reflected.columns:
        name = _naming.normalize_identifier(column.name)
        seen.add(name)
        if name not in columns:
            drift.added.append(name)
            continue
        new = (sqla_col_to_column_schema(column, "full") or {}).get("data_type")
        old = columns[name].get("data_type")
        if new and old and new != old:
            drift.retyped[name] = (old, new)
    drift.removed = [
        name
        for name, column in columns.items()
        if name not in seen and not name.startswith("_dlt") and not column.get("variant")
    ]
    return drift


def read_in_full(source: SqlDatabaseSource, tables: list[str]) -> SqlDatabaseSource:
    """``source`` with ``tables`` read without their cursor (in full) for this run."""
    changed = {
        name: table.model_copy(update={"cursor": None}) if name in tables else table
        for name, table in source.tables.items()
    }
    return source.model_copy(update={"tables": changed})


def apply_drift(
    pipeline: Any,
    source: SqlDatabaseSource,
    loader_url: str,
    say,
    reflected: Callable[[str], sa.Table] | None = None,
) -> list[str]:
    """Check the drift of ``source`` against ``pipeline``'s schema before the extract: fail on
    changed types (and on removed columns under ``freeze``), make removed columns NULL-able in
    raw, and return the incremental tables to read in full for their added columns.
    ``reflected``: the source's tables as the built source reflected them."""
    if source.name not in pipeline.schema_names:
        return []
    schema = pipeline.schemas[source.name]
    url = resolve_env(source.credentials) or ""
    drifts = table_drift(source, url, schema.tables, reflected)
    for table, drift in drifts.items():
        _refuse(source, table, drift)
    removed = {table: drift.removed for table, drift in drifts.items() if drift.removed}
    if removed:
        _make_nullable(schema, source.dataset, removed, loader_url)
        pipeline.schemas.save_schema(schema)
        for table, columns in removed.items():
            message = (
                f"{source.name}: column(s) {', '.join(columns)} of table {table} are gone at "
                "the source; raw keeps them, NULL in rows loaded from now on"
            )
            log.warning(message)
            say(f"warning: {message}")
    if source.contract != "evolve":
        return []
    grown = [t for t, drift in drifts.items() if drift.added and source.tables[t].cursor]
    for table in grown:
        say(
            f"{source.name}: re-reading all of {table}: new column(s) "
            f"{', '.join(drifts[table].added)}"
        )
    return grown


def _refuse(source: SqlDatabaseSource, table: str, drift: TableDrift) -> None:
    where = f"ingest of source '{source.name}' failed at table '{table}'"
    for column, (old, new) in drift.retyped.items():
        raise IngestError(
            f"{where}: column '{column}' changed type at the source from {old} to {new}; "
            f"raw_{source.name}.{table}.{column} is {old}. Change it back at the source, or "
            f"rebuild the raw table with the new type: elt ingest {source.name} --full-refresh",
            source=source.name,
            table=table,
            step="extract",
        )
    if drift.removed and source.contract == "freeze":
        raise IngestError(
            f"{where}: column(s) {', '.join(drift.removed)} are gone at the source and the "
            "contract is freeze. Restore them at the source, or set contract: evolve to load "
            "NULL in them from now on",
            source=source.name,
            table=table,
            step="extract",
        )


def _make_nullable(schema: Any, dataset: str, removed: dict[str, list[str]], url: str) -> None:
    """Drop NOT NULL from removed columns: in the raw table, in dlt's staging copy of it
    (merge loads there first) and in the pipeline's schema."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            for table, columns in removed.items():
                raw = _naming.normalize_table_identifier(table)
                for column in columns:
                    schema.tables[raw]["columns"][column]["nullable"] = True
                for relation in (
                    sql.Identifier(dataset, raw),
                    sql.Identifier(f"{dataset}_staging", raw),
                ):
                    cur.execute("select to_regclass(%s)", (relation.as_string(cur),))
                    if cur.fetchone()[0] is None:
                        continue
                    for column in columns:
                        cur.execute(
                            sql.SQL("alter table {} alter column {} drop not null").format(
                                relation, sql.Identifier(column)
                            )
                        )
    finally:
        conn.close()
