"""Read PostgreSQL tables through ADBC: dlt's ``sql_table`` with a faster table loader.

ADBC's PostgreSQL driver (libpq, ``COPY … TO STDOUT (FORMAT binary)``, decoded in C++)
reads a table into Arrow about twice as fast as ConnectorX here (1.08M order items: 0.7 s
against 1.7 s), and the driver is already installed for the load side. dlt lets a source
bring its own table loader (``sql_table(table_loader_class=…)``): this one keeps dlt's query
(incremental window, ordering, limit) and its reflection and hints, and only changes how the
rows are fetched.

ADBC hands some PostgreSQL types over differently from ConnectorX's stream (numeric as text,
uuid as 16 bytes, json as an extension type, smallint/integer/real in their own widths).
A table takes the ADBC path only when every column is of a type read exactly
(:func:`adbc_readable`): uuid is cast to text in the query, numeric(p, s) to Arrow's decimal,
integers to int64 and real to double (the warehouse columns are then the same whichever
backend created them). Any other table, and every non-PostgreSQL database, is read by
ConnectorX as before.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing
from typing import Any

import sqlalchemy as sa
from dlt.sources.sql_database.helpers import ConnectorXTableLoader

log = logging.getLogger("ingestion")

PREFETCH_BATCHES = 2
"""Batches read ahead while dlt writes the previous ones to Parquet."""

MAX_DECIMAL_PRECISION = 38
"""numeric(p, s) columns up to this precision fit Arrow's decimal128."""

_EXACT_TYPES = frozenset(
    {
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "REAL",
        "DOUBLE_PRECISION",
        "BOOLEAN",
        "TEXT",
        "VARCHAR",
        "CHAR",
        "DATE",
        "TIMESTAMP",
        "TIME",
        "BYTEA",
        "UUID",  # cast to text in the query
        "NUMERIC",  # with precision and scale only, see adbc_readable
    }
)
"""Reflected PostgreSQL column types (SQLAlchemy visit names) that ADBC reads into the Arrow
type ConnectorX gives; any other type (json, enum, interval, citext, arrays, …) sends the
table to ConnectorX."""


def adbc_readable(column: sa.Column) -> bool:
    """Whether ADBC reads ``column`` into the Arrow type ConnectorX would give (after the
    casts of :func:`_select_list` and :func:`_as_connectorx_types`)."""
    kind = column.type
    if kind.__visit_name__ not in _EXACT_TYPES:
        return False
    if kind.__visit_name__ == "NUMERIC":
        # unconstrained numeric has no scale to cast to (nor has a negative one, PostgreSQL 15+)
        precision, scale = kind.precision, kind.scale
        if precision is None or scale is None:
            return False
        return 0 <= scale <= precision <= MAX_DECIMAL_PRECISION
    # time with time zone has no Arrow type
    return not (kind.__visit_name__ == "TIME" and kind.timezone)


class AdbcTableLoader(ConnectorXTableLoader):
    """dlt table loader: PostgreSQL tables through ADBC, anything else through ConnectorX."""

    def load_rows(self, backend_kwargs: dict[str, Any] | None = None) -> Iterator[Any]:
        """Arrow tables of at most ``chunk_size`` rows, in the order of the query."""
        reason = self._connectorx_reason()
        if reason:
            log.info("reading %s through ConnectorX: %s", self.table.name, reason)
            yield from super().load_rows(backend_kwargs)
            return
        log.info("reading %s through ADBC", self.table.name)
        query = self.make_query()
        if isinstance(query, sa.Select):
            query = _select_list(query)
        yield from self._read_adbc(self.compile_query(query))

    def _connectorx_reason(self) -> str | None:
        """Why the table is read by ConnectorX, or None when ADBC reads it exactly."""
        if self.engine.dialect.name != "postgresql":
            return f"a {self.engine.dialect.name} database"
        odd = [f"{c.name} ({c.type})" for c in self.table.columns if not adbc_readable(c)]
        return f"column types ADBC does not read exactly: {', '.join(odd)}" if odd else None

    def _read_adbc(self, query: str) -> Iterator[Any]:
        # the tables of a source share one ADBC database (its type catalog read once)
        from ingestion.warehouse_destination import shared_connection

        with shared_connection(self.get_connection_url()) as conn, conn.cursor() as cursor:
            cursor.execute(query)
            # closed (its thread stopped) before the connection it reads from
            with closing(prefetched(cursor.fetch_record_batch(), PREFETCH_BATCHES)) as batches:
                for batch in batches:
                    for offset in range(0, batch.num_rows, self.chunk_size):
                        yield _as_connectorx_types(batch.slice(offset, self.chunk_size))


def _select_list(query: sa.Select) -> sa.Select:
    """``query`` with uuid columns cast to text, keeping their names."""
    columns = [
        sa.cast(column, sa.Text).label(column.name)
        if isinstance(getattr(column, "type", None), sa.Uuid)
        else column
        for column in query.selected_columns
    ]
    return query.with_only_columns(*columns, maintain_column_froms=True)


def _as_connectorx_types(batch: Any) -> Any:
    """An Arrow table of ``batch`` typed as ConnectorX's stream types it where dlt needs it:
    numeric columns (text in ADBC's opaque extension type, the column's typmod in the field
    metadata) as decimal128(p, s), integers as int64, real as double; metadata dropped."""
    import pyarrow as pa

    columns, fields = [], []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if isinstance(field.type, pa.BaseExtensionType):
            column = column.storage
            precision_scale = _numeric_typmod(field)
            if precision_scale:
                column = column.cast(pa.decimal128(*precision_scale))
        # as ConnectorX's stream: the warehouse columns are bigint and double whichever
        # backend created them (and a float32 would COPY 4-byte values into a double)
        elif pa.types.is_integer(field.type) and field.type != pa.int64():
            column = column.cast(pa.int64())
        elif pa.types.is_float32(field.type):
            column = column.cast(pa.float64())
        columns.append(column)
        fields.append(pa.field(field.name, column.type, nullable=field.nullable))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _numeric_typmod(field: Any) -> tuple[int, int] | None:
    """(precision, scale) of a PostgreSQL numeric column from ADBC's field metadata."""
    metadata = field.metadata or {}
    if metadata.get(b"POSTGRESQL:type") != b"numeric":
        return None
    typmod = int(metadata.get(b"POSTGRESQL:typmod", b"-1")) - 4  # VARHDRSZ
    if typmod < 0:
        return None
    return (typmod >> 16) & 0xFFFF, typmod & 0xFFFF


_END = object()


def prefetched(batches: Iterable[Any], depth: int) -> Iterator[Any]:
    """``batches``, read by a background thread up to ``depth`` ahead of the consumer.

    Reading a batch waits on the database and releases the GIL, so it overlaps with what
    the consumer does with the previous one (dlt's Parquet writing); dlt's own
    ``parallelized`` resources read the next item only after the previous one was written.
    An error while reading is raised to the consumer; closing the generator early stops the
    thread after the batch it is reading.
    """
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not hand_over(batch):
                    return
            hand_over(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            hand_over(exc)

    reader = threading.Thread(target=read, name="adbc-prefetch", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()
