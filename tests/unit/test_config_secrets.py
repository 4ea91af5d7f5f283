"""A literal credential in any place of pipelines.yml that can hold one is refused with
file:line, key path and the fix, and the value is never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from elt import config
from elt.config_secrets import credential_name, looks_like_credential, url_credential

SECRET = "s3cr3tV4lue9"

API = """\
sources:
  api:
    type: rest_api
    base_url: {base_url}
    headers: {headers}
    resources:
      events:
        path: {path}
        params: {params}
pipelines:
  p:
    sources: [api]
"""
FILES = """\
sources:
  files:
    type: filesystem
    bucket_url: {bucket_url}
    endpoint_url: {endpoint_url}
    files: {{supplies: {{glob: "*.csv", format: csv}}}}
pipelines:
  p:
    sources: [files]
    export: {{to: "{to}", models: [orders]}}
"""
FINE_API = {
    "base_url": "https://api.test/v1",
    "headers": "{Accept: application/json, User-Agent: elt/1.0, X-Region: eu-1}",
    "path": "events?sort=created",
    "params": "{page_size: 100, sort_key: created, author: bob, since: '2026-01-01T00:00:00Z'}",
}
FINE_FILES = {
    "bucket_url": "s3://landing",
    "endpoint_url": "http://127.0.0.1:9000",
    "to": "s3://lake",
}

HEADER_FIX = "(hint: export it and write {key}: env:NAME (or declare it under auth:))"
URL_FIX = (
    "(hint: put the whole URL in the environment and write env:NAME, or declare the "
    "credential under auth:)"
)


def _problems(tmp_path: Path, template: str, fine: dict, **changed: str) -> list[str]:
    path = tmp_path / "pipelines.yml"
    path.write_text(template.format(**{**fine, **changed}))
    return [str(p) for p in config.validate_file(path, check_env=False)]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_ordinary_headers_params_and_urls_pass(tmp_path):
    assert _problems(tmp_path, API, FINE_API) == []
    assert _problems(tmp_path, FILES, FINE_FILES) == []


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (
            {"headers": f"{{Authorization: token {SECRET}}}"},
            "pipelines.yml:5: sources.api.headers.Authorization: header 'Authorization' holds a"
            " literal credential " + HEADER_FIX.format(key="Authorization"),
        ),
        (
            {"headers": f"{{X-Api-Key: {SECRET}}}"},
            "pipelines.yml:5: sources.api.headers.X-Api-Key: header 'X-Api-Key' holds a"
            " literal credential " + HEADER_FIX.format(key="X-Api-Key"),
        ),
        (  # an innocent name, but the value has a scheme word and a token
            {"headers": f"{{X-Forward: Bearer {SECRET}}}"},
            "pipelines.yml:5: sources.api.headers.X-Forward: header 'X-Forward' holds a"
            " literal credential " + HEADER_FIX.format(key="X-Forward"),
        ),
        (
            {"headers": f"{{Cookie: session={SECRET}}}"},
            "pipelines.yml:5: sources.api.headers.Cookie: header 'Cookie' holds a"
            " literal credential " + HEADER_FIX.format(key="Cookie"),
        ),
        (
            {"params": f"{{page_size: 10, access_token: {SECRET}}}"},
            "pipelines.yml:9: sources.api.resources.events.params.access_token: query parameter"
            " 'access_token' holds a literal credential " + HEADER_FIX.format(key="access_token"),
        ),
        (  # an opaque token under an innocent name
            {"params": "{q: ghp_16C7e42F292c6912E7710c838347Ae178B4a}"},
            "pipelines.yml:9: sources.api.resources.events.params.q: query parameter 'q' holds"
            " a literal credential " + HEADER_FIX.format(key="q"),
        ),
        (
            {"base_url": f"https://me:{SECRET}@api.test/v1"},
            "pipelines.yml:4: sources.api.base_url: this URL carries a user:password " + URL_FIX,
        ),
        (
            {"base_url": f"https://api.test/v1?token={SECRET}"},
            "pipelines.yml:4: sources.api.base_url: this URL carries a credential in its query"
            " string (token=) " + URL_FIX,
        ),
        (
            {"path": f"events?api_key={SECRET}"},
            "pipelines.yml:8: sources.api.resources.events.path: this URL carries a credential"
            " in its query string (api_key=) " + URL_FIX,
        ),
    ],
)
def test_a_literal_credential_in_a_rest_source_is_refused(tmp_path, changed, expected):
    found = _problems(tmp_path, API, FINE_API, **changed)
    assert found == [expected]
    assert SECRET not in found[0] and "ghp_16C7" not in found[0]


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (
            {"bucket_url": f"s3://AKIA:{SECRET}@landing"},
            "pipelines.yml:4: sources.files.bucket_url: this URL carries a user:password ",
        ),
        (
            {"endpoint_url": f"http://127.0.0.1:9000/?X-Amz-Signature={SECRET}"},
            "pipelines.yml:5: sources.files.endpoint_url: this URL carries a credential in its"
            " query string (X-Amz-Signature=) ",
        ),
        (
            {"to": f"s3://lake?secret={SECRET}"},
            "pipelines.yml:10: pipelines.p.export.to: this URL carries a credential in its"
            " query string (secret=) ",
        ),
    ],
)
def test_a_literal_credential_in_a_location_is_refused(tmp_path, changed, expected):
    found = _problems(tmp_path, FILES, FINE_FILES, **changed)
    assert found == [expected + URL_FIX]
    assert SECRET not in found[0]


@pytest.mark.parametrize("field", ["token", "api_key", "password"])
def test_a_literal_auth_field_is_refused(tmp_path, field):
    kind = {"token": "bearer", "api_key": "api_key", "password": "http_basic"}[field]
    user = ", username: me" if field == "password" else ""
    text = API.replace(
        "    headers: {headers}\n", f"    auth: {{{{type: {kind}, {field}: {SECRET}{user}}}}}\n"
    )
    found = _problems(tmp_path, text, FINE_API)
    assert found == [
        f"pipelines.yml:5: sources.api.auth.{field}: a literal secret is not allowed here"
        " (hint: put secrets in the environment and reference them as env:NAME)"
    ]


def test_env_references_are_accepted_everywhere(tmp_path):
    changed = {
        "headers": "{Authorization: env:API_AUTH, X-Api-Key: 'env:API_KEY?'}",
        "params": "{access_token: env:API_TOKEN}",
        "base_url": "env:API_URL",
    }
    assert _problems(tmp_path, API, FINE_API, **changed) == []


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("Authorization", True),
        ("X-API-Key", True),
        ("client_secret", True),
        ("sig", True),
        ("author", False),
        ("sort_key", False),
        ("page", False),
    ],
)
def test_credential_names(name, secret):
    assert credential_name(name) is secret


def test_credential_values_and_urls():
    assert looks_like_credential("token abc")
    assert not looks_like_credential("application/vnd.github.v3+json")
    assert not looks_like_credential("2026-01-01T00:00:00Z")
    assert url_credential("postgresql://u:p@h/db") == "a user:password"
    assert url_credential("https://h/x?page=2&size=10") is None


def test_auth_hints_name_every_key_the_type_needs(tmp_path):
    with_auth = API.replace("    headers: {headers}\n", "    auth: {{type: {auth}}}\n")
    assert _problems(tmp_path, with_auth.replace("{auth}", "api_key"), FINE_API) == [
        "pipelines.yml:5: sources.api.auth.api_key: auth type api_key needs 'api_key' (hint: add"
        " api_key: env:NAME, with name: <header, parameter or cookie name> and location: header"
        " | query | cookie)"
    ]
    oauth = "oauth2_client_credentials, token_url: https://auth.test/token"
    assert _problems(tmp_path, with_auth.replace("{auth}", oauth), FINE_API) == [
        "pipelines.yml:5: sources.api.auth.client_id: auth type oauth2_client_credentials needs"
        " 'client_id' (hint: add client_id: env:NAME)"
    ]
    literal = f"{oauth}, client_id: env:ID, client_secret: {SECRET}"
    found = _problems(tmp_path, with_auth.replace("{auth}", literal), FINE_API)
    assert found == [
        "pipelines.yml:5: sources.api.auth.client_secret: a literal secret is not allowed here"
        " (hint: put secrets in the environment and reference them as env:NAME)"
    ]
