"""Every failure of the bad-input suite, run through the `elt` command: at most 3 lines on
stderr (the error naming source, table and stage, and the --verbose pointer), exit 1, no
traceback; with --verbose the traceback is there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from elt import roles
from elt.config import load
from ingestion.runner import ingest
from tests.helpers.events_api import EventsApi, events
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

MAX_LINES = 3
CLI_TIMEOUT_S = 300

PIPELINES_YML = """\
version: 1
sources:
  badutf8:
    type: filesystem
    bucket_url: {landing}/badutf8
    files: {{supplies: {{glob: "*.csv", format: csv, primary_key: id}}}}
  nullkey:
    type: filesystem
    bucket_url: {landing}/nullkey
    files: {{supplies: {{glob: "*.csv", format: csv, primary_key: id}}}}
  refused:
    type: filesystem
    bucket_url: {landing}/refused
    files: {{supplies: {{glob: "*.csv", format: csv, primary_key: id}}}}
  frozen:
    type: filesystem
    contract: freeze
    bucket_url: {landing}/frozen
    files: {{supplies: {{glob: "*.csv", format: csv, primary_key: id}}}}
  wrongkey:
    type: rest_api
    base_url: env:LINES_API_URL
    auth: {{type: bearer, scheme: token, token: env:LINES_API_TOKEN}}
    resources: {{events: {{path: events, primary_key: id}}}}
pipelines:
  p: {{sources: [badutf8, nullkey, refused, frozen, wrongkey]}}
"""

# source → (stage, words the one line must hold)
CASES = {
    "badutf8": ("extract", ["'supplies'", "malformed file", "a.csv"]),
    "nullkey": ("normalize", ["'supplies'", "column `id`"]),
    "refused": ("load", ["'supplies'", "check constraint", "--full-refresh"]),
    "frozen": ("extract", ["'supplies'", "surprise", "contract"]),
    "wrongkey": ("extract", ["HTTP 401", "env:LINES_API_TOKEN"]),
}


def _file(folder: Path, content: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.csv").write_bytes(content)


@pytest.fixture(scope="module")
def bad_inputs(pg, tmp_path_factory):
    """The warehouse, the config and every bad input in place; yields the CLI environment."""
    url = pg.create_database("error_lines")
    home = tmp_path_factory.mktemp("lines")
    landing = home / "landing"
    config = home / "pipelines.yml"
    config.write_text(PIPELINES_YML.format(landing=landing))
    _file(landing / "badutf8", b"id,name\n1,caf\xe9\n")
    _file(landing / "nullkey", b"id,name\n1,a\n,b\n")
    _file(landing / "refused", b"id,name\n1,a\n")
    _file(landing / "frozen", b"id,name\n1,a\n")
    api = EventsApi(events(3), check=lambda r: r.headers.get("Authorization") == "token right")
    env = {
        **os.environ,
        "ELT_CONFIG": str(config),
        "ELT_WAREHOUSE_URL": url,
        "DLT_DATA_DIR": str(home / "dlt"),
        "LINES_API_URL": api.url,
        "LINES_API_TOKEN": "bad-token-x1",
    }
    # a raw table the rows break; a frozen table that a new column then breaks
    loader = roles.role_connection(roles.LOADER, pg._conn().with_database("error_lines"))
    rows(
        loader.url(),
        "create schema raw_refused;"
        " create table raw_refused.supplies (id bigint primary key check (id > 100), name text)",
    )
    with pytest.MonkeyPatch.context() as patch:  # this ingest only: later modules keep theirs
        patch.setenv("DLT_DATA_DIR", env["DLT_DATA_DIR"])
        ingest(load(config).sources["frozen"], destination_url=url)
    _file(landing / "frozen", b"id,name,surprise\n2,b,x\n")
    yield env
    api.close()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "elt.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


@pytest.mark.parametrize("source", sorted(CASES))
def test_each_failure_is_one_error_line(bad_inputs, source):
    stage, words = CASES[source]

    result = _cli(bad_inputs, "ingest", source)

    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1
    assert 1 <= len(lines) <= MAX_LINES, result.stderr
    error = next(line for line in lines if line.startswith("error:"))
    assert error.startswith(f"error: IngestError: ingest of source '{source}' failed")
    assert f"during {stage}" in error
    for word in words:
        assert word in error, error
    assert "Traceback" not in result.stdout + result.stderr


def test_verbose_shows_the_traceback(bad_inputs):
    result = _cli(bad_inputs, "--verbose", "ingest", "refused")

    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr


def test_config_and_usage_errors_are_short_too(bad_inputs, tmp_path):
    secret = tmp_path / "pipelines.yml"
    secret.write_text(
        Path(bad_inputs["ELT_CONFIG"])
        .read_text()
        .replace(
            "    resources: {events:",
            "    headers: {Authorization: token abc123}\n    resources: {events:",
        )
    )
    for env, args in (
        ({**bad_inputs, "ELT_CONFIG": str(secret)}, ("ingest", "wrongkey")),
        (bad_inputs, ("ingest", "nosuchsource")),
    ):
        result = _cli(env, *args)
        assert result.returncode != 0
        assert 1 <= len(result.stderr.strip().splitlines()) <= MAX_LINES, result.stderr
        assert "abc123" not in result.stderr
