"""Flat REST API pages load as Arrow, and a page that is not flat (nested values, a changed
type) switches the resource back to dlt's dict path without losing or breaking anything.

Shapes the demo API does not have: pages mixing flat and nested rows, timestamps with and
without a zone, an integer column that turns to text, a table first loaded row by row then
as Arrow, served on 127.0.0.1 with Link-header pages.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from elt.config import RestApiSource
from ingestion.runner import ingest
from tests.helpers.events_api import EventsApi
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

PAGE_SIZE = 5


@pytest.fixture(scope="module")
def warehouse_url(pg) -> str:
    """An empty warehouse database for this module."""
    return pg.create_database("rest_arrow_pages")


@pytest.fixture
def api(monkeypatch, tmp_path):
    """A Link-paged API of whatever rows the test sets (``api.rows``), 5 a page."""
    server = EventsApi([], check=lambda _request: True, throttle=False, page_size=PAGE_SIZE)
    monkeypatch.setenv("ARROW_API_URL", server.url)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    yield server
    server.close()


def _source(name: str, **resource: Any) -> RestApiSource:
    return RestApiSource.model_validate(
        {
            "name": name,
            "type": "rest_api",
            "base_url": "env:ARROW_API_URL",
            "paginator": {"type": "header_link"},
            "resources": {"events": {"path": "events", "primary_key": "id", **resource}},
        }
    )


def _flat(number: int) -> dict[str, Any]:
    return {
        "id": number,
        "kind": f"k{number % 3}",
        "score": number / 2,
        "seen": number % 2 == 0,
        "created_at": f"2026-01-01T00:{number:02d}:00",  # naive: UTC, as dlt reads it
        "note": None if number % 4 else f"note, with a comma {number}",
    }


def _nested(number: int) -> dict[str, Any]:
    return {**_flat(number), "actor": {"login": f"user{number}"}, "tags": ["a", "b"]}


def _columns(url: str, schema: str, table: str) -> dict[str, str]:
    found = rows(
        url,
        "select column_name, data_type from information_schema.columns"
        " where table_schema = %s and table_name = %s",
        (schema, table),
    )
    return dict(found)


def test_flat_pages_then_a_nested_page_load_every_row_and_child_table(api, warehouse_url, caplog):
    api.rows = [_flat(n) for n in range(1, 11)] + [_nested(n) for n in range(11, 14)]

    with caplog.at_level(logging.INFO, logger="ingestion"):
        result = ingest(_source("arrow_nested"), destination_url=warehouse_url)

    assert result.rows["events"] == 13
    assert "after 2 page(s) as Arrow" in caplog.text
    assert rows(
        warehouse_url,
        "select count(*), count(distinct _dlt_id), count(actor__login), sum(score),"
        " count(*) filter (where seen), count(note), min(created_at), max(created_at)"
        " from raw_arrow_nested.events",
    ) == [
        (
            13,
            13,
            3,
            45.5,
            6,
            3,
            *rows(
                warehouse_url,
                "select '2026-01-01T00:01:00Z'::timestamptz, '2026-01-01T00:13:00Z'::timestamptz",
            )[0],
        )
    ]
    # the nested rows' lists hang on their parents
    assert rows(
        warehouse_url,
        "select count(*), count(e.id), min(e.id) from raw_arrow_nested.events__tags t"
        " join raw_arrow_nested.events e on e._dlt_id = t._dlt_parent_id",
    ) == [(6, 6, 11)]
    assert rows(warehouse_url, "select note from raw_arrow_nested.events where id = 8") == [
        ("note, with a comma 8",)
    ]
    columns = _columns(warehouse_url, "raw_arrow_nested", "events")
    assert columns["created_at"] == "timestamp with time zone"
    assert columns["id"] == "bigint" and columns["score"] == "double precision"


def test_a_column_changing_type_on_a_later_page_keeps_its_values(api, warehouse_url):
    api.rows = [{"id": n, "code": n * 10} for n in range(1, 6)] + [
        {"id": n, "code": f"X-{n}"} for n in range(6, 9)
    ]

    result = ingest(_source("arrow_drift"), destination_url=warehouse_url)

    assert result.rows["events"] == 8
    # dlt keeps the odd values in a variant column, as when every page went row by row
    assert rows(
        warehouse_url,
        "select count(code), count(code__v_text), min(code__v_text) from raw_arrow_drift.events",
    ) == [(5, 3, "X-6")]


def test_a_table_loaded_row_by_row_then_as_arrow_merges_on_its_key(api, warehouse_url):
    source = _source("arrow_after_dicts")
    api.rows = [_nested(n) for n in range(1, 8)]
    ingest(source, destination_url=warehouse_url)

    api.rows = [{**_flat(n), "kind": "updated"} for n in range(5, 13)]  # 3 known, 5 new keys
    second = ingest(source, destination_url=warehouse_url)

    assert second.rows["events"] == 8
    assert rows(
        warehouse_url,
        "select count(*), count(distinct id), count(*) filter (where kind = 'updated'),"
        " count(_dlt_id), count(actor__login) from raw_arrow_after_dicts.events",
    ) == [(12, 12, 8, 12, 4)]
    assert _columns(warehouse_url, "raw_arrow_after_dicts", "events")["created_at"] == (
        "timestamp with time zone"
    )


def test_an_incremental_cursor_still_filters_arrow_pages(api, warehouse_url):
    source = _source("arrow_cursor", incremental={"cursor_path": "created_at", "param": "since"})
    api.rows = [_flat(n) for n in range(1, 11)]
    first = ingest(source, destination_url=warehouse_url)

    api.rows = [_flat(n) for n in range(1, 16)]  # the API ignores `since`: dlt filters
    second = ingest(source, destination_url=warehouse_url)

    assert (first.rows["events"], second.rows["events"]) == (10, 5)
    assert first.file_formats == second.file_formats == {"events": "parquet"}  # as Arrow
    assert rows(
        warehouse_url,
        "select count(*), count(distinct id), count(distinct _dlt_load_id)"
        " from raw_arrow_cursor.events",
    ) == [(15, 15, 2)]
