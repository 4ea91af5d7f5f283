"""Which REST API pages become Arrow tables, and with which types (no services)."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from ingestion.sources.rest_arrow import FlatPagesToArrow, flat_table


def test_flat_rows_keep_every_key_and_type_as_dlt_would():
    rows = [
        {"id": 1, "name": "a, b", "score": 1.5, "ok": True, "at": "2026-01-01T10:00:00"},
        {"id": 2, "name": "", "score": None, "ok": False, "extra": "only here"},
    ]

    table = flat_table(rows, {})

    assert table is not None
    assert table.column_names == ["id", "name", "score", "ok", "at", "extra"]
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert table.to_pylist()[0]["at"] == datetime(2026, 1, 1, 10, tzinfo=UTC)  # naive: UTC
    assert table.to_pylist()[1] == {
        "id": 2,
        "name": "",
        "score": None,
        "ok": False,
        "at": None,
        "extra": "only here",
    }


def test_zoned_timestamps_are_converted_to_utc():
    table = flat_table([{"at": "2026-01-01T10:00:00+02:00"}, {"at": "2026-01-01T10:00:00Z"}], {})

    assert table is not None
    assert table.column("at").to_pylist() == [
        datetime(2026, 1, 1, 8, tzinfo=UTC),
        datetime(2026, 1, 1, 10, tzinfo=UTC),
    ]


def test_pages_dlt_would_split_or_type_otherwise_are_refused():
    refused = {
        "nested object": [{"id": 1, "actor": {"login": "x"}}],
        "list": [{"id": 1, "tags": ["a"]}],
        "int and text in a column": [{"v": 1}, {"v": "x"}],
        "first int then float (dlt: bigint, then a variant)": [{"v": 1}, {"v": 2.5}],
        "naive and zoned timestamps": [{"at": "2026-01-01T10:00:00"}, {"at": "2026-01-01Z"}],
        "a timestamp column with another text": [{"at": "2026-01-01T10:00:00"}, {"at": "soon"}],
        "integer beyond 64 bits": [{"v": 2**70}],
        "not a dict": [{"v": 1}, None],
    }
    for shape, rows in refused.items():
        assert flat_table(rows, {}) is None, shape


def test_a_column_typed_text_earlier_stays_text():
    rows = [{"at": "2026-01-01T10:00:00"}]

    assert flat_table(rows, {"at": pa.string()}).schema.field("at").type == pa.string()
    assert flat_table(rows, {}, lambda name: "text").schema.field("at").type == pa.string()
    # the first value decides, as dlt's detection does
    mixed = flat_table([{"at": "later"}, {"at": "2026-01-01T10:00:00"}], {})
    assert mixed.schema.field("at").type == pa.string()


def test_the_first_page_that_does_not_fit_switches_the_resource_to_dicts_for_good():
    step = FlatPagesToArrow("events", ["id"])
    flat = [{"id": 1, "kind": "a"}, {"id": 2, "kind": "b"}]
    nested = [{"id": 3, "actor": {"login": "x"}}]

    first = step(flat)
    assert isinstance(first, pa.Table)
    assert first.column_names == ["id", "kind", "_dlt_id"]
    assert len(set(first.column("_dlt_id").to_pylist())) == 2
    assert step(nested) is nested
    assert step(flat) is flat  # dicts from now on: their types are dlt's to infer
    assert step([]) == [] and step({"id": 9}) == {"id": 9}


def test_a_missing_key_value_or_a_changed_type_goes_to_the_dict_path():
    assert FlatPagesToArrow("t", ["id"])([{"id": None, "v": 1}]) == [{"id": None, "v": 1}]
    step = FlatPagesToArrow("t", ["id"])
    assert isinstance(step([{"id": 1, "v": 1}]), pa.Table)
    assert step([{"id": 2, "v": True}]) == [{"id": 2, "v": True}]
