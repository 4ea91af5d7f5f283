"""Duplicate primary keys inside one batch, found before the load merges them into one row.

A source whose key constraint was dropped can send a key twice in one extract; dlt's merge
keeps one row per key and says nothing. After normalize, the key columns of each checked
table are read from the package's Parquet files (key columns only) and grouped; a key seen
twice is reported with the count and a few examples. Tables that dlt writes in other
formats (the dict path of REST APIs) leave no Parquet to read back: their root items are
counted as they are extracted (:class:`ItemKeys`), the same rule on the same batch.

Memory stays small whatever the batch's size: the key columns are read in batches and kept
only as one 64-bit hash per row; only the rows whose hash is repeated (the duplicates, and
the rare hash collision) are read again and grouped by their real values. Grouping every
key at once held ≈ 1 GiB for 3.2M text keys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dlt.common.normalizers.naming.snake_case import NamingConvention

EXAMPLES = 3
_NAMING = NamingConvention()
BATCH_ROWS = 65_536
"""Key rows read at a time."""


@dataclass
class Duplicates:
    """Keys seen more than once in a table's batch: how many keys, how many rows, examples."""

    table: str
    keys: int
    rows: int
    examples: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        """``3 key(s) appear more than once (7 rows), e.g. id=5, id=9``."""
        shown = ", ".join(
            " ".join(f"{name}={value!r}" for name, value in example.items())
            for example in self.examples
        )
        return f"{self.keys} key(s) appear more than once ({self.rows} rows), e.g. {shown}"


def find_duplicates(pipeline: Any, keys: dict[str, list[str]]) -> list[Duplicates]:
    """Duplicated keys per table in the pipeline's normalized packages; ``keys`` maps dlt
    table names to their (dlt) key column names."""
    files: dict[str, list[str]] = {}
    for load_id in pipeline.list_normalized_load_packages():
        package = pipeline.get_load_package_info(load_id)
        for job in package.jobs.get("new_jobs", []):
            info = job.job_file_info
            if info.table_name in keys and info.file_format == "parquet":
                files.setdefault(info.table_name, []).append(job.file_path)
    found = []
    for table, paths in files.items():
        duplicates = _duplicates(table, paths, keys[table])
        if duplicates:
            found.append(duplicates)
    return found


def _duplicates(table: str, paths: list[str], key: list[str]) -> Duplicates | None:
    hashes = np.concatenate([_hashes(batch) for batch in _key_batches(paths, key)] or [[]])
    ordered = np.sort(hashes)
    repeated_hashes = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if not repeated_hashes.size:
        return None
    candidates = pa.concat_tables(
        [
            pa.Table.from_batches(
                [batch.filter(pa.array(np.isin(_hashes(batch), repeated_hashes)))]
            )
            for batch in _key_batches(paths, key)
        ],
        promote_options="permissive",  # files of one table may differ: int32/int64 …
    )
    counts = candidates.group_by(key).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    if not repeated.num_rows:  # only hash collisions
        return None
    return Duplicates(
        table=table,
        keys=repeated.num_rows,
        rows=pc.sum(repeated["count_all"]).as_py(),
        examples=repeated.select(key).slice(0, EXAMPLES).to_pylist(),
    )


def _key_batches(paths: list[str], key: list[str]) -> Iterator[pa.RecordBatch]:
    """The key columns of every file, :data:`BATCH_ROWS` rows at a time."""
    for path in paths:
        yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=key)


_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def _hashes(batch: pa.RecordBatch) -> np.ndarray:
    """One 64-bit hash per row of ``batch``'s key columns: equal keys hash alike whatever
    the width of their type (other keys rarely do; the caller compares real values)."""
    combined = np.zeros(batch.num_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in batch.columns:
            combined = combined * _MULTIPLIER + _column_hashes(column)
    return combined


def _column_hashes(column: pa.Array) -> np.ndarray:
    hashes = _value_hashes(column)
    if column.null_count:  # whatever bytes a null slot holds
        hashes[column.is_null().to_numpy(zero_copy_only=False)] = 0
    return hashes


def _value_hashes(column: pa.Array) -> np.ndarray:
    with np.errstate(over="ignore"):
        if pa.types.is_integer(column.type):
            return column.fill_null(0).to_numpy().astype(np.uint64)  # a copy: writable
        if not pa.types.is_string(column.type):
            column = column.cast(pa.string())  # decimals, dates, timestamps: as text
        text = column.cast(pa.large_binary())
        offsets = np.frombuffer(text.buffers()[1], np.int64)[
            text.offset : text.offset + len(text) + 1
        ]
        lengths = np.diff(offsets).astype(np.int64)
        data = text.buffers()[2]
        hashes = lengths.astype(np.uint64)
        if data is None or not lengths.any():
            return hashes
        raw = np.frombuffer(data, np.uint8)[offsets[0] : offsets[-1]].astype(np.uint64)
        # a polynomial of each value's bytes: byte i of a value weighs MULTIPLIER ** (i + 1)
        position = np.arange(raw.size) - np.repeat(offsets[:-1] - offsets[0], lengths)
        powers = np.cumprod(np.full(int(lengths.max()), _MULTIPLIER, dtype=np.uint64))
        terms = raw * powers[position]
        filled = lengths > 0
        hashes[filled] += np.add.reduceat(terms, (offsets[:-1] - offsets[0])[filled])
        hashes ^= hashes >> np.uint64(31)
        return hashes * _MULTIPLIER


def key_policies(source: Any) -> dict[str, tuple[list[str], str]]:
    """dlt table name → (dlt key columns, ``fail``/``warn``) of every keyed table, resource
    or file set of a configured source."""
    naming = _NAMING
    items = getattr(source, "tables", None) or getattr(source, "resources", None) or {}
    items = items or getattr(source, "files", None) or {}
    return {
        naming.normalize_table_identifier(name): (
            [naming.normalize_identifier(column) for column in item.primary_key],
            item.duplicates,
        )
        for name, item in items.items()
        if item.primary_key
    }


class ItemKeys:
    """The primary keys of one table's dict items, counted as dlt extracts them.

    Added to a resource with ``resource.add_map(ItemKeys(...))``; it returns each item
    unchanged. The keys are kept exactly (a set of tuples): REST batches are pages of an API,
    far smaller than the database batches the Parquet check hashes.
    """

    def __init__(self, table: str, columns: list[str]) -> None:
        self.table = table
        self.columns = columns  # dlt's names (``user_id``)
        self._fields: list[str] | None = None  # the items' own names (``userId``)
        self._seen: set[tuple[Any, ...]] = set()
        self._repeats: Counter[tuple[Any, ...]] = Counter()

    def __call__(self, item: Any) -> Any:
        """Count ``item``'s key (items without the key columns are dlt's to refuse)."""
        if isinstance(item, dict):
            if self._fields is None:
                named = {_NAMING.normalize_identifier(name): name for name in item}
                self._fields = [named.get(column, column) for column in self.columns]
            key = tuple(_hashable(item.get(field)) for field in self._fields)
            if key in self._seen:
                self._repeats[key] += 1
            else:
                self._seen.add(key)
        return item

    def found(self) -> Duplicates | None:
        """The keys seen more than once so far, or None."""
        if not self._repeats:
            return None
        return Duplicates(
            table=self.table,
            keys=len(self._repeats),
            rows=sum(self._repeats.values()) + len(self._repeats),
            examples=[dict(zip(self.columns, key, strict=True)) for key in self._repeats][
                :EXAMPLES
            ],
        )


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, dict | list) else value


def count_item_keys(
    resources: Iterable[Any], policies: dict[str, tuple[list[str], str]]
) -> list[ItemKeys]:
    """An :class:`ItemKeys` on every resource whose table is keyed in ``policies`` (see
    :func:`key_policies`), added to the resource; returns them to read after the extract."""
    counters = []
    for resource in resources:
        table = _NAMING.normalize_table_identifier(resource.name)
        if table in policies:
            counter = ItemKeys(table, policies[table][0])
            resource.add_map(counter)
            counters.append(counter)
    return counters
