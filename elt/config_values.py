"""Value types of ``pipelines.yml``: env references, durations, names, schedules and URLs.

Every check raises :class:`Invalid`, a ``ValueError`` that carries a hint (and optionally the
key it is about), so the loader can turn it into a precise, user-facing problem.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from difflib import get_close_matches
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from croniter import croniter
from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from elt.config_secrets import credential_name, looks_like_credential, url_credential

ENV_PREFIX = "env:"
ENV_PATTERN = r"^env:[A-Za-z_][A-Za-z0-9_]*\??$"
SCHEDULE_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly")
SECRET_HINT = "put secrets in the environment and reference them as env:NAME"  # noqa: S105

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_SQL_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_EXAMPLES = "90s, 5m, 1h, 2h30m, 3d or a number of seconds"
_LOCATION_SCHEMES = {"file", "s3", "gs", "gcs", "az", "abfs", "abfss", "memory"}
_SECRET_QUERY_KEYS = {"token", "key", "apikey", "api_key", "password", "pass", "pw", "secret"}


class Invalid(ValueError):
    """A config value is wrong; ``hint`` says what to do, ``key`` names the sub-key if any."""

    def __init__(self, message: str, hint: str = "", key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.key = key


class MissingEnvError(KeyError):
    """An ``env:NAME`` reference names a variable that is not set."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return (
            f"environment variable {self.name} is not set: export it "
            f"(or add it to .elt/env) before running"
        )


def did_you_mean(word: str, choices: Any) -> str:
    """A "did you mean 'x'?" hint for the closest choice, or "" when nothing is close."""
    close = get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


# --- environment references ---------------------------------------------------------------


def is_env_ref(value: Any) -> bool:
    """True for strings of the form ``env:NAME`` or ``env:NAME?``."""
    return isinstance(value, str) and value.startswith(ENV_PREFIX)


def env_ref_name(value: str) -> tuple[str, bool]:
    """The variable name of an env reference and whether it is optional (``?``)."""
    body = value[len(ENV_PREFIX) :].strip()
    optional = body.endswith("?")
    return (body[:-1] if optional else body), optional


def resolve_env(value: str | None) -> str | None:
    """``env:NAME`` → the variable's value (or :class:`MissingEnvError`); ``env:NAME?`` → value
    or None; anything else unchanged."""
    if not is_env_ref(value):
        return value
    name, optional = env_ref_name(value)  # type: ignore[arg-type]
    if name in os.environ:
        return os.environ[name]
    if optional:
        return None
    raise MissingEnvError(name)


def _check_env_syntax(value: str) -> str:
    if is_env_ref(value):
        name, _ = env_ref_name(value)
        if not _ENV_NAME.match(name):
            raise Invalid(
                f"'{name}' is not a valid environment variable name",
                hint="use letters, digits and underscores, e.g. env:SHOP_DB_URL",
            )
    return value


def _require_env_ref(value: str) -> str:
    if not is_env_ref(value):
        raise Invalid("a literal secret is not allowed here", hint=SECRET_HINT)
    return _check_env_syntax(value)


def _no_inline_credentials(value: str) -> str:
    _check_env_syntax(value)
    found = None if is_env_ref(value) else url_credential(value)
    if found:
        raise Invalid(
            f"this URL carries {found}",
            hint="put the whole URL in the environment and write env:NAME, "
            "or declare the credential under auth:",
        )
    return value


def _no_literal_credentials(kind: str) -> Any:
    """A validator for a mapping (headers, params, arguments): every value whose key names a
    credential, or that looks like one, must be an env reference."""

    def check(mapping: dict[str, Any]) -> dict[str, Any]:
        for key, value in mapping.items():
            if isinstance(value, str):
                _check_env_syntax(value)
            if is_env_ref(value) or value is None or isinstance(value, bool):
                continue
            if credential_name(str(key)) or looks_like_credential(value):
                raise Invalid(
                    f"{kind} '{key}' holds a literal credential",
                    hint=f"export it and write {key}: env:NAME"
                    + (" (or declare it under auth:)" if kind != "argument" else ""),
                    key=str(key),
                )
        return mapping

    return check


def looks_like_secret_url(url: str) -> bool:
    """Heuristic for literal Apprise URLs that embed a password or token."""
    if "@" in url:
        return True
    parts = urlsplit(url)
    if any(key.lower() in _SECRET_QUERY_KEYS for key, _ in parse_qsl(parts.query)):
        return True
    segments = [parts.netloc.split(":")[0], *parts.path.split("/")]
    return any(_looks_like_token(segment) for segment in segments)


def _looks_like_token(segment: str) -> bool:
    has_letter = any(c.isalpha() for c in segment)
    has_digit = any(c.isdigit() for c in segment)
    return len(segment) >= 24 or (len(segment) >= 8 and has_letter and has_digit)


def _check_notify_url(value: str) -> str:
    _check_env_syntax(value)
    if not is_env_ref(value) and looks_like_secret_url(value):
        raise Invalid(
            "this notification URL looks like it contains a password or token",
            hint="put it in the environment and reference it as env:NAME",
        )
    return value


def _check_location(value: str) -> str:
    _no_inline_credentials(value)
    scheme = urlsplit(value).scheme if "://" in value else ""
    if not is_env_ref(value) and scheme and scheme not in _LOCATION_SCHEMES:
        raise Invalid(
            f"unsupported location scheme '{scheme}://'",
            hint="use a local path, file://, s3://, gs:// or az:// (or env:NAME)",
        )
    return value


SecretRef = Annotated[
    str,
    AfterValidator(_require_env_ref),
    WithJsonSchema({"type": "string", "pattern": ENV_PATTERN, "description": "env:NAME"}),
]
"""A secret: must be ``env:NAME``; a literal is an error."""
UrlOrEnv = Annotated[str, AfterValidator(_no_inline_credentials)]
"""A literal URL/path without credentials, or an env reference."""
Location = Annotated[str, AfterValidator(_check_location)]
"""A local path or a file://, s3://, gs://, az:// URL (or an env reference)."""
NotifyUrl = Annotated[str, AfterValidator(_check_notify_url)]
"""An Apprise URL without secrets in it, or an env reference."""
_REFERENCE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)


def check_reference(value: str) -> str:
    """A Python object by reference: ``package.module:function``."""
    if not _REFERENCE.match(value):
        raise Invalid(
            f"{value!r} is not a reference to a function",
            hint="write package.module:function, e.g. ingestion.custom.events_feed:events_feed",
        )
    return value


Reference = Annotated[str, AfterValidator(check_reference)]
"""``package.module:function``, e.g. a ``@dlt.source`` function."""
Headers = Annotated[dict[str, str], AfterValidator(_no_literal_credentials("header"))]
"""HTTP headers; credentials in them must be env references."""
Params = Annotated[dict[str, Any], AfterValidator(_no_literal_credentials("query parameter"))]
"""Query parameters; credentials in them must be env references."""
Arguments = Annotated[dict[str, Any], AfterValidator(_no_literal_credentials("argument"))]
"""Arguments of a custom source; credentials in them must be env references."""


# --- durations ----------------------------------------------------------------------------


def parse_duration(value: Any) -> timedelta:
    """Parse ``90s``, ``5m``, ``1h``, ``2h30m``, ``3d`` or an int of seconds into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    text = value.replace(" ", "").lower() if isinstance(value, str) else None
    match = _DURATION.match(text) if text else None
    if text and text.isdigit():
        return timedelta(seconds=int(text))
    if not match:
        raise Invalid(f"{value!r} is not a duration", hint=f"write it as {_DURATION_EXAMPLES}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$|^\d+$"},
                {"type": "integer", "minimum": 0},
            ]
        }
    ),
]
"""A duration written as ``5m``, ``1h``, ``2h30m``, ``3d`` or seconds."""


# --- names, identifiers and schedules -----------------------------------------------------


def check_name(value: str) -> str:
    """Names of tables, resources and file sets: lowercase identifiers."""
    if not _NAME.match(value):
        raise Invalid(
            f"'{value}' is not a valid name",
            hint="use lowercase letters, digits and underscores, starting with a letter or _",
        )
    return value


def check_top_name(value: str) -> str:
    """Names of sources and pipelines: identifiers without ``__``."""
    check_name(value)
    if "__" in value:
        raise Invalid(
            f"'{value}' contains '__'",
            hint="dlt uses '__' to separate names, so pipeline state cannot be restored; "
            "use a single '_'",
        )
    return value


def check_sql_identifier(value: str) -> str:
    """A table (``table``, ``schema.table``) or column name safe to put into SQL."""
    if not _SQL_IDENTIFIER.match(value):
        raise Invalid(
            f"{value!r} is not a valid SQL identifier",
            hint="use letters, digits, _ and $ (optionally schema.table); "
            "quotes, spaces and SQL are not allowed",
        )
    return value


def check_schedule(value: str | None) -> str | None:
    """A 5-field cron expression or one of the presets (@daily …); None means manual only."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("@"):
        if text not in SCHEDULE_PRESETS:
            raise Invalid(
                f"unknown schedule preset {text!r}",
                hint=did_you_mean(text, SCHEDULE_PRESETS) or f"use one of {SCHEDULE_PRESETS}",
            )
        return text
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise Invalid(
            f"{value!r} is not a valid cron schedule",
            hint="use 5 fields 'minute hour day-of-month month day-of-week' (e.g. '0 6 * * *') "
            f"or one of {', '.join(SCHEDULE_PRESETS)}",
        )
    return text


Name = Annotated[str, AfterValidator(check_name)]
TopName = Annotated[str, AfterValidator(check_top_name)]
SqlIdentifier = Annotated[str, AfterValidator(check_sql_identifier)]
Schedule = Annotated[str | None, AfterValidator(check_schedule)]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


_ONE_OR_MORE = WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
)
StrList = Annotated[list[str], BeforeValidator(_as_list), _ONE_OR_MORE]
# column names that end up in SQL (primary keys): each must be a plain identifier
ColumnList = Annotated[list[SqlIdentifier], BeforeValidator(_as_list), _ONE_OR_MORE]
"""A list of strings; a single string is accepted and wrapped."""
