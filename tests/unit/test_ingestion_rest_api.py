"""rest_api config → typed dlt RESTAPIConfig: client, auth, paginators, resources."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dlt.sources.helpers.rest_client.auth import APIKeyAuth, BearerTokenAuth, HttpBasicAuth
from dlt.sources.helpers.rest_client.paginators import (
    HeaderLinkPaginator,
    JSONLinkPaginator,
    JSONResponseCursorPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    SinglePagePaginator,
)

from elt.config import MissingEnvError, Paginator, RestApiSource
from ingestion.sources import build_source
from ingestion.sources.rest_api import (
    RestConfigError,
    build_paginator,
    endpoint_path,
    rest_api_config,
)

TOKEN = "unit-token-9f8e7d6c"


@pytest.fixture(autouse=True)
def _api_env(monkeypatch):
    monkeypatch.setenv("UNIT_API_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("UNIT_API_TOKEN", TOKEN)
    monkeypatch.setenv("UNIT_API_KEY", "key-123456")
    monkeypatch.setenv("UNIT_API_PASSWORD", "pw-654321")
    monkeypatch.setenv("UNIT_TENANT", "acme")


def social(**overrides) -> RestApiSource:
    spec = {
        "name": "social",
        "type": "rest_api",
        "base_url": "env:UNIT_API_URL",
        "headers": {"X-Tenant": "env:UNIT_TENANT", "Accept": "application/json"},
        "auth": {"type": "bearer", "token": "env:UNIT_API_TOKEN"},
        "paginator": {"type": "page_number", "page_param": "page", "total_path": "total_pages"},
        "resources": {
            "tweets": {
                "path": "tweets",
                "data_selector": "data",
                "primary_key": "id",
                "params": {"page_size": 100},
                "incremental": {"cursor_path": "tweeted_at", "param": "since", "lookback": "1h"},
            },
            "users": {"path": "users", "paginator": {"type": "offset", "limit": 50}},
            "replies": {"path": "tweets/{id}/replies", "parent": "tweets", "primary_key": "id"},
        },
    }
    spec.update(overrides)
    return RestApiSource.model_validate(spec)


def test_client_gets_the_resolved_url_headers_and_bearer_token():
    config = rest_api_config(social())
    client = config["client"]

    assert client["base_url"] == "http://127.0.0.1:9/v1"
    assert client["headers"] == {"X-Tenant": "acme", "Accept": "application/json"}
    assert isinstance(client["auth"], BearerTokenAuth)
    assert client["auth"].token == TOKEN


def test_api_key_and_basic_auth_read_their_secrets_from_the_environment():
    key = rest_api_config(
        social(
            auth={
                "type": "api_key",
                "name": "X-Key",
                "location": "query",
                "api_key": "env:UNIT_API_KEY",
            }
        )
    )["client"]["auth"]
    basic = rest_api_config(
        social(auth={"type": "http_basic", "username": "bot", "password": "env:UNIT_API_PASSWORD"})
    )["client"]["auth"]

    assert isinstance(key, APIKeyAuth)
    assert (key.name, key.api_key, key.location) == ("X-Key", "key-123456", "query")
    assert isinstance(basic, HttpBasicAuth)
    assert (basic.username, basic.password) == ("bot", "pw-654321")


def test_a_missing_token_variable_is_named(monkeypatch):
    monkeypatch.delenv("UNIT_API_TOKEN")
    with pytest.raises(MissingEnvError, match="UNIT_API_TOKEN"):
        rest_api_config(social())


def test_the_source_paginator_is_a_resource_default_and_resources_may_override_it():
    config = rest_api_config(social())
    default = config["resource_defaults"]["endpoint"]["paginator"]
    users = next(r for r in config["resources"] if r["name"] == "users")

    assert isinstance(default, PageNumberPaginator)
    assert (default.param_name, default.base_index) == ("page", 1)
    assert str(default.total_path) == "total_pages"
    assert isinstance(users["endpoint"]["paginator"], OffsetPaginator)
    assert users["endpoint"]["paginator"].limit == 50


@pytest.mark.parametrize(
    ("spec", "kind", "attributes"),
    [
        ({"type": "page_number", "base_page": 0, "maximum_page": 9}, PageNumberPaginator,
         {"param_name": "page", "base_index": 0, "maximum_value": 9, "total_path": None}),
        ({"type": "offset", "limit": 25, "offset_param": "skip", "limit_param": "take"},
         OffsetPaginator, {"param_name": "skip", "limit_param": "take", "limit": 25}),
        ({"type": "cursor", "cursor_path": "meta.next", "cursor_param": "after"},
         JSONResponseCursorPaginator, {"cursor_param": "after"}),
        ({"type": "json_link", "next_url_path": "links.next"}, JSONLinkPaginator, {}),
        ({"type": "header_link"}, HeaderLinkPaginator, {}),
        ({"type": "single_page"}, SinglePagePaginator, {}),
    ],
)  # fmt: skip
def test_every_paginator_type_becomes_its_dlt_paginator(spec, kind, attributes):
    paginator = build_paginator(Paginator.model_validate(spec))

    assert type(paginator) is kind
    for name, value in attributes.items():
        assert getattr(paginator, name) == value


def test_resources_carry_path_params_selector_keys_and_dispositions():
    resources = {r["name"]: r for r in rest_api_config(social())["resources"]}

    tweets = resources["tweets"]
    assert tweets["endpoint"]["path"] == "tweets"
    assert tweets["endpoint"]["params"] == {"page_size": 100}
    assert tweets["endpoint"]["data_selector"] == "data"
    assert tweets["primary_key"] == ["id"]
    assert tweets["write_disposition"] == "merge"
    assert resources["users"]["write_disposition"] == "replace"
    assert "primary_key" not in resources["users"]


def test_incremental_sends_the_cursor_as_a_parameter_with_the_lookback_as_lag():
    tweets = rest_api_config(social())["resources"][0]

    assert tweets["endpoint"]["incremental"] == {
        "cursor_path": "tweeted_at",
        "start_param": "since",
        "lag": 3600.0,
    }


def test_incremental_within_a_data_interval_is_a_window():
    interval = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
    tweets = rest_api_config(social(), data_interval=interval)["resources"][0]

    assert tweets["endpoint"]["incremental"] == {
        "cursor_path": "tweeted_at",
        "start_param": "since",
        "initial_value": "2026-02-28T23:00:00+00:00",
        "end_value": "2026-03-02T00:00:00+00:00",
        "range_end": "open",
    }


def test_child_paths_read_their_parents_fields():
    source = social()
    assert endpoint_path("replies", source.resources["replies"]) == (
        "tweets/{resources.tweets.id}/replies"
    )
    orphan = social(resources={"a": {"path": "a"}, "b": {"path": "b", "parent": "a"}})
    with pytest.raises(RestConfigError, match=r"resource 'b' has parent 'a'.*placeholder"):
        endpoint_path("b", orphan.resources["b"])


def test_build_source_gives_named_resources_with_contract_and_scrub_list():
    built = build_source(social(contract="discard_row"))
    source = built.source

    assert source.name == "social"
    assert set(source.resources) == {"tweets", "users", "replies"}
    assert source.resources["tweets"].compute_table_schema()["write_disposition"] == "merge"
    assert source.schema_contract == {
        "tables": "evolve",
        "columns": "discard_row",
        "data_type": "discard_row",
    }
    assert built.secrets == [TOKEN]
    assert built.loader_file_format is None
