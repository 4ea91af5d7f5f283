"""Duplicate keys across a batch's Parquet files are found through row hashes: the same
keys, counts and examples as grouping every key, for every key shape."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from ingestion import duplicates


def _files(tmp_path, *tables: pa.Table) -> list[str]:
    paths = []
    for number, table in enumerate(tables):
        path = tmp_path / f"part{number}.parquet"
        pq.write_table(table, path)
        paths.append(str(path))
    return paths


def test_a_key_repeated_in_another_file_with_a_wider_type_is_found(tmp_path):
    paths = _files(
        tmp_path,
        pa.table({"id": pa.array([1, 2, 3], pa.int32())}),
        pa.table({"id": pa.array([3, 4, 2**40], pa.int64())}),
    )
    found = duplicates._duplicates("t", paths, ["id"])
    assert found is not None
    assert (found.keys, found.rows, found.examples) == (1, 2, [{"id": 3}])


def test_composite_text_keys_count_keys_and_rows(tmp_path):
    paths = _files(
        tmp_path,
        pa.table({"a": ["x", "y", "x"], "b": [1, 1, 1], "v": [0, 0, 0]}),
        pa.table({"a": ["x", "xx", "", None], "b": [2, 1, 1, 1], "v": [0, 0, 0, 0]}),
    )
    found = duplicates._duplicates("t", paths, ["a", "b"])
    assert found is not None
    assert (found.keys, found.rows, found.examples) == (1, 2, [{"a": "x", "b": 1}])


def test_many_distinct_keys_over_several_batches_have_no_duplicates(tmp_path, monkeypatch):
    monkeypatch.setattr(duplicates, "BATCH_ROWS", 1000)
    ids = [f"item-{n}-x{n % 7}" for n in range(30_000)]
    paths = _files(tmp_path, *(pa.table({"id": ids[i : i + 10_000]}) for i in (0, 10_000, 20_000)))
    assert duplicates._duplicates("t", paths, ["id"]) is None
    # the same keys plus one repeat, far apart: found
    paths = _files(tmp_path, pa.table({"id": ids}), pa.table({"id": [ids[-1]]}))
    found = duplicates._duplicates("t", paths, ["id"])
    assert found is not None and found.examples == [{"id": ids[-1]}]


def test_decimal_timestamp_and_null_keys(tmp_path):
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    paths = _files(
        tmp_path,
        pa.table(
            {
                "price": pa.array([Decimal("1.10"), Decimal("2.00")], pa.decimal128(10, 2)),
                "at": pa.array([when, when], pa.timestamp("us", tz="UTC")),
            }
        ),
        pa.table(
            {
                "price": pa.array([Decimal("1.10"), None, None], pa.decimal128(10, 2)),
                "at": pa.array([when, None, None], pa.timestamp("us", tz="UTC")),
            }
        ),
    )
    found = duplicates._duplicates("t", paths, ["price", "at"])
    assert found is not None
    # grouping counts the null key as a key seen twice, as before
    assert (found.keys, found.rows) == (2, 4)
    assert {"price": Decimal("1.10"), "at": when} in found.examples


def test_no_files_no_duplicates(tmp_path):
    assert duplicates._duplicates("t", [], ["id"]) is None
