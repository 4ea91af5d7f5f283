"""A ``sql_database`` source from pipelines.yml → dlt ``sql_table`` resources.

Arrow backends are the fast path: batches of ``chunk_size`` rows go straight into Parquet
files that PostgreSQL loads through ADBC, so memory stays flat however big the table is.
``adbc`` (the default) reads PostgreSQL tables through ADBC and everything else through
ConnectorX (:mod:`ingestion.sources.adbc_reader`); ``connectorx`` and ``pyarrow`` are dlt's
own Arrow backends. Reflection is deferred to extraction, so building the source never
connects to the database (and works offline in unit tests).

The tables of one source share one SQLAlchemy engine and one ``MetaData``: just before the
extract, :meth:`SourceTables.reflect` reflects every configured table in one pass (SQLAlchemy's
multi-table reflection, a handful of catalog queries instead of eight per table), and dlt's
per-table reflection then finds them there. The engine's pool and compiled-statement cache
serve all tables; :meth:`SourceTables.close` disposes of it when the ingest ends.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlsplit

import dlt
import sqlalchemy as sa
from dlt.extract import DltResource
from dlt.sources.sql_database import sql_table

from elt.config import SqlDatabaseSource, SqlTable, resolve_env
from ingestion.fast_path import has_rows
from ingestion.sources.adbc_reader import AdbcTableLoader
from ingestion.sources.common import (
    BuiltSource,
    DataInterval,
    as_source,
    delete_hint,
    lag_seconds,
)

ARROW_BACKENDS = ("adbc", "connectorx", "pyarrow")

log = logging.getLogger("ingestion")


class SourceTables:
    """The engine and metadata the tables of one source share (nothing connects until
    :meth:`reflect` or the extract)."""

    def __init__(self, config: SqlDatabaseSource, url: str):
        self.names = list(config.tables)
        self.engine = sa.create_engine(url) if url else None
        self.metadata = sa.MetaData(schema=config.schema_)
        self._reflected = False

    def reflect(self) -> None:
        """Reflect every configured table that exists in one pass (once). Best effort: a
        table it cannot reflect (missing, no access, the database down) is left to dlt's
        per-table reflection at extract, which fails with the error that names it."""
        if self.engine is None or self._reflected:
            return
        self._reflected = True
        wanted = set(self.names)
        try:
            self.metadata.reflect(
                bind=self.engine, only=lambda name, _meta: name in wanted, views=True
            )
        except Exception as exc:  # the extract reflects (and reports) table by table
            log.debug("reflecting the source tables in one pass failed: %s", exc)

    def table(self, name: str) -> sa.Table:
        """The reflected table ``name`` (from the one pass, else reflected now; raises
        SQLAlchemy's ``NoSuchTableError`` when it does not exist)."""
        self.reflect()
        schema = self.metadata.schema
        found = self.metadata.tables.get(f"{schema}.{name}" if schema else name)
        if found is not None:
            return found
        return sa.Table(name, self.metadata, autoload_with=self.engine)

    def close(self) -> None:
        """Close the engine's pooled connections."""
        if self.engine is not None:
            self.engine.dispose()


def sql_database_source(
    config: SqlDatabaseSource, *, data_interval: DataInterval | None = None
) -> BuiltSource:
    """One resource per configured table, with keys, dispositions and incremental cursors."""
    url = resolve_env(config.credentials) or ""
    shared = SourceTables(config, url)
    resources = [
        table_resource(config, url, name, table, data_interval, shared=shared)
        for name, table in config.tables.items()
    ]
    return BuiltSource(
        source=as_source(config.name, resources, config.contract),
        loader_file_format="parquet" if config.backend in ARROW_BACKENDS else None,
        secrets=_url_secrets(url),
        before_extract=shared.reflect,
        close=shared.close,
        reflected=shared.table if shared.engine is not None else None,
    )


def table_resource(
    config: SqlDatabaseSource,
    url: str,
    name: str,
    table: SqlTable,
    data_interval: DataInterval | None = None,
    *,
    shared: SourceTables | None = None,
) -> DltResource:
    """The ``sql_table`` resource of one table (on the source's ``shared`` engine)."""
    resource = sql_table(
        credentials=shared.engine if shared and shared.engine else url,
        metadata=shared.metadata if shared else None,
        table=name,
        schema=config.schema_,
        chunk_size=config.chunk_size,
        # adbc is dlt's connectorx backend with our table loader (its fallback)
        backend="connectorx" if config.backend == "adbc" else config.backend,
        table_loader_class=AdbcTableLoader if config.backend == "adbc" else None,
        backend_kwargs=backend_kwargs(config),
        defer_table_reflect=True,
        reflection_level="full",
        table_adapter_callback=nullable_except_keys,
        incremental=table_incremental(table, data_interval),
        write_disposition=table.disposition,
        primary_key=table.primary_key or None,
    )
    deletes = delete_hint(table.hard_delete)
    if deletes:
        resource.apply_hints(columns=deletes)
    return resource.add_filter(has_rows)


def nullable_except_keys(table: Any) -> None:
    """Raw columns accept NULL, whatever the source declares, except the primary key: a
    column added at the source later (NOT NULL there) can be added to a raw table that already
    has rows, and a column dropped at the source leaves NULLs instead of failing the load."""
    for column in table.columns:
        if not column.primary_key:
            column.nullable = True


def backend_kwargs(config: SqlDatabaseSource) -> dict[str, Any] | None:
    """ConnectorX streams Arrow batches of ``chunk_size`` rows instead of one big table
    (also where the ``adbc`` backend falls back to it)."""
    if config.backend in ("adbc", "connectorx"):
        return {"return_type": "arrow_stream", "batch_size": config.chunk_size}
    return None


def table_incremental(
    table: SqlTable, data_interval: DataInterval | None = None
) -> dlt.sources.incremental | None:
    """The cursor of an incremental table, or None for a full load.

    Without a data interval the cursor continues from the last run, re-reading ``lookback``
    so rows committed late (with an older cursor value) are caught; merge on the primary key
    makes the overlap harmless. With the orchestrator's interval the window is
    ``[start - lookback, end)`` and the stored cursor is left alone (a backfill).
    """
    if not table.cursor:
        return None
    # rows without a cursor value are re-read each run: merge keeps them unique
    missing = "include" if table.disposition == "merge" else "raise"
    if data_interval:
        start, end = data_interval
        return dlt.sources.incremental(
            table.cursor,
            initial_value=start - table.lookback,
            end_value=end,
            range_end="open",
            on_cursor_value_missing=missing,
        )
    return dlt.sources.incremental(
        table.cursor, lag=lag_seconds(table.lookback), on_cursor_value_missing=missing
    )


def _url_secrets(url: str) -> list[str]:
    password = urlsplit(url).password if "://" in url else None
    return [unquote(password), password] if password else []
