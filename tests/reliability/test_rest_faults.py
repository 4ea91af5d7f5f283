"""REST API faults on 127.0.0.1: 429 with Retry-After, 500s, a timeout, a cut connection,
truncated JSON and a repeated page. After each, the load (or its rerun) holds exactly the
API's rows, each once, and the server saw exactly the requests the retry policy allows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from elt.config import RestApiSource
from ingestion.runner import IngestError, ingest
from tests.helpers.api_sources import tweets_api_source
from tests.helpers.warehouse import rows
from tests.reliability import faulty_api
from tests.reliability.faulty_api import PAGE_SIZE, SLOW_S, FaultyApi, answers

pytestmark = pytest.mark.integration

TOKEN = "fault-token-5b8e1d9c3a7f"
TWEETS = [{"id": i, "text": f"tweet {i}"} for i in range(1, 24)]  # 3 pages
REQUEST_TIMEOUT_S = SLOW_S / 2.5


@pytest.fixture
def api(monkeypatch, tmp_path) -> Iterator[FaultyApi]:
    """The faulty tweets API on 127.0.0.1, with short timeouts and backoff for dlt."""
    server, thread = faulty_api.start([dict(tweet) for tweet in TWEETS])
    monkeypatch.setenv("FAULT_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("FAULT_API_TOKEN", TOKEN)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("RUNTIME__REQUEST_TIMEOUT", str(REQUEST_TIMEOUT_S))
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.1")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "5")
    yield server
    faulty_api.stop(server, thread)


@pytest.fixture(scope="module")
def warehouse_url(pg) -> str:
    """An empty warehouse database for this module."""
    return pg.create_database("rest_faults_warehouse")


def _source(name: str) -> RestApiSource:
    return tweets_api_source(
        name, url_env="FAULT_API_URL", token_env="FAULT_API_TOKEN", page_size=PAGE_SIZE
    )


def _exactly_the_api(url: str, dataset: str) -> None:
    assert rows(url, f"select count(*), count(distinct id), sum(id) from {dataset}.tweets") == [
        (len(TWEETS), len(TWEETS), sum(t["id"] for t in TWEETS))
    ]


def test_429_with_retry_after_is_waited_out(api, warehouse_url):
    api.faults = {2: ["429"]}
    result = ingest(_source("f429"), destination_url=warehouse_url)
    assert result.rows == {"tweets": 23}
    assert answers(api) == [(1, "ok"), (2, "429"), (2, "ok"), (3, "ok")]
    waited = api.requests[2][2] - api.requests[1][2]
    assert 1.0 <= waited < 5, f"retried after {waited:.2f} s, not after Retry-After: 1"
    _exactly_the_api(warehouse_url, "raw_f429")


def test_500s_are_retried_with_exact_requests(api, warehouse_url):
    api.faults = {1: ["500", "500"], 3: ["500"]}
    result = ingest(_source("f500"), destination_url=warehouse_url)
    assert result.rows == {"tweets": 23}
    assert answers(api) == [
        (1, "500"), (1, "500"), (1, "ok"), (2, "ok"), (3, "500"), (3, "ok")
    ]  # fmt: skip
    _exactly_the_api(warehouse_url, "raw_f500")


def test_timeout_and_cut_connection_are_retried(api, warehouse_url):
    api.faults = {2: ["slow"], 3: ["cut"]}
    result = ingest(_source("fslow"), destination_url=warehouse_url)
    assert result.rows == {"tweets": 23}
    assert answers(api) == [(1, "ok"), (2, "slow"), (2, "ok"), (3, "cut"), (3, "ok")]
    _exactly_the_api(warehouse_url, "raw_fslow")


def test_persistent_500_fails_clearly_loads_nothing_then_rerun_is_exact(api, warehouse_url):
    api.faults = {2: ["500"] * 5}
    with pytest.raises(IngestError) as failure:
        ingest(_source("fdown"), destination_url=warehouse_url)
    message = str(failure.value)
    assert "source 'fdown'" in message and "500" in message
    assert TOKEN not in message
    assert answers(api) == [(1, "ok")] + [(2, "500")] * 5  # max attempts, then give up
    tables = rows(
        warehouse_url,
        "select count(*) from information_schema.tables"
        " where table_schema = 'raw_fdown' and table_name = 'tweets'",
    )
    assert tables == [(0,)]  # page 1 was not loaded alone
    api.requests.clear()
    ingest(_source("fdown"), destination_url=warehouse_url)
    assert answers(api) == [(1, "ok"), (2, "ok"), (3, "ok")]
    _exactly_the_api(warehouse_url, "raw_fdown")


def test_truncated_json_fails_clearly_then_rerun_is_exact(api, warehouse_url):
    api.faults = {3: ["badjson"]}
    with pytest.raises(IngestError) as failure:
        ingest(_source("fjson"), destination_url=warehouse_url)
    assert "source 'fjson'" in str(failure.value)
    assert TOKEN not in str(failure.value)
    assert rows(
        warehouse_url,
        "select count(*) from information_schema.tables where table_schema = 'raw_fjson'"
        " and table_name = 'tweets'",
    ) == [(0,)]
    ingest(_source("fjson"), destination_url=warehouse_url)
    _exactly_the_api(warehouse_url, "raw_fjson")


def test_a_repeated_page_makes_no_duplicate_and_a_rerun_fills_the_gap(api, warehouse_url):
    api.faults = {3: ["repeat"]}  # page 3 answers with page 2's rows
    ingest(_source("frepeat"), destination_url=warehouse_url)
    assert rows(warehouse_url, "select count(*), count(distinct id) from raw_frepeat.tweets") == [
        (20, 20)
    ]
    ingest(_source("frepeat"), destination_url=warehouse_url)
    _exactly_the_api(warehouse_url, "raw_frepeat")
