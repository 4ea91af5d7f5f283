"""Every REST auth pipelines.yml offers, against a loopback API that accepts only it."""

from __future__ import annotations

import base64
import time

import pytest

from elt.config import RestApiSource
from ingestion.runner import IngestError, ingest
from tests.helpers.events_api import EventsApi, Request, events
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

KEY = "auth-key-7e2b91"
CLIENT = ("client-4d1f", "client-secret-93ac0b")
BASIC = base64.b64encode(b"reader:" + KEY.encode()).decode()

# auth block of pipelines.yml → what the server accepts
CASES = {
    "scheme": (
        {"type": "bearer", "scheme": "token", "token": "env:AUTH_KEY"},
        lambda r: r.headers.get("Authorization") == f"token {KEY}",
    ),
    "header": (
        {"type": "api_key", "name": "X-Events-Key", "api_key": "env:AUTH_KEY"},
        lambda r: r.headers.get("X-Events-Key") == KEY,
    ),
    "query": (
        {"type": "api_key", "name": "key", "location": "query", "api_key": "env:AUTH_KEY"},
        lambda r: r.query.get("key") == KEY,
    ),
    "cookie": (
        {"type": "api_key", "name": "sid", "location": "cookie", "api_key": "env:AUTH_KEY"},
        lambda r: r.cookies.get("sid") == KEY,
    ),
    "basic": (
        {"type": "http_basic", "username": "reader", "password": "env:AUTH_KEY"},
        lambda r: r.headers.get("Authorization") == f"Basic {BASIC}",
    ),
}


@pytest.fixture(scope="module")
def warehouse_url(pg) -> str:
    """A warehouse database for this module (the roles load into it)."""
    return pg.create_database("rest_auth_test")


@pytest.fixture(autouse=True)
def auth_env(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AUTH_KEY", KEY)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0")


def _source(name: str, base_url: str, auth: dict) -> RestApiSource:
    return RestApiSource.model_validate(
        {
            "name": name,
            "type": "rest_api",
            "base_url": base_url,
            "auth": auth,
            "paginator": {"type": "header_link"},
            "resources": {"events": {"path": "events", "primary_key": "id"}},
        }
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_auth_type_loads_and_a_wrong_key_is_refused(warehouse_url, monkeypatch, case):
    auth, check = CASES[case]
    api = EventsApi(events(12), check=check)
    try:
        result = ingest(_source(f"auth_{case}", api.url, auth), destination_url=warehouse_url)
        assert result.rows["events"] == 12
        assert rows(warehouse_url, f"select count(distinct id) from raw_auth_{case}.events") == [
            (12,)
        ]
        monkeypatch.setenv("AUTH_KEY", "wrong-key")
        with pytest.raises(IngestError) as refused:
            ingest(_source(f"auth_{case}", api.url, auth), destination_url=warehouse_url)
        assert "401" in str(refused.value) and "wrong-key" not in str(refused.value)
    finally:
        api.close()


def test_oauth2_client_credentials_renews_the_token_before_it_expires(warehouse_url, monkeypatch):
    monkeypatch.setenv("EVENTS_CLIENT_ID", CLIENT[0])
    monkeypatch.setenv("EVENTS_CLIENT_SECRET", CLIENT[1])
    holder: dict[str, EventsApi] = {}

    def check(request: Request) -> bool:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        valid = scheme == "Bearer" and holder["api"].token_valid(token)
        time.sleep(0.8)  # 5 pages (and their 429s) of 0.8 s each outlive a 3 s token
        return valid

    # renewed with 20 % (0.6 s) of the token's life left: room for a loaded machine's delays
    api = holder["api"] = EventsApi(events(25), check=check, token_ttl=3.0, client=CLIENT)
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": f"{api.url}token",
        "client_id": "env:EVENTS_CLIENT_ID",
        "client_secret": "env:EVENTS_CLIENT_SECRET",
    }
    try:
        result = ingest(_source("auth_oauth", api.url, auth), destination_url=warehouse_url)
    finally:
        api.close()

    assert result.rows["events"] == 25
    assert api.served == 5 and api.tokens_issued >= 2
    assert rows(warehouse_url, "select count(distinct id) from raw_auth_oauth.events") == [(25,)]
