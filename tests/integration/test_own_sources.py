"""A team's own REST API declared in a temporary pipelines.yml: nested objects and lists, a
primary key (so merge), link-header pages and 429s, loaded under the least-privilege roles
in a database locked down as `elt up` locks the warehouse (no TEMP, no CONNECT for PUBLIC)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from elt import config as elt_config
from elt import roles
from elt.settings import Connection
from ingestion.runner import IngestError, ingest
from tests.helpers.events_api import EventsApi, events
from tests.helpers.lifecycle import kill_when
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

DATABASE = "own_sources_test"
KILL_DEADLINE_S = 120
TOKEN = "evt-token-5c1d9e"

PIPELINES_YML = """\
version: 1
sources:
  {name}:
    type: rest_api
    base_url: env:EVENTS_API_URL
    auth: {{type: bearer, scheme: token, token: env:EVENTS_API_TOKEN}}
    paginator: {{type: header_link}}
    resources:
      events: {{path: events, primary_key: id{extra}}}
pipelines:
  events_daily:
    sources: [{name}]
"""


@pytest.fixture(scope="module")
def locked_down(pg) -> str:
    """A database with the roles' grants as `elt up` gives them (PUBLIC locked out)."""
    pg.create_database(DATABASE)
    admin = Connection(pg.host, pg.port, pg.user, pg.password, DATABASE)
    roles.ensure_roles(admin, lock_out_others=True)
    return admin.url()


@pytest.fixture
def api():
    """The nested events API: 12 events, 5 a page, `Authorization: token T` required."""
    server = EventsApi(
        events(12), check=lambda r: r.headers.get("Authorization") == f"token {TOKEN}"
    )
    yield server
    server.close()


@pytest.fixture
def events_env(api, tmp_path, monkeypatch):
    """Roles on, the API's URL and token in the environment, and dlt's folder in tmp_path."""
    monkeypatch.setenv("ELT_ROLES", "on")
    monkeypatch.setenv("EVENTS_API_URL", api.url)
    monkeypatch.setenv("EVENTS_API_TOKEN", TOKEN)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0")


def own_source(tmp_path: Path, name: str, extra: str = ""):
    """The source ``name`` from a pipelines.yml written into ``tmp_path`` (``extra``: more
    keys of the events resource, e.g. ``", write_disposition: append"``)."""
    path = tmp_path / "pipelines.yml"
    path.write_text(PIPELINES_YML.format(name=name, extra=extra))
    return elt_config.load(path).sources[name]


def test_nested_source_with_a_key_merges_twice_under_the_roles(
    locked_down, api, events_env, tmp_path
):
    source = own_source(tmp_path, "evmerge")

    first = ingest(source, destination_url=locked_down)
    api.rows = events(12, version=2)
    api.throttled.clear()
    second = ingest(source, destination_url=locked_down)

    assert first.rows["events"] == 12 and second.rows["events"] == 12
    assert rows(
        locked_down,
        "select count(*), count(distinct id), count(*) filter (where kind = 'edited'),"
        " min(actor__login), max(payload__repo__name) from raw_evmerge.events",
    ) == [(12, 12, 6, "user0", "repo3")]
    # child tables hold exactly the second version's lists, linked to their parent rows
    assert rows(
        locked_down,
        "select count(*), count(*) filter (where t.value = 'hot'), count(e._dlt_id)"
        " from raw_evmerge.events__payload__tags t"
        " left join raw_evmerge.events e on e._dlt_id = t._dlt_root_id",
    ) == [(18, 6, 18)]
    assert rows(
        locked_down,
        "select count(*), count(distinct sku), min(qty), count(e._dlt_id)"
        " from raw_evmerge.events__payload__items i"
        " left join raw_evmerge.events e on e._dlt_id = i._dlt_root_id",
    ) == [(24, 24, 2, 24)]
    # the loader, not the superuser, owns what was created
    assert rows(
        locked_down,
        "select distinct tableowner from pg_tables where schemaname = 'raw_evmerge'",
    ) == [(roles.LOADER,)]
    assert api.throttled  # every page was answered 429 once and retried


@pytest.mark.parametrize(("disposition", "factor"), [("append", 2), ("replace", 1)])
def test_nested_source_appends_and_replaces_under_the_roles(
    locked_down, api, events_env, tmp_path, disposition, factor
):
    name = f"ev{disposition}"
    source = own_source(tmp_path, name, f", write_disposition: {disposition}")

    for _ in range(2):
        api.throttled.clear()
        ingest(source, destination_url=locked_down)

    assert rows(locked_down, f"select count(*), count(distinct id) from raw_{name}.events") == [
        (12 * factor, 12)
    ]
    assert rows(
        locked_down,
        f"select count(*), count(e._dlt_id) from raw_{name}.events__payload__items i"
        f" left join raw_{name}.events e on e._dlt_id = i._dlt_parent_id",
    ) == [(24 * factor, 24 * factor)]


def _cli_ingest(tmp_path: Path, locked_down: str, *args: str) -> list[str]:
    """The `elt ingest` command line run against ``locked_down``, with its environment set."""
    os.environ["ELT_CONFIG"] = str(tmp_path / "pipelines.yml")
    os.environ["ELT_WAREHOUSE_URL"] = locked_down
    return [sys.executable, "-m", "elt.cli", "ingest", *args]


def _loader_waits_for_a_lock(url: str) -> bool:
    return bool(
        rows(
            url,
            "select 1 from pg_stat_activity where usename = %s and wait_event_type = 'Lock'",
            (roles.LOADER,),
        )
    )


def test_a_load_killed_mid_merge_does_not_block_the_next_run(
    locked_down, api, events_env, tmp_path
):
    source = own_source(tmp_path, "evkill")
    command = _cli_ingest(tmp_path, locked_down, "evkill")
    subprocess.run(command, check=True, capture_output=True, timeout=KILL_DEADLINE_S)
    api.rows = events(12, version=2)
    api.throttled.clear()

    # hold the raw table so the second load stops after filling its staging tables
    blocker = psycopg2.connect(locked_down)
    try:
        blocker.cursor().execute("lock table raw_evkill.events in access exclusive mode")
        victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kill_when(victim, lambda: _loader_waits_for_a_lock(locked_down), KILL_DEADLINE_S)
        assert rows(locked_down, "select count(*) from raw_evkill_staging.events") == [(12,)]
    finally:
        blocker.rollback()
        blocker.close()
    api.throttled.clear()

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=KILL_DEADLINE_S)

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert rows(
        locked_down,
        "select count(*), count(distinct id), count(*) filter (where kind = 'edited')"
        " from raw_evkill.events",
    ) == [(12, 12, 6)]
    assert rows(
        locked_down,
        "select count(*), count(*) filter (where t.value = 'hot'), count(e._dlt_id)"
        " from raw_evkill.events__payload__tags t"
        " left join raw_evkill.events e on e._dlt_id = t._dlt_root_id",
    ) == [(18, 6, 18)]
    assert ingest(source, destination_url=locked_down).status == "succeeded"


def test_a_failed_merge_does_not_block_the_next_run(locked_down, api, events_env, tmp_path):
    # the first user's story: the merge into the child tables failed (no TEMP then)
    source = own_source(tmp_path, "evfail")
    rows(locked_down, f"revoke temporary on database {DATABASE} from {roles.LOADER}")
    try:
        with pytest.raises(IngestError):
            ingest(source, destination_url=locked_down)
    finally:
        rows(locked_down, f"grant temporary on database {DATABASE} to {roles.LOADER}")
    api.rows = events(12, version=3)
    api.throttled.clear()

    again = ingest(source, destination_url=locked_down)

    assert again.status == "succeeded"
    assert rows(
        locked_down,
        "select count(*), count(distinct i._dlt_root_id), min(qty), count(e._dlt_id)"
        " from raw_evfail.events__payload__items i"
        " left join raw_evfail.events e on e._dlt_id = i._dlt_root_id",
    ) == [(24, 12, 3, 24)]
    assert rows(locked_down, "select count(*), count(distinct id) from raw_evfail.events") == [
        (12, 12)
    ]


def test_full_refresh_resets_a_source_completely_under_the_roles(
    locked_down, api, events_env, tmp_path
):
    source = own_source(tmp_path, "evreset")
    ingest(source, destination_url=locked_down)
    rows(locked_down, f"revoke temporary on database {DATABASE} from {roles.LOADER}")
    try:
        api.throttled.clear()
        with pytest.raises(IngestError):  # leaves staging rows and a pending package
            ingest(source, destination_url=locked_down)
    finally:
        rows(locked_down, f"grant temporary on database {DATABASE} to {roles.LOADER}")
    # a stale table the source no longer declares, in each schema
    for schema in ("raw_evreset", "raw_evreset_staging"):
        rows(locked_down, f"set role {roles.LOADER}; create table {schema}.stale (id int)")
    api.rows = events(7, version=2)
    api.throttled.clear()

    refresh = subprocess.run(
        _cli_ingest(tmp_path, locked_down, "evreset", "--full-refresh"),
        capture_output=True,
        text=True,
        timeout=KILL_DEADLINE_S,
    )

    assert refresh.returncode == 0, refresh.stdout + refresh.stderr
    loads = rows(locked_down, "select load_id from raw_evreset._dlt_loads")
    assert len(loads) == 1
    assert rows(
        locked_down,
        "select count(*), count(distinct id), min(_dlt_load_id) from raw_evreset.events",
    ) == [(7, 7, loads[0][0])]
    assert (
        rows(
            locked_down,
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_name = 'stale' and table_schema like 'raw_evreset%'",
        )
        == []
    )
    assert rows(locked_down, "select count(*) from raw_evreset.events__payload__items") == [(14,)]


OTHER_TYPES_YML = """\
version: 1
sources:
  evfiles:
    type: filesystem
    bucket_url: {landing}
    files: {{events: {{glob: "*.jsonl", format: jsonl, primary_key: id}}}}
  evcustom:
    type: dlt
    source: ingestion.custom.events_feed:events_feed
    args: {{base_url: env:EVENTS_API_URL, token: env:EVENTS_BEARER, page_size: 5}}
pipelines:
  p: {{sources: [evfiles, evcustom]}}
"""


def test_nested_files_and_custom_sources_merge_under_the_roles(
    locked_down, events_env, tmp_path, monkeypatch
):
    import json

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.jsonl").write_text("\n".join(json.dumps(e) for e in events(8)) + "\n")
    api = EventsApi(events(8), check=lambda r: r.headers.get("Authorization") == "Bearer b1")
    monkeypatch.setenv("EVENTS_API_URL", api.url)
    monkeypatch.setenv("EVENTS_BEARER", "b1")
    path = tmp_path / "pipelines.yml"
    path.write_text(OTHER_TYPES_YML.format(landing=landing))
    sources = elt_config.load(path).sources
    try:
        for name in ("evfiles", "evcustom"):
            ingest(sources[name], destination_url=locked_down)
        # a newer file with event 1 changed; the API changes every odd event
        (landing / "b.jsonl").write_text(json.dumps(events(8, version=2)[0]) + "\n")
        api.rows, api.throttled = events(8, version=2), set()
        for name in ("evfiles", "evcustom"):
            ingest(sources[name], destination_url=locked_down)
    finally:
        api.close()

    for name in ("evfiles", "evcustom"):
        assert rows(locked_down, f"select count(*), count(distinct id) from raw_{name}.events") == [
            (8, 8)
        ], name
        assert rows(
            locked_down,
            f"select count(*), count(e._dlt_id) from raw_{name}.events__payload__items i"
            f" left join raw_{name}.events e on e._dlt_id = i._dlt_root_id",
        ) == [(16, 16)], name
    # the changed events replaced the first ones, their lists too
    for name, edited in (("evfiles", 1), ("evcustom", 4)):
        assert rows(
            locked_down,
            f"select count(distinct e.id), count(t.value) from raw_{name}.events e"
            f" join raw_{name}.events__payload__tags t on t._dlt_root_id = e._dlt_id"
            " where e.kind = 'edited'",
        ) == [(edited, 2 * edited)], name
