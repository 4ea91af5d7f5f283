"""Example of a team's own dlt source: a paginated events API with nested payloads.

Referenced from pipelines.yml; its arguments come from YAML and the environment:

    sources:
      feed:
        type: dlt
        source: ingestion.custom.events_feed:events_feed
        args: {base_url: env:EVENTS_URL, token: env:EVENTS_TOKEN, page_size: 50}

It runs through the same runner as the declared sources: the loader role, ``raw_feed``,
load ids, quality checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import HeaderLinkPaginator


@dlt.source(name="events_feed")
def events_feed(base_url: str, token: str = dlt.secrets.value, page_size: int = 100) -> Any:
    """The ``events`` resource of the API at ``base_url`` (bearer ``token``)."""
    client = RESTClient(
        base_url=base_url, auth=BearerTokenAuth(token=token), paginator=HeaderLinkPaginator()
    )

    @dlt.resource(primary_key="id", write_disposition="merge")
    def events() -> Iterator[list[dict[str, Any]]]:
        """Every event, page by page; nested lists become child tables."""
        yield from client.paginate("events", params={"page_size": page_size})

    return events
