"""A team's own ``@dlt.source`` (ingestion/custom/events_feed.py) declared as ``type: dlt``
in a temporary pipelines.yml, arguments from YAML and the environment, loaded through the same
runner under the roles."""

from __future__ import annotations

import pytest

from elt import config as elt_config
from elt import roles
from elt.scaffold import raw_tables
from ingestion.runner import IngestError, ingest
from tests.helpers.events_api import EventsApi, events
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

TOKEN = "feed-token-2b8e4a"

PIPELINES_YML = """\
version: 1
sources:
  feed:
    type: dlt
    source: ingestion.custom.events_feed:events_feed
    args: {base_url: env:FEED_URL, token: env:FEED_TOKEN, page_size: 4}
pipelines:
  p: {sources: [feed]}
"""


@pytest.fixture
def feed(pg, tmp_path, monkeypatch):
    """The events API, its URL and token in the environment, and the configured source."""
    api = EventsApi(events(10), check=lambda r: r.headers.get("Authorization") == f"Bearer {TOKEN}")
    monkeypatch.setenv("FEED_URL", api.url)
    monkeypatch.setenv("FEED_TOKEN", TOKEN)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0")
    path = tmp_path / "pipelines.yml"
    path.write_text(PIPELINES_YML)
    yield api, elt_config.load(path).sources["feed"]
    api.close()


def test_a_custom_dlt_source_loads_through_the_runner_under_the_roles(pg, feed):
    api, source = feed
    url = pg.create_database("custom_source_test")

    first = ingest(source, destination_url=url)
    api.rows = events(10, version=2)
    api.throttled.clear()
    second = ingest(source, destination_url=url)

    assert first.rows["events"] == 10 and second.rows["events"] == 10
    assert api.served == 6  # 3 pages of 4 per run: page_size came from the YAML
    assert rows(
        url,
        "select count(*), count(distinct id), count(*) filter (where kind = 'edited'),"
        " count(distinct _dlt_load_id) from raw_feed.events",
    ) == [(10, 10, 5, 1)]
    assert rows(url, "select count(*) from raw_feed.events__payload__items") == [(20,)]
    # scaffolding reads the keys from the function's own dlt schema (named events_feed)
    tables = {table.name: table for table in raw_tables(url, "feed")}
    assert tables["events"].primary_key == ["id"]
    assert tables["events__payload__items"].parent == "events"
    if roles.in_use():
        assert rows(
            url, "select distinct tableowner from pg_tables where schemaname = 'raw_feed'"
        ) == [(roles.LOADER,)]


def test_a_wrong_token_is_a_clear_error_without_the_token(pg, feed, monkeypatch):
    _, source = feed
    monkeypatch.setenv("FEED_TOKEN", "not-the-token-77")
    with pytest.raises(IngestError) as failure:
        ingest(source, destination_url=pg.create_database("custom_source_bad"))
    assert "source 'feed'" in str(failure.value) and "401" in str(failure.value)
    assert "not-the-token-77" not in str(failure.value)
