"""A ``rest_api`` source from pipelines.yml → a typed dlt ``RESTAPIConfig``.

Secrets (tokens, keys, passwords, env-referenced URLs) are resolved from the environment here,
at build time, and handed to dlt as auth objects; they are never written to dlt's config.
dlt's REST client retries 429 and 5xx answers with backoff on its own.
"""

from __future__ import annotations

import re
from typing import Any

from dlt.sources.helpers.rest_client.auth import AuthConfigBase, HttpBasicAuth
from dlt.sources.helpers.rest_client.paginators import (
    BasePaginator,
    HeaderLinkPaginator,
    JSONLinkPaginator,
    JSONResponseCursorPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    SinglePagePaginator,
)
from dlt.sources.rest_api import rest_api_source
from dlt.sources.rest_api.typing import (
    ClientConfig,
    Endpoint,
    EndpointResource,
    EndpointResourceBase,
    IncrementalConfig,
    RESTAPIConfig,
)

from elt.config import Paginator, RestApiSource, RestAuth, RestResource, is_env_ref, resolve_env
from elt.config_secrets import credential_name
from ingestion.sources.common import (
    BuiltSource,
    DataInterval,
    delete_hint,
    lag_seconds,
    schema_contract,
)
from ingestion.sources.rest_arrow import add_arrow_pages
from ingestion.sources.rest_auth import ApiKeyAuth, ClientCredentialsAuth, SchemeTokenAuth

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class RestConfigError(ValueError):
    """A REST resource cannot be turned into a dlt endpoint (the message says which)."""


def rest_api_dlt_source(
    config: RestApiSource, *, data_interval: DataInterval | None = None
) -> BuiltSource:
    """The dlt source of a REST API: one resource per configured endpoint. Flat pages load
    as Arrow (:mod:`ingestion.sources.rest_arrow`) when the contract lets every column evolve;
    under the other contracts every page takes dlt's dict path, which enforces them per row."""
    source = rest_api_source(
        rest_api_config(config, data_interval=data_interval),
        name=config.name,
        schema_contract=schema_contract(config.contract),
    )
    if config.contract == "evolve":
        add_arrow_pages(
            source.resources,
            {name: resource.primary_key for name, resource in config.resources.items()},
            parents={resource.parent for resource in config.resources.values() if resource.parent},
        )
    return BuiltSource(source=source, secrets=auth_secrets(config.auth) + _env_values(config))


def rest_api_config(
    config: RestApiSource, *, data_interval: DataInterval | None = None
) -> RESTAPIConfig:
    """The typed dlt configuration: client (URL, headers, auth), defaults and resources."""
    client: ClientConfig = {
        "base_url": resolve_env(config.base_url) or "",
        "headers": {key: resolve_env(value) or "" for key, value in config.headers.items()},
    }
    if config.auth:
        client["auth"] = build_auth(config.auth)
    defaults: EndpointResourceBase = {}
    if config.paginator:
        defaults["endpoint"] = {"paginator": build_paginator(config.paginator)}
    return {
        "client": client,
        "resource_defaults": defaults,
        "resources": [
            endpoint_resource(name, resource, data_interval)
            for name, resource in config.resources.items()
        ],
    }


def endpoint_resource(
    name: str, resource: RestResource, data_interval: DataInterval | None = None
) -> EndpointResource:
    """One dlt endpoint resource: path, params, selector, paginator, incremental, keys."""
    endpoint: Endpoint = {
        "path": endpoint_path(name, resource),
        "params": resolved_params(resource.params),
    }
    if resource.data_selector:
        endpoint["data_selector"] = resource.data_selector
    if resource.paginator:
        endpoint["paginator"] = build_paginator(resource.paginator)
    if resource.incremental:
        endpoint["incremental"] = build_incremental(resource, data_interval)
    built: EndpointResource = {
        "name": name,
        "endpoint": endpoint,
        "write_disposition": resource.disposition,
    }
    if resource.primary_key:
        built["primary_key"] = list(resource.primary_key)
    deletes = delete_hint(resource.hard_delete)
    if deletes:
        built["columns"] = deletes
    return built


def endpoint_path(name: str, resource: RestResource) -> str:
    """The path; with a parent, ``{field}`` placeholders read the parent's rows.

    ``users/{id}/posts`` with ``parent: users`` becomes ``users/{resources.users.id}/posts``:
    dlt then calls the path once per parent row.
    """
    if not resource.parent:
        return resource.path
    if not _PLACEHOLDER.search(resource.path) and "{resources." not in resource.path:
        raise RestConfigError(
            f"resource '{name}' has parent '{resource.parent}' but its path "
            f"'{resource.path}' has no {{field}} placeholder: write e.g. "
            f"'{resource.parent}/{{id}}/{name}'"
        )
    return _PLACEHOLDER.sub(
        lambda match: f"{{resources.{resource.parent}.{match.group(1)}}}", resource.path
    )


def build_incremental(
    resource: RestResource, data_interval: DataInterval | None = None
) -> IncrementalConfig:
    """The cursor sent as ``param``: the last value seen (minus the lookback) or the interval.

    With the orchestrator's interval the window is ``[start - lookback, end)``, given as
    ISO timestamps, and the stored cursor is left alone.
    """
    incremental = resource.incremental
    assert incremental is not None
    built: IncrementalConfig = {
        "cursor_path": incremental.cursor_path,
        "start_param": incremental.param,
    }
    if data_interval:
        start, end = data_interval
        built["initial_value"] = (start - incremental.lookback).isoformat()
        built["end_value"] = end.isoformat()
        built["range_end"] = "open"
        return built
    if incremental.initial_value is not None:
        built["initial_value"] = incremental.initial_value
    lag = lag_seconds(incremental.lookback)
    if lag:
        built["lag"] = lag
    return built


def build_paginator(paginator: Paginator) -> BasePaginator:
    """The dlt paginator object for a configured paginator."""
    kind = paginator.type
    if kind == "page_number":
        return PageNumberPaginator(
            base_page=paginator.base_page,
            page_param=paginator.page_param,
            total_path=paginator.total_path,
            maximum_page=paginator.maximum_page,
        )
    if kind == "offset":
        return OffsetPaginator(
            limit=paginator.limit or 0,
            offset_param=paginator.offset_param,
            limit_param=paginator.limit_param,
            total_path=paginator.total_path,
        )
    if kind == "cursor":
        return JSONResponseCursorPaginator(
            cursor_path=paginator.cursor_path or "", cursor_param=paginator.cursor_param
        )
    if kind == "json_link":
        return JSONLinkPaginator(next_url_path=paginator.next_url_path or "")
    if kind == "header_link":
        return HeaderLinkPaginator()
    return SinglePagePaginator()


def build_auth(auth: RestAuth) -> AuthConfigBase:
    """The dlt auth object, its secrets read from the environment now."""
    if auth.type == "bearer":
        return SchemeTokenAuth(token=_secret(auth.token), scheme=auth.scheme)
    if auth.type == "api_key":
        return ApiKeyAuth(name=auth.name, api_key=_secret(auth.api_key), location=auth.location)
    if auth.type == "oauth2_client_credentials":
        return ClientCredentialsAuth(
            access_token_url=resolve_env(auth.token_url) or "",
            client_id=_secret(auth.client_id),
            client_secret=_secret(auth.client_secret),
            access_token_request_data={"scope": " ".join(auth.scopes)} if auth.scopes else {},
        )
    return HttpBasicAuth(username=resolve_env(auth.username) or "", password=_secret(auth.password))


def auth_secrets(auth: RestAuth | None) -> list[str]:
    """The resolved secret values of ``auth`` (to scrub from error text)."""
    if auth is None:
        return []
    values = (resolve_env(ref) for ref in auth.secret_refs)
    return [value for value in values if value]


def resolved_params(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters with ``env:`` references resolved; a missing optional one is left out."""
    resolved = {
        key: resolve_env(value) if is_env_ref(value) else value for key, value in params.items()
    }
    return {key: value for key, value in resolved.items() if value is not None}


def _env_values(config: RestApiSource) -> list[str]:
    """Values of the env references in headers and params whose names say credential."""
    pairs = [*config.headers.items()]
    for resource in config.resources.values():
        pairs.extend(resource.params.items())
    refs = [value for key, value in pairs if is_env_ref(value) and credential_name(key)]
    values = (resolve_env(ref) for ref in refs)
    return [value for value in values if value]


def _secret(ref: str | None) -> Any:
    return resolve_env(ref) or ""
