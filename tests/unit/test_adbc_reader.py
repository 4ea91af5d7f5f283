"""The ADBC table loader's pieces that need no database: which columns it reads, how it
types ADBC's Arrow, and its read-ahead thread."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from ingestion.sources.adbc_reader import _as_connectorx_types, adbc_readable, prefetched


def column(kind: sa.types.TypeEngine) -> sa.Column:
    return sa.Column("c", kind)


@pytest.mark.parametrize(
    ("kind", "readable"),
    [
        (pg.INTEGER(), True),
        (pg.TEXT(), True),
        (pg.TIMESTAMP(timezone=True), True),
        (pg.UUID(), True),
        (pg.NUMERIC(10, 2), True),
        (pg.NUMERIC(38, 38), True),
        (pg.NUMERIC(), False),  # no scale to cast to
        (pg.NUMERIC(39, 2), False),  # wider than decimal128
        (pg.NUMERIC(5, -2), False),
        (pg.TIME(timezone=True), False),
        (pg.JSONB(), False),
        (pg.CITEXT(), False),
        (pg.ENUM("a", "b", name="mood"), False),
        (pg.INTERVAL(), False),
        (pg.ARRAY(pg.INTEGER()), False),
    ],
)
def test_only_columns_read_exactly_take_the_adbc_path(kind, readable):
    assert adbc_readable(column(kind)) is readable


def test_adbc_arrow_is_typed_as_connectorx_streams_it():
    numeric = pa.opaque(pa.string(), type_name="numeric", vendor_name="PostgreSQL")
    typmod = str(((6 << 16) | 4) + 4).encode()  # numeric(6, 4), as PostgreSQL stores it
    batch = pa.record_batch(
        [
            pa.ExtensionArray.from_storage(numeric, pa.array(["1.5000", None, "-12.0625"])),
            pa.array([1, 2, 3], pa.int16()),
            pa.array([0.5, 1.25, None], pa.float32()),
            pa.array(["a", "b", "c"]),
        ],
        schema=pa.schema(
            [
                pa.field(
                    "price",
                    numeric,
                    metadata={b"POSTGRESQL:type": b"numeric", b"POSTGRESQL:typmod": typmod},
                ),
                pa.field("small", pa.int16()),
                pa.field("ratio", pa.float32()),
                pa.field("name", pa.string(), metadata={b"POSTGRESQL:type": b"text"}),
            ]
        ),
    )

    table = _as_connectorx_types(batch)

    assert table.schema == pa.schema(
        [
            pa.field("price", pa.decimal128(6, 4)),
            pa.field("small", pa.int64()),
            pa.field("ratio", pa.float64()),
            pa.field("name", pa.string()),
        ]
    )
    assert table.column("price").to_pylist() == [Decimal("1.5000"), None, Decimal("-12.0625")]
    assert table.column("ratio").to_pylist() == [0.5, 1.25, None]


class Source:
    """An iterator of 0..n-1 that records how far it was read and can fail at ``fail_at``."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at, self.read = n, fail_at, 0

    def __iter__(self):
        for i in range(self.n):
            if i == self.fail_at:
                raise OSError(f"connection lost at batch {i}")
            self.read += 1
            yield i


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "adbc-prefetch"]


def test_prefetched_yields_everything_in_order_reading_at_most_depth_ahead():
    source = Source(50)
    seen = []
    for item in prefetched(source, depth=2):
        time.sleep(0.002)  # a slow consumer: the reader waits for room
        # consumed so far, plus up to 2 queued and the one the reader holds
        assert source.read <= len(seen) + 1 + 3
        seen.append(item)

    assert seen == list(range(50))
    assert reader_threads() == []


def test_prefetched_raises_the_read_error_after_the_batches_before_it():
    seen = []
    with pytest.raises(OSError, match="connection lost at batch 3"):
        for item in prefetched(Source(10, fail_at=3), depth=2):
            seen.append(item)

    assert seen == [0, 1, 2]
    assert reader_threads() == []


def test_closing_early_stops_the_reader():
    source = Source(10_000)
    batches = prefetched(source, depth=2)
    assert [next(batches), next(batches)] == [0, 1]

    batches.close()

    assert reader_threads() == []
    assert source.read < 10  # it stopped instead of reading the rest
