"""What looks like a credential in ``pipelines.yml``: names of keys, values and URLs.

Used by the validators of :mod:`elt.config_values` so that every place a free-form string can
hold a secret (headers, query parameters, URLs, arguments of custom sources) refuses a literal
one. The checks are deliberately broad: a false alarm costs one ``env:`` reference, a miss
leaks a secret into git.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# fragments of key names that hold credentials (compared without '-', '_' and case)
_NAME_FRAGMENTS = (
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "authorization",
    "authentication",
    "cookie",
    "signature",
    "credential",
    "session",
    "accesskey",
    "privatekey",
)
_EXACT_NAMES = {"key", "sig", "pw", "pwd", "pass", "auth", "xauth"}
_SCHEME_VALUE = re.compile(r"^\s*(bearer|token|basic|digest|apikey|api-key|key)\s+\S+", re.I)
_OPAQUE = re.compile(r"^[A-Za-z0-9_\-.=+]{24,}$")


def credential_name(name: str) -> bool:
    """True when a key called ``name`` (a header, query parameter, argument) holds a secret."""
    flat = re.sub(r"[^a-z0-9]", "", name.lower())
    return flat in _EXACT_NAMES or any(fragment in flat for fragment in _NAME_FRAGMENTS)


def looks_like_credential(value: Any) -> bool:
    """True for values shaped like a secret whatever their key: ``token abc…``, ``Bearer …``,
    or a long opaque string of letters and digits."""
    if not isinstance(value, str):
        return False
    if _SCHEME_VALUE.match(value):
        return True
    has_letter = any(c.isalpha() for c in value)
    return bool(_OPAQUE.match(value)) and has_letter and any(c.isdigit() for c in value)


def url_credential(url: str) -> str | None:
    """What credential a URL (or a path with a query string) carries, or None:
    ``"a user:password"`` or ``"a token in its query (token=)"``."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return "a user:password"
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if value and (credential_name(key) or looks_like_credential(value)):
            return f"a credential in its query string ({key}=)"
    return None
