"""CSV files read into Arrow (pyarrow's C++ parser), so they take the fast path.

The values come out as pandas would read them (same NULL markers and booleans; dates and
times stay text), so the tables look as they did when CSV rows went through dlt as dicts.
A file stays on that slower dict path when the fast path would load it differently:

- pyarrow cannot parse it (the dict path then names the file and the line at fault),
- it is larger than :data:`MAX_ARROW_BYTES` (read whole into memory here),
- a primary-key column is missing or has empty cells (dlt then names table and column),
- a column's type differs from the table's stored type or from an earlier file of the run
  (dlt then keeps the odd values in a variant column, e.g. ``cost__v_text``).

Arrow rows get a ``_dlt_id`` like dict rows do, so both kinds can share a table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.csv as pa_csv
from dlt.common.libs.pyarrow import get_column_type_from_py_arrow
from dlt.common.storages.fsspec_filesystem import FileItemDict
from dlt.extract.exceptions import CurrentSourceSchemaNotAvailable

from ingestion.fast_path import with_row_ids

MAX_ARROW_BYTES = 256 * 1024 * 1024
"""Larger CSV files are read in chunks as dicts: memory stays flat, loading is slower."""

# pandas' default NULL markers and booleans
NULL_VALUES = [
    *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"),
    *("1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
]
TRUE_VALUES = ["True", "TRUE", "true"]
FALSE_VALUES = ["False", "FALSE", "false"]

ColumnTypes = dict[str, pa.DataType]
StoredTypes = Callable[[str], str | None]
"""Column name → its dlt data type in the stored schema, if any."""


def read_csv_arrow(item: FileItemDict) -> pa.Table | None:
    """The whole file as an Arrow table, or None when it is too big or pyarrow fails."""
    if (item.get("size_in_bytes") or 0) > MAX_ARROW_BYTES:
        return None
    with item.open(mode="rb") as handle:
        data = pa.py_buffer(handle.read())
    try:
        table = _parse(data, {})
        if any(pa.types.is_binary(field.type) for field in table.schema):
            return None  # not UTF-8: the dict path names the byte and the file
        text = {f.name: pa.string() for f in table.schema if pa.types.is_temporal(f.type)}
        return _parse(data, text) if text else table
    except (pa.ArrowException, ValueError):
        return None


def _parse(data: pa.Buffer, column_types: ColumnTypes) -> pa.Table:
    convert = pa_csv.ConvertOptions(
        column_types=column_types,
        null_values=NULL_VALUES,
        true_values=TRUE_VALUES,
        false_values=FALSE_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    return pa_csv.read_csv(pa.BufferReader(data), convert_options=convert)


def fits_fast_path(
    table: pa.Table, table_name: str, primary_key: Sequence[str], seen: ColumnTypes
) -> bool:
    """True when loading ``table`` as Arrow gives what the dict path would; records its
    column types in ``seen`` (the types of the run's earlier files)."""
    for key in primary_key:
        if key not in table.column_names or table.column(key).null_count:
            return False
    stored = stored_types(table_name)
    for field in table.schema:
        if pa.types.is_null(field.type):
            continue  # an empty column: nothing to compare, dlt skips it
        earlier = seen.get(field.name)
        if earlier is not None and earlier != field.type:
            return False
        data_type = stored(field.name)
        if data_type and get_column_type_from_py_arrow(field.type)["data_type"] != data_type:
            return False
    for field in table.schema:
        if not pa.types.is_null(field.type):
            seen.setdefault(field.name, field.type)
    return True


def arrow_batches(table: pa.Table, chunk_rows: int) -> list[pa.RecordBatch]:
    """The file's rows with a ``_dlt_id``, in batches of ``chunk_rows``."""
    if not table.num_rows:
        return []
    return with_row_ids(table).to_batches(max_chunksize=chunk_rows)


def stored_types(table_name: str) -> StoredTypes:
    """Column name as in the file → its data type in the source's stored schema, if any."""
    try:
        schema = dlt.current.source_schema()
    except CurrentSourceSchemaNotAvailable:
        return lambda _name: None
    columns: dict[str, Any] = schema.tables.get(table_name, {}).get("columns", {})
    # dlt normalizes header names (e.g. "Unit Cost" → unit_cost)
    return lambda name: columns.get(schema.naming.normalize_identifier(name), {}).get("data_type")
