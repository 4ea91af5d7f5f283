"""The paginated tweets API as a ``rest_api`` source, as the ingestion and fault tests use it."""

from __future__ import annotations

from elt.config import RestApiSource


def tweets_api_source(
    name: str, *, url_env: str, token_env: str, page_size: int, contract: str = "evolve"
) -> RestApiSource:
    """A bearer-token, page-numbered ``tweets`` resource (merge on ``id``) served at the URL
    in ``url_env``; ``page_size`` rows a page."""
    return RestApiSource.model_validate(
        {
            "name": name,
            "contract": contract,
            "type": "rest_api",
            "base_url": f"env:{url_env}",
            "auth": {"type": "bearer", "token": f"env:{token_env}"},
            "paginator": {"type": "page_number", "page_param": "page", "total_path": "total_pages"},
            "resources": {
                "tweets": {
                    "path": "tweets",
                    "data_selector": "data",
                    "primary_key": "id",
                    "params": {"page_size": page_size},
                }
            },
        }
    )
