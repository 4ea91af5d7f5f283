"""CSV files read into Arrow (pyarrow's C++ parser), so they take the fast path.

The values come out as pandas would read them (same NULL markers and booleans; dates and
times stay text), so the tables look as they did when CSV rows went through dlt as dicts.
A file stays on that slower dict path when the fast path would load it differently:

- pyarrow cannot parse it (the dict path then names the file and the line at fault),
- it is larger than :data:`MAX_ARROW_BYTES` (then streamed) and a later block does not fit
  the types pyarrow inferred from its first block (e.g. a column empty at first),
- a primary-key column is missing or has empty cells (dlt then names table and column),
- a column's type differs from the table's stored type or from an earlier file of the run
  (dlt then keeps the odd values in a variant column, e.g. ``cost__v_text``).

Arrow rows get a ``_dlt_id`` like dict rows do, so both kinds can share a table. Memory is
bounded: a file is parsed whole only up to :data:`MAX_ARROW_BYTES`; a larger one is read
twice a block at a time (checked, then loaded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.csv as pa_csv
from dlt.common.libs.pyarrow import get_column_type_from_py_arrow
from dlt.common.storages.fsspec_filesystem import FileItemDict
from dlt.extract.exceptions import CurrentSourceSchemaNotAvailable

from ingestion.fast_path import with_row_ids
from ingestion.sources.file_errors import MalformedFileError, first_line

MAX_ARROW_BYTES = 64 * 1024 * 1024
"""CSV files up to this size are parsed whole (one pass); larger ones are streamed twice."""

BLOCK_BYTES = 16 * 1024 * 1024
"""Bytes pyarrow parses at a time when it streams a file (memory stays flat in its size)."""

# pandas' default NULL markers and booleans
NULL_VALUES = [
    *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"),
    *("1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
]
TRUE_VALUES = ["True", "TRUE", "true"]
FALSE_VALUES = ["False", "FALSE", "false"]

# quoted values may hold line breaks: without this, a block could be cut inside one
_PARSE = pa_csv.ParseOptions(newlines_in_values=True)

ColumnTypes = dict[str, pa.DataType]
StoredTypes = Callable[[str], str | None]
"""Column name → its dlt data type in the stored schema, if any."""


def csv_arrow_batches(
    item: FileItemDict,
    table_name: str,
    primary_key: Sequence[str],
    seen: ColumnTypes,
    chunk_rows: int,
    check_columns: Callable[[list[str]], None] = lambda _names: None,
) -> Iterator[pa.RecordBatch] | None:
    """The file's rows as Arrow batches of at most ``chunk_rows`` rows with a ``_dlt_id``,
    or None when the file must take the dict path (see the module's docstring).

    A file up to :data:`MAX_ARROW_BYTES` is parsed whole; a larger one is streamed twice in
    blocks of :data:`BLOCK_BYTES` (once to check it, once to load it, both in bounded
    memory). ``check_columns`` sees the header first (it raises for a missing key column).
    """
    if (item.get("size_in_bytes") or 0) <= MAX_ARROW_BYTES:
        table = _read_whole(item)
        if table is None:
            return None
        check_columns(table.column_names)
        if not fits_fast_path(table, table_name, primary_key, seen):
            return None
        return iter(with_row_ids(table).to_batches(max_chunksize=chunk_rows) if len(table) else [])
    schema = _scan(item, primary_key)
    if schema is None:
        return None
    check_columns(schema.names)
    if not fits_fast_path(schema.empty_table(), table_name, primary_key, seen):
        return None
    return _stream(item, schema, chunk_rows)


def _read_whole(item: FileItemDict) -> pa.Table | None:
    """The whole file as an Arrow table, or None when pyarrow fails or finds no UTF-8."""
    with item.open(mode="rb") as handle:
        data = pa.py_buffer(handle.read())
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(data), _read_options(), _PARSE, convert_options=_convert({})
        )
        if _not_utf8(table.schema):
            return None  # the dict path names the byte and the file
        text = _temporal_as_text(table.schema)
        if text:
            return pa_csv.read_csv(
                pa.BufferReader(data), _read_options(), _PARSE, convert_options=_convert(text)
            )
        return table
    except (pa.ArrowException, ValueError):
        return None


def _scan(item: FileItemDict, primary_key: Sequence[str]) -> pa.Schema | None:
    """Read the whole file once, a block at a time: its schema (types inferred from the
    first block, dates and times as text), or None when a later block does not fit them,
    a key cell is empty, or pyarrow fails."""
    try:
        with _open(item, {}) as reader:
            text = _temporal_as_text(reader.schema)
        if _not_utf8(reader.schema):
            return None
        with _open(item, text) as reader:
            schema = reader.schema
            for batch in reader:
                if any(batch.column(key).null_count for key in primary_key if key in schema.names):
                    return None  # the dict path names table and column
        return schema
    except (pa.ArrowException, ValueError):
        return None


def _stream(item: FileItemDict, schema: pa.Schema, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """The file's batches read with the scanned ``schema``'s types; the file changing under
    the read fails naming it (its first part may be extracted already)."""
    types = {field.name: field.type for field in schema}
    try:
        with _open(item, types) as reader:
            for batch in reader:
                rows = pa.Table.from_batches([with_row_ids(batch)])
                for chunk in rows.to_batches(max_chunksize=chunk_rows):
                    if chunk.num_rows:
                        yield chunk
    except (pa.ArrowException, ValueError) as exc:
        raise MalformedFileError(item["file_url"], first_line(exc)) from exc


@contextmanager
def _open(item: FileItemDict, column_types: ColumnTypes) -> Iterator[pa_csv.CSVStreamingReader]:
    with item.open(mode="rb") as handle:
        reader = pa_csv.open_csv(
            handle,
            read_options=_read_options(),
            parse_options=_PARSE,
            convert_options=_convert(column_types),
        )
        try:
            yield reader
        finally:
            reader.close()


def _read_options() -> pa_csv.ReadOptions:
    # blocks, hence the Arrow batches handed to dlt, of BLOCK_BYTES: pyarrow's default of
    # 1 MiB made ≈ 12k-row batches, and dlt's extract pays a fixed cost per batch
    return pa_csv.ReadOptions(block_size=BLOCK_BYTES)


def _convert(column_types: ColumnTypes) -> pa_csv.ConvertOptions:
    return pa_csv.ConvertOptions(
        column_types=column_types,
        null_values=NULL_VALUES,
        true_values=TRUE_VALUES,
        false_values=FALSE_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )


def _not_utf8(schema: pa.Schema) -> bool:
    return any(pa.types.is_binary(field.type) for field in schema)


def _temporal_as_text(schema: pa.Schema) -> ColumnTypes:
    # pandas leaves dates and times as text; so does the fast path
    return {field.name: pa.string() for field in schema if pa.types.is_temporal(field.type)}


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


def stored_types(table_name: str) -> StoredTypes:
    """Column name as in the file → its data type in the source's stored schema, if any."""
    try:
        schema = dlt.current.source_schema()
    except CurrentSourceSchemaNotAvailable:
        return lambda _name: None
    columns: dict[str, Any] = schema.tables.get(table_name, {}).get("columns", {})
    # dlt normalizes header names (e.g. "Unit Cost" → unit_cost)
    return lambda name: columns.get(schema.naming.normalize_identifier(name), {}).get("data_type")
