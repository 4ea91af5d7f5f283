"""dlt settings of the fast path, and ``_dlt_id`` kept for tables that were loaded with it.

Arrow data (connectorx/pyarrow batches, Parquet and CSV files) is written to Parquet during
extract, imported by normalize without a rewrite, and COPYed by PostgreSQL through ADBC.
Two of dlt's defaults would undo that:

- ``add_dlt_id`` makes normalize re-encode every Parquet file to add a random ``_dlt_id``
  per row, and the destination then maintains a UNIQUE index on it (together more than the
  COPY itself). Arrow rows carry ``_dlt_load_id`` only; merges match on the primary key.
- one file per table: the load is one job and memory grows with the table. Files are
  rotated every :data:`ROWS_PER_FILE` rows instead, and :data:`LOAD_WORKERS` of them are
  COPYed at a time (dlt's default of 20 would hold up to 20 files in memory at once).

Tables loaded before (they have a NOT NULL ``_dlt_id`` column) keep getting one: the id is
appended to each Arrow batch during extract, per table, so no process-wide switch is needed.
"""

from __future__ import annotations

import secrets
from typing import Any

from dlt.common.normalizers.utils import DLT_ID_LENGTH_BYTES
from dlt.common.schema.typing import C_DLT_ID
from dlt.extract import DltSource

ROWS_PER_FILE = 100_000
"""Rows per extracted file (and load job): bounds memory and lets jobs load side by side."""

ARROW_NORMALIZER = {
    "normalize.parquet_normalizer.add_dlt_load_id": True,
    "normalize.parquet_normalizer.add_dlt_id": False,
}
"""How dlt's Arrow normalizer treats Arrow rows: add the load id, not a row id."""

LOAD_WORKERS = 2
"""Load jobs (COPYs) at a time."""

WRITER_SETTINGS = {"data_writer.file_max_items": ROWS_PER_FILE, "load.workers": LOAD_WORKERS}
"""dlt's file writers rotate files every ROWS_PER_FILE rows; the load runs LOAD_WORKERS jobs."""


def dlt_settings() -> dict[str, Any]:
    """Every dlt setting of the fast path, as dotted config keys."""
    return {**ARROW_NORMALIZER, **WRITER_SETTINGS}


def as_environment() -> dict[str, str]:
    """:func:`dlt_settings` as dlt's environment variables (which win over any other
    provider: a process that ingests from several threads pins them this way)."""
    return {key.replace(".", "__").upper(): str(v).lower() for key, v in dlt_settings().items()}


def tables_with_row_ids(source: DltSource, stored_tables: dict[str, Any]) -> list[str]:
    """The source's tables that already have a ``_dlt_id`` column in ``stored_tables`` (the
    pipeline's stored schema tables)."""
    names = []
    for resource in source.selected_resources.values():
        table = resource.table_name if isinstance(resource.table_name, str) else resource.name
        if C_DLT_ID in (stored_tables.get(table) or {}).get("columns", {}):
            names.append(table)
    return names


def keep_row_ids(source: DltSource, tables: list[str]) -> None:
    """Append ``_dlt_id`` to the Arrow batches of ``tables`` (dict rows get it from dlt)."""
    for resource in source.selected_resources.values():
        table = resource.table_name if isinstance(resource.table_name, str) else resource.name
        if table in tables:
            resource.add_map(with_row_ids)


def has_rows(item: Any) -> bool:
    """False for an empty Arrow batch: ConnectorX ends every stream with one, and with file
    rotation it can land alone in a file, which the ADBC load job cannot read."""
    return getattr(item, "num_rows", 1) > 0


def with_row_ids(item: Any) -> Any:
    """An Arrow table or batch with a random ``_dlt_id`` per row, like dlt's own; anything
    else unchanged."""
    import pyarrow as pa

    if not isinstance(item, (pa.Table, pa.RecordBatch)) or C_DLT_ID in item.schema.names:
        return item
    return item.append_column(
        pa.field(C_DLT_ID, pa.string(), nullable=False), row_ids(item.num_rows)
    )


def row_ids(count: int) -> Any:
    """``count`` random ids as dlt makes them (:data:`DLT_ID_LENGTH_BYTES` random bytes in
    base64, padding stripped), built in bulk: dlt's per-id loop took ≈ 0.6 s per million."""
    import base64

    import numpy as np
    import pyarrow as pa

    # 10 bytes, zero-padded to 12, encode to 16 characters whose first 14 are dlt's id
    width = -(-DLT_ID_LENGTH_BYTES // 3) * 3
    chars = -(-DLT_ID_LENGTH_BYTES * 4 // 3)
    raw = np.zeros((count, width), dtype=np.uint8)
    raw[:, :DLT_ID_LENGTH_BYTES] = np.frombuffer(
        secrets.token_bytes(count * DLT_ID_LENGTH_BYTES), dtype=np.uint8
    ).reshape(count, DLT_ID_LENGTH_BYTES)
    encoded = np.frombuffer(base64.b64encode(raw.tobytes()), dtype=np.uint8)
    text = np.ascontiguousarray(encoded.reshape(count, width // 3 * 4)[:, :chars])
    offsets = np.arange(0, (count + 1) * chars, chars, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        count, pa.py_buffer(offsets), pa.py_buffer(text.tobytes())
    ).cast(pa.string())
