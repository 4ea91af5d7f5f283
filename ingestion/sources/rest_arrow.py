"""Flat REST API pages turned into Arrow tables, so dlt does not normalize them row by row.

A page whose rows are flat (every value a string, number, boolean or null) becomes one Arrow
table built by pyarrow in C, written to Parquet during extract and COPYed through ADBC, like
database and CSV data. The rows load as the dict path would load them:

- types as dlt infers them from a column's first value: text, bigint, double, bool, and
  ISO timestamps detected with dlt's own rule (naive ones as UTC);
- every row gets a ``_dlt_id`` (dict rows get one from dlt), so Arrow and dict pages can share
  a table, and a nested page later (child tables hang on the parent's ``_dlt_id``) still fits.

The first page that would load differently switches its resource to dlt's dict path for the
rest of the run (nothing is lost: that page and every later one go as dicts): nested values
(dlt makes child tables or ``a__b`` columns of them), mixed types in a column (dlt makes a
variant column), a column whose type differs from the stored table's or an earlier page's,
a missing or empty primary-key value (dlt names it), or anything pyarrow cannot convert.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import pyarrow as pa
from dlt.common.schema.detections import is_iso_timestamp
from dlt.common.schema.typing import C_DLT_ID
from dlt.common.schema.utils import dlt_id_column
from dlt.extract import DltResource
from dlt.extract.items_transform import ItemTransform

from ingestion.fast_path import with_row_ids
from ingestion.sources.csv_arrow import ColumnTypes, StoredTypes, fits_fast_path, stored_types

log = logging.getLogger("ingestion")

_TIMESTAMP = pa.timestamp("us", tz="UTC")
_ARROW_TYPES = {"text": pa.string(), "timestamp": _TIMESTAMP}
"""dlt data types of stored columns that decide how a string column is read."""


class FlatPagesToArrow(ItemTransform[Any, dict[str, Any]]):
    """A resource step: each page (a list of dict rows) → an Arrow table while the pages
    are flat; the page unchanged (dlt's dict path) from the first one that is not."""

    placement_affinity: ClassVar[float] = 1.5  # after dlt's incremental and limit steps

    def __init__(self, table: str, primary_key: Sequence[str] = ()) -> None:
        super().__init__(lambda item: item)
        self.table = table
        self.primary_key = list(primary_key)
        self.seen: ColumnTypes = {}  # column types of this run's Arrow pages
        self.dict_path = False  # sticky: once a page goes as dicts, every later one does
        self.arrow_pages = 0

    def __call__(self, item: Any, meta: Any = None) -> Any:
        """The page as an Arrow table with ``_dlt_id``, or unchanged."""
        if self.dict_path or not isinstance(item, list) or not item:
            return item
        table = flat_table(item, self.seen, stored_types(self.table))
        if table is None or not fits_fast_path(table, self.table, self.primary_key, self.seen):
            self.dict_path = True
            log.info(
                "%s: a page is not flat or changes a column's type; it and the rest of this "
                "run's pages load row by row (after %d page(s) as Arrow)",
                self.table,
                self.arrow_pages,
            )
            return item
        self.arrow_pages += 1
        return with_row_ids(table)


def flat_table(
    rows: list[Any], seen: ColumnTypes, stored: StoredTypes = lambda _name: None
) -> pa.Table | None:
    """``rows`` as an Arrow table when they are flat dicts of one type per column, ISO
    timestamp strings as timestamps (unless an earlier page, ``seen``, or the stored table,
    ``stored``, has the column as text); else None."""
    try:
        values = pa.array(rows)  # a struct of the union of the rows' keys
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return None  # mixed types in a column, huge integers, not dicts
    if not pa.types.is_struct(values.type):
        return None
    columns, fields = [], []
    for index, field in enumerate(values.type):
        column = values.field(index)
        known = seen.get(field.name) or _ARROW_TYPES.get(stored(field.name) or "")
        typed = _typed(field.name, column, rows, known)
        if typed is None:
            return None
        columns.append(typed)
        fields.append(pa.field(field.name, typed.type))
    if values.null_count:  # a null row, not a dict
        return None
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _typed(
    name: str, column: pa.Array, rows: list[Any], known: pa.DataType | None
) -> pa.Array | None:
    """The column as the dict path would type it (``known``: its type so far in the run or
    the stored table), or None when it would not fit Arrow."""
    kind = column.type
    if pa.types.is_struct(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return None  # nested: child tables or flattened columns on the dict path
    if known is None and pa.types.is_floating(kind) and _first_is_int(name, rows):
        return None  # the dict path types the column bigint from its first value
    if not pa.types.is_string(kind) or known == pa.string():
        return column
    if known != _TIMESTAMP and not is_iso_timestamp(str, _first_value(name, rows)):
        return column
    return _as_timestamps(column)


def _first_is_int(name: str, rows: list[Any]) -> bool:
    value = _first_value(name, rows)
    return isinstance(value, int) and not isinstance(value, bool)


def _first_value(name: str, rows: list[Any]) -> Any:
    return next((row[name] for row in rows if row.get(name) is not None), None)


def _as_timestamps(column: pa.Array) -> pa.Array | None:
    """ISO strings → UTC timestamps (naive ones taken as UTC, as dlt does); None when one
    value does not parse or naive and zoned ones are mixed."""
    try:
        return column.cast(_TIMESTAMP)
    except pa.ArrowException:
        pass
    try:
        return column.cast(pa.timestamp("us")).cast(_TIMESTAMP)
    except pa.ArrowException:
        return None


def add_arrow_pages(
    resources: dict[str, DltResource], primary_keys: dict[str, Sequence[str]], parents: set[str]
) -> None:
    """Add :class:`FlatPagesToArrow` to every resource but the ``parents`` (their child
    resources read the parent's pages as dicts). ``_dlt_id`` is declared as dlt's row key,
    as the dict path declares it: a merge of nested rows finds their parents through it."""
    for name, resource in resources.items():
        if name in parents:
            continue
        table = resource.table_name if isinstance(resource.table_name, str) else name
        resource.add_step(FlatPagesToArrow(table, primary_keys.get(name, ())))
        resource.apply_hints(columns={C_DLT_ID: dlt_id_column()})
