"""dlt's REST auth classes, completed where pipelines.yml promises more than they do.

- :class:`SchemeTokenAuth`: a bearer token with another scheme word (``Authorization: token T``).
- :class:`ApiKeyAuth`: an API key also as a cookie (dlt's raises ``NotImplementedError``).
- :class:`ClientCredentialsAuth`: OAuth2 client credentials that fetch the next token a
  little before the current one expires, so a request never goes out with a token the
  server has just dropped.
"""

from __future__ import annotations

from typing import Any

from dlt.common.configuration import configspec
from dlt.sources.helpers.rest_client.auth import (
    APIKeyAuth,
    BearerTokenAuth,
    OAuth2ClientCredentials,
)
from requests import PreparedRequest

# a token is renewed when this share of its lifetime (at most EXPIRY_MARGIN_MAX_S) is left
EXPIRY_MARGIN_SHARE = 0.2
EXPIRY_MARGIN_MAX_S = 60.0


@configspec
class SchemeTokenAuth(BearerTokenAuth):
    """``Authorization: <scheme> <token>``; ``scheme`` is ``Bearer`` unless told otherwise."""

    scheme: str = "Bearer"

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Set the header on ``request``."""
        request.headers["Authorization"] = f"{self.scheme} {self.token}"
        return request


@configspec
class ApiKeyAuth(APIKeyAuth):
    """dlt's API key auth, with ``location: cookie`` added."""

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Put the key where ``location`` says."""
        if self.location != "cookie":
            return super().__call__(request)
        pair = f"{self.name}={self.api_key}"
        existing = request.headers.get("Cookie")
        request.headers["Cookie"] = f"{existing}; {pair}" if existing else pair
        return request


@configspec
class ClientCredentialsAuth(OAuth2ClientCredentials):
    """dlt's OAuth2 client credentials flow, renewing tokens before they expire."""

    def parse_expiration_in_seconds(self, response_json: Any) -> int:
        """The token's lifetime minus a safety margin (never below zero)."""
        lifetime = float(response_json.get("expires_in", self.default_token_expiration))
        margin = min(lifetime * EXPIRY_MARGIN_SHARE, EXPIRY_MARGIN_MAX_S)
        return max(lifetime - margin, 0.0)  # type: ignore[return-value]
