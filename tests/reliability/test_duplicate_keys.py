"""Duplicate primary keys in one source batch are reported (count, examples) before the
merge collapses them: the ingest fails and loads nothing, or warns and loads one row per key."""

from __future__ import annotations

import pytest

from elt.config import FilesystemSource, RestApiSource, SqlDatabaseSource
from ingestion.errors import IngestError
from ingestion.runner import ingest
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration


@pytest.fixture
def warehouse(pg) -> str:
    return pg.create_database("dupkeys_warehouse")


@pytest.fixture
def source_url(pg, monkeypatch) -> str:
    """``events`` keyed by (stream, seq) with no key constraint: 3 keys sent twice."""
    url = pg.create_database("dupkeys_source")
    rows(
        url,
        "create table events (stream text not null, seq int not null, body text);"
        " insert into events select 's' || (g % 3), g, 'b' || g from generate_series(1, 60) g;"
        " insert into events values ('s1', 4, 'again'), ('s2', 5, 'again'), ('s0', 9, 'again'),"
        " ('s0', 9, 'thrice')",
    )
    monkeypatch.setenv("DUPKEYS_SOURCE_URL", url)
    return url


def _sql_source(policy: str) -> SqlDatabaseSource:
    table = {"primary_key": ["stream", "seq"], "duplicates": policy}
    return SqlDatabaseSource.model_validate(
        {
            "name": "dupkeys",
            "type": "sql_database",
            "credentials": "env:DUPKEYS_SOURCE_URL",
            "tables": {"events": table},
        }
    )


def test_duplicate_keys_fail_the_ingest_with_count_and_examples(source_url, warehouse, dlt_home):
    with pytest.raises(IngestError) as failed:
        ingest(_sql_source("fail"), destination_url=warehouse)

    message = str(failed.value)
    assert message.startswith(
        "ingest of source 'dupkeys' failed at table 'events': 3 key(s) appear more than once"
        " (7 rows), e.g. "
    )
    assert "stream='s0' seq=9" in message and "Nothing was loaded" in message
    assert rows(warehouse, "select to_regclass('raw_dupkeys.events')") == [(None,)]
    # the same batch, warned about, loads one row per key; a clean rerun has nothing to report
    messages: list[str] = []
    warned = ingest(_sql_source("warn"), destination_url=warehouse, progress=messages.append)
    assert warned.duplicates == {"events": 3}
    assert any(m.startswith("warning: dupkeys: table events: 3 key(s)") for m in messages)
    assert rows(warehouse, "select count(*) from raw_dupkeys.events") == [(60,)]


def test_duplicate_keys_in_a_csv_file_are_reported(warehouse, dlt_home, tmp_path):
    landing = tmp_path / "landing"
    (landing / "prices").mkdir(parents=True)
    (landing / "prices" / "day1.csv").write_text("sku,price\nA,1\nB,2\nA,3\n")
    source = FilesystemSource.model_validate(
        {
            "name": "dupfiles",
            "type": "filesystem",
            "bucket_url": landing.as_uri(),
            "files": {
                "prices": {
                    "glob": "prices/*.csv",
                    "format": "csv",
                    "primary_key": "sku",
                    "duplicates": "fail",
                }
            },
        }
    )

    with pytest.raises(
        IngestError, match=r"1 key\(s\) appear more than once \(2 rows\), e.g. sku='A'"
    ):
        ingest(source, destination_url=warehouse)


def test_duplicate_keys_on_the_rest_dict_path_are_reported(warehouse, dlt_home):
    """Nested events (dlt's dict path, no Parquet to read back), keyed by a camelCase field,
    with two ids sent twice across pages: the same failure, then one row per key on warn."""
    from tests.helpers.events_api import EventsApi, events

    sent = events(12)
    for event in sent:
        event["eventId"] = event.pop("id")
    sent += [{**sent[3], "kind": "again"}, {**sent[7], "kind": "again"}]
    api = EventsApi(sent, check=lambda _: True, throttle=False)

    def source(policy: str) -> RestApiSource:
        resource = {"path": "events", "primary_key": "eventId", "duplicates": policy}
        return RestApiSource.model_validate(
            {
                "name": "dupapi",
                "type": "rest_api",
                "base_url": api.url,
                "paginator": {"type": "header_link"},
                "resources": {"events": resource},
            }
        )

    try:
        with pytest.raises(IngestError) as failed:
            ingest(source("fail"), destination_url=warehouse)
        message = str(failed.value)
        assert "table 'events': 2 key(s) appear more than once (4 rows), e.g. " in message
        assert "event_id=4" in message and "event_id=8" in message
        assert rows(warehouse, "select to_regclass('raw_dupapi.events')") == [(None,)]

        warned = ingest(source("warn"), destination_url=warehouse)
        assert warned.duplicates == {"events": 2}
        assert rows(warehouse, "select count(*), count(distinct event_id) from raw_dupapi.events")[
            0
        ] == (12, 12)
    finally:
        api.close()
