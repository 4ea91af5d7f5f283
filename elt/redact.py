"""Scrub secret values from text before it is printed or stored.

Error messages are written not to contain secrets, but a library's exception text can
(a driver echoing a URL, say). Everything the CLI prints on failure goes through here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable

_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|API_KEY|_KEY$|CREDENTIALS)")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@\s]+)@")


def secret_values() -> list[str]:
    """Values of environment variables whose names look secret (longest first)."""
    values = {
        value
        for name, value in os.environ.items()
        if _SECRET_NAME.search(name.upper()) and len(value) >= 6
    }
    from elt import roles, warehouse

    password = warehouse.stored_password()
    if password:
        values.add(password)
    values.update(roles.stored_passwords())
    return sorted(values, key=len, reverse=True)


def redactor(extra: Iterable[str] = ()) -> Callable[[str], str]:
    """:func:`redact` with the secret values (and ``extra`` ones) read once, for the many
    lines of one run."""
    values = sorted({*secret_values(), *(v for v in extra if v.strip())}, key=len, reverse=True)

    def scrub(text: str) -> str:
        if not text:
            return text
        text = _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)
        for value in values:
            text = text.replace(value, "***")
        return text

    return scrub


def redact(text: str) -> str:
    """``text`` with URL passwords and known secret values replaced by ``***``."""
    if not text:  # nothing to hide: skip reading the secrets (artifacts redact every row)
        return text
    return redactor()(text)
